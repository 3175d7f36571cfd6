"""Nurture sequences and enrollments, as plain Python (no AWS): what a sequence says, which sequence a lead
gets, when each step is due, and what stops it.

- A **sequence** is a list of steps, each `{delay_hours, template}` (an SES template name). Step 1's delay
  counts from enrollment, each next one from the previous send. Sequences are tried by ascending `priority`
  (then creation); the first *active* one whose `conditions` all match the lead takes it (conditions are the
  assignment rules' own, so the scoring operators on any lead field incl. score and grade, and
  `custom_fields.<name>`). No conditions: every nurture lead.
- An **enrollment** (one per lead) snapshots the sequence's steps and version, so editing a sequence later
  changes nothing for leads already in it. It is `active` while a step is pending (`next_step`, due at
  `next_due_at`), then `finished` after the last send, or `stopped` with a reason.
- A lead leaves its sequence when it converts, is assigned to a rep, reaches the sales threshold, or may no
  longer be emailed (it unsubscribed, its address bounced or it complained): `stop_reason`.
"""

import re
import uuid
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

from crm.conditions import Matcher, compile_matcher, field_reader
from crm.leads.criteria import MAX_CONDITIONS, MAX_PRIORITY, Condition
from crm.leads.model import Lead, UtcDatetime
from crm.platform.fields import StrictInteger, Text100

MAX_STEPS = 20
MAX_DELAY_HOURS = 24 * 365
DEFAULT_PRIORITY = 100
# SES template names: letters, digits, underscores and dashes, at most 64 characters.
TemplateName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
_STEP_EVENT = re.compile(r"^nurture:(?P<enrollment>[0-9a-f-]{36}):(?P<step>\d{1,2})$")


class NurtureStep(BaseModel):
    model_config = ConfigDict(extra="forbid")

    delay_hours: StrictInteger = Field(
        ge=0,
        le=MAX_DELAY_HOURS,
        description="Hours to wait: step 1 from enrollment, every later step from the previous send",
    )
    template: TemplateName = Field(description="The SES email template (subject, HTML and text parts)")


class NurtureSequenceDefinition(BaseModel):
    """What a sequence says; shared by the API input and the stored sequence."""

    name: Text100
    # Strict: the API refuses "yes" or 1 (a stored item's booleans and Decimal numbers still load).
    active: StrictBool = True
    priority: StrictInteger = Field(default=DEFAULT_PRIORITY, ge=0, le=MAX_PRIORITY)
    conditions: list[Condition] = Field(default_factory=list, max_length=MAX_CONDITIONS)
    steps: list[NurtureStep] = Field(min_length=1, max_length=MAX_STEPS)


class NurtureSequenceInput(NurtureSequenceDefinition):
    """A sequence as the API receives it: unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")


class NurtureSequence(NurtureSequenceDefinition):
    id: str = Field(min_length=1)
    created_at: UtcDatetime
    updated_at: UtcDatetime
    updated_by: str | None = None  # who made the last change (`user:<sub>`); None for the seeded default
    version: int = 1

    def definition(self) -> dict[str, Any]:
        return self.model_dump(include=set(NurtureSequenceDefinition.model_fields))


class EnrollmentState(StrEnum):
    ACTIVE = "active"  # a step is pending
    FINISHED = "finished"  # every step was sent
    STOPPED = "stopped"  # left before the end (stop_reason says why)


class StopReason(StrEnum):
    CONVERTED = "converted"
    ASSIGNED = "assigned"  # a rep has the lead now
    SALES_READY = "sales_ready"  # its score reached the sales threshold (it is being routed to sales)
    UNSUBSCRIBED = "unsubscribed"
    BOUNCED = "bounced"
    COMPLAINED = "complained"
    DO_NOT_EMAIL = "do_not_email"  # marked do-not-email for another reason
    NO_CONSENT = "no_consent"  # consent to marketing email is required and the person has not given it
    SEQUENCE_DELETED = "sequence_deleted"


class NurtureEnrollment(BaseModel):
    id: str  # one enrollment's id: names its emails (`step_event_id`)
    lead_id: str
    sequence_id: str
    sequence_name: str
    sequence_version: int
    steps: list[NurtureStep]  # the sequence's steps when the lead was enrolled
    next_step: int = Field(ge=0)  # index of the step to send next; len(steps) once finished
    next_due_at: UtcDatetime | None = None
    state: EnrollmentState
    stop_reason: StopReason | None = None
    enrolled_at: UtcDatetime
    updated_at: UtcDatetime
    last_sent_at: UtcDatetime | None = None
    ended_at: UtcDatetime | None = None

    @property
    def pending(self) -> NurtureStep | None:
        active = self.state is EnrollmentState.ACTIVE
        return self.steps[self.next_step] if active and self.next_step < len(self.steps) else None


# ---------------------------------------------------------------- planning


def enroll(lead_id: str, sequence: NurtureSequence, now: datetime) -> NurtureEnrollment:
    """A new enrollment of the lead in `sequence`: step 1 is due its delay after now."""
    return NurtureEnrollment(
        id=str(uuid.uuid4()),
        lead_id=lead_id,
        sequence_id=sequence.id,
        sequence_name=sequence.name,
        sequence_version=sequence.version,
        steps=[step.model_copy() for step in sequence.steps],
        next_step=0,
        next_due_at=now + timedelta(hours=sequence.steps[0].delay_hours),
        state=EnrollmentState.ACTIVE,
        enrolled_at=now,
        updated_at=now,
    )


def advance(enrollment: NurtureEnrollment, now: datetime) -> NurtureEnrollment:
    """The enrollment once its pending step has been sent (now): the next step is due its delay after now;
    after the last step the enrollment is finished."""
    following = enrollment.next_step + 1
    if following >= len(enrollment.steps):
        return enrollment.model_copy(
            update={
                "next_step": len(enrollment.steps),
                "next_due_at": None,
                "state": EnrollmentState.FINISHED,
                "last_sent_at": now,
                "ended_at": now,
                "updated_at": now,
            }
        )
    return enrollment.model_copy(
        update={
            "next_step": following,
            "next_due_at": now + timedelta(hours=enrollment.steps[following].delay_hours),
            "last_sent_at": now,
            "updated_at": now,
        }
    )


def stop(enrollment: NurtureEnrollment, reason: StopReason, now: datetime) -> NurtureEnrollment:
    return enrollment.model_copy(
        update={
            "state": EnrollmentState.STOPPED,
            "stop_reason": reason,
            "next_due_at": None,
            "ended_at": now,
            "updated_at": now,
        }
    )


_DO_NOT_EMAIL_REASONS = {
    "unsubscribed": StopReason.UNSUBSCRIBED,
    "bounced": StopReason.BOUNCED,
    "complained": StopReason.COMPLAINED,
}


def stop_reason(
    lead: Mapping[str, Any], sales_threshold: int, *, requires_consent: bool = False
) -> StopReason | None:
    """Why a lead (a stream image, or `Lead.model_dump()`) may not be nurtured; None if it may be."""
    if not lead:
        return None
    if lead.get("converted"):
        return StopReason.CONVERTED
    if lead.get("do_not_email"):
        return _DO_NOT_EMAIL_REASONS.get(str(lead.get("do_not_email_reason")), StopReason.DO_NOT_EMAIL)
    if requires_consent and not (lead.get("marketing_consent") or {}).get("given"):
        return StopReason.NO_CONSENT
    if lead.get("assigned_to"):
        return StopReason.ASSIGNED
    score = lead.get("score")
    if lead.get("grade") is not None and score is not None and int(score) >= sales_threshold:
        return StopReason.SALES_READY
    return None


def step_event_id(enrollment_id: str, step: int) -> str:
    """The notification event of one step of one enrollment: its email is sent once, whatever repeats."""
    return f"nurture:{enrollment_id}:{step}"


def parse_step_event_id(event_id: str) -> tuple[str, int]:
    """(enrollment id, step index) from `step_event_id`; ValueError for anything else."""
    match = _STEP_EVENT.match(event_id)
    if match is None:
        raise ValueError(f"not a nurture step event id: {event_id!r}")
    return match["enrollment"], int(match["step"])


# ---------------------------------------------------------------- matching


class CompiledSequences:
    """Active sequences in the order they are tried, each condition turned into a matcher once."""

    def __init__(self, sequences: Iterable[NurtureSequence]) -> None:
        ordered = sorted((s for s in sequences if s.active), key=lambda s: (s.priority, s.created_at, s.id))
        self._sequences: list[tuple[NurtureSequence, list[tuple[Callable[[Lead], Any], Matcher]]]] = [
            (seq, [(field_reader(c.field), compile_matcher(c.operator, c.value)) for c in seq.conditions])
            for seq in ordered
        ]

    def first_match(self, lead: Lead) -> NurtureSequence | None:
        for sequence, tests in self._sequences:
            if all(matches(read(lead)) for read, matches in tests):
                return sequence
        return None


# ---------------------------------------------------------------- the default sequence

DEFAULT_SEQUENCE_ID = "seed-default-nurture"
# The SES templates of template.yaml (NurtureWelcomeTemplate ...), named per stage, and each step's delay.
DEFAULT_STEPS: tuple[tuple[str, int], ...] = (("welcome", 1), ("resources", 72), ("check-in", 168))


def default_template_name(stage: str, key: str) -> str:
    return f"leadflow-{stage}-nurture-{key}"


def default_nurture_sequence(now: datetime, stage: str) -> NurtureSequence:
    """The sequence a fresh install starts with (a fixed id, so seeding twice finds it): every nurture lead
    gets a welcome an hour after it is marked, useful resources three days later, a check-in a week later."""
    return NurtureSequence(
        id=DEFAULT_SEQUENCE_ID,
        name="Default nurture (every lead below the sales threshold)",
        active=True,
        priority=1000,
        conditions=[],
        steps=[
            NurtureStep(delay_hours=hours, template=default_template_name(stage, key))
            for key, hours in DEFAULT_STEPS
        ],
        created_at=now,
        updated_at=now,
    )
