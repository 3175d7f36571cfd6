"""Notification jobs and the emails they become: plain Python, no AWS.

Every value that comes from a lead is HTML-escaped in the HTML part (a lead named `<script>` stays text)
and stripped of line breaks in the subject. Each email has a text part too.
"""

import html
import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from crm.leads.model import Lead, UtcDatetime

_LINE_BREAKS = re.compile(r"[\r\n\t\x00-\x1f\x7f]+")


class NotificationKind(StrEnum):
    LEAD_ASSIGNED = "lead_assigned"  # to the rep who got the lead
    UNASSIGNED_LEAD = "unassigned_lead"  # to the managers of the team whose queue it waits in
    TASK_REMINDER = "task_reminder"  # to a task's owner, when it comes due (crm.follow_ups.service)
    SLA_BREACHED = "sla_breached"  # to the team's managers: a new lead not contacted within the SLA
    NURTURE_STEP = "nurture_step"  # to the lead: one step of its nurture sequence (crm.nurture.mailer)


class NotificationRequest(BaseModel):
    """A job on the notification queue. (lead_id, kind, event_id) names the event; one email per
    recipient per event, however often the job is delivered."""

    model_config = ConfigDict(extra="forbid")

    kind: NotificationKind
    lead_id: str = Field(min_length=1, max_length=64)
    event_id: str = Field(min_length=1, max_length=200)
    recipient: str | None = Field(default=None, max_length=128)  # a user's sub (lead_assigned)
    team: str | None = Field(default=None, max_length=50)  # unassigned_lead, sla_breached
    task_id: str | None = Field(default=None, max_length=64)  # task_reminder
    due_at: UtcDatetime | None = None  # task_reminder (the due time reminded of), sla_breached (deadline)


@dataclass(frozen=True)
class EmailContent:
    subject: str
    html: str
    text: str


def _plain(value: object) -> str:
    return _LINE_BREAKS.sub(" ", str(value)).strip()


def _rows(lead: Lead) -> list[tuple[str, str]]:
    grade = f" ({lead.grade})" if lead.grade else ""
    return [
        ("Name", f"{lead.first_name} {lead.last_name}"),
        ("Company", lead.company or "-"),
        ("Title", lead.title or "-"),
        ("Score", f"{lead.score}{grade}"),
        ("Source", lead.lead_source),
    ]


def _render(heading: str, intro: str, lead: Lead, link: str, subject: str) -> EmailContent:
    rows = _rows(lead)
    html_rows = "\n".join(
        f'<tr><th align="left" style="padding:4px 12px 4px 0">{html.escape(label)}</th>'
        f"<td>{html.escape(_plain(value))}</td></tr>"
        for label, value in rows
    )
    body_html = (
        '<!doctype html><html><body style="font-family:sans-serif">'
        f"<h2>{html.escape(heading)}</h2>"
        f"<p>{html.escape(intro)}</p>"
        f"<table>{html_rows}</table>"
        f'<p><a href="{html.escape(link, quote=True)}">Open the lead</a></p>'
        "</body></html>"
    )
    text_rows = "\n".join(f"{label}: {_plain(value)}" for label, value in rows)
    body_text = f"{heading}\n\n{intro}\n\n{text_rows}\n\nOpen the lead: {link}\n"
    return EmailContent(subject=_plain(subject)[:200], html=body_html, text=body_text)


def lead_link(console_url: str, lead_id: str) -> str:
    """The web console's page of the lead (`PublicConsoleUrl`, e.g. https://…/app/): a rep who clicks it
    signs in and lands on the lead."""
    return f"{console_url.rstrip('/')}/#/leads/{quote(lead_id, safe='')}"


def render_lead_assigned(lead: Lead, recipient_name: str, link: str) -> EmailContent:
    name = _plain(f"{lead.first_name} {lead.last_name}")
    company = f" ({_plain(lead.company)})" if lead.company else ""
    return _render(
        "A new lead is yours",
        f"Hello {_plain(recipient_name)}, this lead has just been assigned to you.",
        lead,
        link,
        f"New lead assigned to you: {name}{company}",
    )


def render_unassigned_lead(lead: Lead, team: str, link: str) -> EmailContent:
    name = _plain(f"{lead.first_name} {lead.last_name}")
    return _render(
        f"A lead is waiting in team {_plain(team)}'s queue",
        "No rep of the team can take this lead right now (capacity, working hours or absence). "
        "It will be assigned as soon as someone is available, or you can assign it yourself.",
        lead,
        link,
        f"Unassigned lead waiting in {_plain(team)}: {name}",
    )


def render_task_reminder(
    lead: Lead, recipient_name: str, task_title: str, due: str, link: str
) -> EmailContent:
    name = _plain(f"{lead.first_name} {lead.last_name}")
    return _render(
        f"Due now: {_plain(task_title)}",
        f"Hello {_plain(recipient_name)}, this task on one of your leads came due at {due}.",
        lead,
        link,
        f"Reminder: {_plain(task_title)} - {name}",
    )


def render_sla_breached(
    lead: Lead, team: str, link: str, *, deadline: str, overdue: str, owner: str
) -> EmailContent:
    name = _plain(f"{lead.first_name} {lead.last_name}")
    return _render(
        "Speed-to-lead SLA missed",
        f"This new lead in team {_plain(team)} has not been contacted: it was due for a first contact by "
        f"{deadline} ({overdue} ago). Current owner: {_plain(owner)}.",
        lead,
        link,
        f"SLA missed: {name} not contacted yet",
    )


def overdue_by(deadline: datetime, now: datetime) -> str:
    minutes = max(0, int((now - deadline).total_seconds() // 60))
    return f"{minutes // 60} h {minutes % 60:02d} min" if minutes >= 60 else f"{minutes} min"
