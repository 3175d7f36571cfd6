"""Notification emails: every lead value escaped, a text part, a plain one-line subject. No AWS."""

from datetime import UTC, datetime

from crm.leads.model import Lead
from crm.notifications.messages import lead_link, render_lead_assigned, render_unassigned_lead

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def hostile_lead() -> Lead:
    return Lead(
        id="6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10",
        first_name="<script>alert(1)</script>",
        last_name='"><img src=x onerror=alert(2)>',
        email="x@example.com",
        company="Evil & Co <b>",
        title="CTO\r\nBcc: victim@example.com",
        lead_source="website_form",
        score=75,
        grade="B",
        created_at=NOW,
        updated_at=NOW,
    )


def test_a_lead_named_script_stays_text_in_the_html_part() -> None:
    email = render_lead_assigned(hostile_lead(), "Riley <Rep>", "http://127.0.0.1:3000/leads/6f1c1b8e")

    assert "<script>" not in email.html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in email.html
    assert "<img" not in email.html
    assert "Evil &amp; Co &lt;b&gt;" in email.html
    assert "Riley &lt;Rep&gt;" in email.html
    assert email.html.count("<a ") == 1


def test_the_text_part_carries_the_same_facts_and_the_link() -> None:
    email = render_lead_assigned(hostile_lead(), "Riley", lead_link("http://127.0.0.1:3000/app/", "6f1c"))

    assert "Score: 75 (B)" in email.text
    assert "Source: website_form" in email.text
    assert "Company: Evil & Co <b>" in email.text
    assert "Open the lead: http://127.0.0.1:3000/app/#/leads/6f1c" in email.text  # the console's lead page
    assert "Title: CTO Bcc: victim@example.com" in email.text  # line breaks flattened


def test_the_subject_is_one_line() -> None:
    lead = hostile_lead().model_copy(update={"first_name": "Ada\r\nX-Injected: yes"})

    assigned = render_lead_assigned(lead, "Riley", "http://x/leads/1")
    waiting = render_unassigned_lead(lead, "sales", "http://x/leads/1")

    for subject in (assigned.subject, waiting.subject):
        assert "\n" not in subject and "\r" not in subject
    assert assigned.subject.startswith("New lead assigned to you: Ada X-Injected: yes")
    assert waiting.subject.startswith("Unassigned lead waiting in sales: ")
