"""Capture: every submission becomes exactly one lead per email, however often or concurrently it comes."""

import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel

from crm.leads.model import (
    Activity,
    Channel,
    Lead,
    LeadSubmission,
    is_open,
    new_activity,
    new_lead,
    plan_merge,
)
from crm.leads.repository import LeadRepository
from crm.platform import clock
from crm.platform.errors import DuplicateEmail, RetryableError, VersionConflict

# Bounded retries for transaction conflicts and optimistic-lock races: enough for a burst of
# dozens of concurrent submissions of one email, short enough to answer within a second or two.
MAX_ATTEMPTS = 12
# How many names of dropped custom fields an activity lists (the count is always there).
MAX_DROPPED_NAMES = 100


@dataclass(frozen=True)
class CaptureResult:
    lead_id: str
    created: bool
    lead: Lead


class ImmediateAssignment(Protocol):
    """Seam for channels whose leads are routed at once (live chat). Assignment plugs in here."""

    def __call__(self, lead: Lead) -> None: ...


def _no_immediate_assignment(lead: Lead) -> None:
    return None


class CaptureService:
    def __init__(
        self,
        repository: LeadRepository,
        assign_now: ImmediateAssignment = _no_immediate_assignment,
        *,
        demo_form_types: Iterable[str] = ("demo_request",),
        now: Callable[[], datetime] = clock.now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.repository = repository
        self.assign_now = assign_now
        self.demo_form_types = frozenset(kind.lower() for kind in demo_form_types)
        self.now = now
        self.sleep = sleep

    def capture(self, submission: LeadSubmission) -> CaptureResult:
        for attempt in range(MAX_ATTEMPTS):
            moment = self.now()
            lead = new_lead(submission, moment)
            try:
                self.repository.create(lead, self._first_activities(lead, submission, moment))
            except DuplicateEmail as duplicate:
                owner = duplicate.lead_id or self.repository.find_id_by_email(submission.email)
                if owner is None:  # the claim vanished between the two reads: start over
                    self._back_off(attempt)
                    continue
                return self._merge_into(owner, submission)
            except RetryableError:
                self._back_off(attempt)
                continue
            if submission.channel is Channel.LIVE_CHAT:
                self.assign_now(lead)
            return CaptureResult(lead_id=lead.id, created=True, lead=lead)
        raise RetryableError("Too many concurrent submissions for this email; try again")

    def _merge_into(self, lead_id: str, submission: LeadSubmission) -> CaptureResult:
        for attempt in range(MAX_ATTEMPTS):
            lead = self.repository.get(lead_id)
            if lead is None:
                raise RetryableError("The existing lead could not be read; try again")
            moment = self.now()
            plan = plan_merge(lead, submission, moment)
            activity = new_activity(
                lead.id,
                "submission_merged",
                f"Repeat submission via {submission.channel.value} ({submission.lead_source})",
                submission.submitted_by,
                moment,
                channel=submission.channel.value,
                source=submission.lead_source,
                changes={
                    name: {"old": _plain(old), "new": _plain(new)}
                    for name, (old, new) in plan.changes.items()
                },
                kept={name: {"existing": old, "submitted": new} for name, (old, new) in plan.kept.items()}
                or None,
            )
            activities = [
                activity,
                *self._form_activities(lead.id, submission, moment),
                *self._dropped_fields_activities(lead.id, plan.dropped_custom_fields, submission, moment),
                *self._transcript_activities(lead.id, submission, moment),
            ]
            if not plan.changes:
                self.repository.add_activities(activities)
                return self._merged(lead, submission)
            updated = lead.model_copy(
                update={name: new for name, (_, new) in plan.changes.items()} | {"updated_at": moment}
            )
            try:
                stored = self.repository.replace(updated, lead.version, activities)
            except (VersionConflict, RetryableError):
                self._back_off(attempt)
                continue
            return self._merged(stored, submission)
        raise RetryableError("The lead is being changed by many submissions at once; try again")

    def _merged(self, lead: Lead, submission: LeadSubmission) -> CaptureResult:
        # A visitor who is already a lead, chatting now, wants someone now: the same immediate assignment a
        # new chat lead gets, while the lead is open and nobody has it.
        if submission.channel is Channel.LIVE_CHAT and is_open(lead) and lead.assigned_to is None:
            self.assign_now(lead)
        return CaptureResult(lead_id=lead.id, created=False, lead=lead)

    def _first_activities(self, lead: Lead, submission: LeadSubmission, moment: datetime) -> list[Activity]:
        captured = new_activity(
            lead.id,
            "lead_captured",
            f"Captured via {submission.channel.value} ({submission.lead_source})",
            submission.submitted_by,
            moment,
            channel=submission.channel.value,
            source=submission.lead_source,
        )
        return [
            captured,
            *self._form_activities(lead.id, submission, moment),
            *self._transcript_activities(lead.id, submission, moment),
        ]

    def _form_activities(self, lead_id: str, submission: LeadSubmission, moment: datetime) -> list[Activity]:
        """A website form is a form submission, each time it is sent (scoring counts it); a form that says it
        is a demo request (`form_type`) is a demo request as well."""
        if submission.channel is not Channel.WEBSITE_FORM:
            return []
        form_type = submission.form_type.strip().lower() if submission.form_type else None
        activities = [
            new_activity(
                lead_id,
                "form_submitted",
                f"Submitted a website form{f' ({form_type})' if form_type else ''}",
                submission.submitted_by,
                moment,
                form_type=form_type,
            )
        ]
        if form_type in self.demo_form_types:
            activities.append(
                new_activity(
                    lead_id,
                    "demo_requested",
                    f"Requested a demo (form {form_type})",
                    submission.submitted_by,
                    moment,
                    form_type=form_type,
                )
            )
        return activities

    @staticmethod
    def _dropped_fields_activities(
        lead_id: str, dropped: tuple[str, ...], submission: LeadSubmission, moment: datetime
    ) -> list[Activity]:
        if not dropped:
            return []
        return [
            new_activity(
                lead_id,
                "custom_fields_dropped",
                f"{len(dropped)} new custom field(s) from a repeat submission were not kept: "
                "the lead's custom fields are full",
                submission.submitted_by,
                moment,
                names=list(dropped[:MAX_DROPPED_NAMES]),
                count=len(dropped),
            )
        ]

    @staticmethod
    def _transcript_activities(lead_id: str, submission: LeadSubmission, moment: datetime) -> list[Activity]:
        if not submission.transcript:
            return []
        return [
            new_activity(
                lead_id,
                "chat_transcript",
                f"Live chat transcript ({len(submission.transcript)} messages)",
                submission.submitted_by,
                moment,
                messages=submission.transcript,
            )
        ]

    def _back_off(self, attempt: int) -> None:
        # Full jitter: concurrent writers of one email spread out instead of colliding again.
        self.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311


def _plain(value: Any) -> Any:
    # An activity's data is stored as is: a model (the marketing consent) goes in as its JSON form.
    return value.model_dump(mode="json") if isinstance(value, BaseModel) else value
