"""Nurture sequences as data (managers and admins change them), enrolling leads, firing due steps, stopping.

- Enrollment (the lead-events stream, when a lead becomes `nurture`): the first active sequence matching the
  lead, once per lead (a conditional Put, with a check that the lead is still at the version its eligibility
  was decided on). Leads that may not be emailed, converted, assigned or sales-ready, or that no sequence
  matches, are not enrolled.
- Firing (the follow-up scheduler, `NurtureDueSource`): a due step puts one job on the notification queue
  (its event id names the enrollment and the step, so its email goes out once however often it is fired),
  then advances the enrollment conditionally (still active, still at that step); the last step finishes it.
  The email itself is sent by `crm.nurture.mailer`, which checks everything again at send time.
- Stopping (the stream, when the lead converts, is assigned, reaches the sales threshold or becomes
  do-not-email): a conditional update that removes the due keys, with a `nurture_stopped` activity.
"""

import uuid
from collections.abc import Callable
from datetime import datetime
from functools import partial

from pydantic import ValidationError

from crm.leads.model import new_activity
from crm.leads.permissions import require_role
from crm.leads.repository import LeadRepository
from crm.notifications.messages import NotificationKind, NotificationRequest
from crm.notifications.templates import TemplateStore, template_problems
from crm.nurture.repository import EnrollResult, NurtureRepository
from crm.nurture.sequences import (
    CompiledSequences,
    EnrollmentState,
    NurtureEnrollment,
    NurtureSequence,
    NurtureSequenceDefinition,
    NurtureSequenceInput,
    StopReason,
    advance,
    enroll,
    step_event_id,
    stop,
    stop_reason,
)
from crm.platform import clock
from crm.platform.audit import audit_entry
from crm.platform.auth import Principal, Role
from crm.platform.errors import FieldProblem, InvalidInput, NotFound, RetryableError, VersionConflict
from crm.platform.http import problems_from_pydantic
from crm.platform.observability import logger
from crm.platform.queues import MessagePublisher
from crm.platform.scheduler import DueWork

NURTURER = "system:nurture"
SEQUENCE_EDITORS = (Role.MANAGER, Role.ADMIN)
SEQUENCE_AUDIT = "nurture_sequences"
MAX_ATTEMPTS = 5


def field_name(name: str) -> str:
    """`steps.0.template` (pydantic's location) as `steps[0].template`."""
    parts = name.split(".")
    out = ""
    for part in parts:
        out += f"[{part}]" if part.isdigit() else (f".{part}" if out else part)
    return out


def invalid_sequence(exc: ValidationError) -> InvalidInput:
    problems = [
        FieldProblem(field_name(p.field), p.message)
        for p in problems_from_pydantic(list(exc.errors(include_url=False, include_input=False)))
    ]
    return InvalidInput(problems, "Invalid fields: " + "; ".join(f"{p.field}: {p.message}" for p in problems))


class NurtureSequenceService:
    """`/nurture-sequences`: anyone signed in reads; managers and admins change, with optimistic locking.
    Every step's SES template must exist (and render as written) when the sequence is saved."""

    def __init__(
        self, nurture: NurtureRepository, templates: TemplateStore, now: Callable[[], datetime] = clock.now
    ) -> None:
        self.nurture = nurture
        self.templates = templates
        self.now = now

    def list(self) -> list[NurtureSequence]:
        return self.nurture.list_sequences()

    def get(self, sequence_id: str) -> NurtureSequence:
        sequence = self.nurture.get_sequence(sequence_id)
        if sequence is None:
            raise NotFound(f"No nurture sequence with id {sequence_id}")
        return sequence

    def create(self, definition: NurtureSequenceInput, by: Principal) -> NurtureSequence:
        require_role(by, *SEQUENCE_EDITORS)
        self._check_templates(definition)
        now = self.now()
        sequence = NurtureSequence(
            id=str(uuid.uuid4()),
            created_at=now,
            updated_at=now,
            updated_by=by.actor,
            **definition.model_dump(),
        )
        audit = audit_entry(
            SEQUENCE_AUDIT,
            sequence.id,
            "created",
            actor=by.actor,
            at=now,
            new=sequence.model_dump(mode="json"),
        )
        stored = self.nurture.put_sequence(sequence, expected_version=None, audit=audit)
        logger.info("Nurture sequence created", extra={"sequence_id": stored.id, "by": by.subject})
        return stored

    def update(
        self, sequence_id: str, changes: dict[str, object], version: int, by: Principal
    ) -> NurtureSequence:
        require_role(by, *SEQUENCE_EDITORS)
        current = self.get(sequence_id)
        if current.version != version:
            raise VersionConflict("The sequence was changed by someone else", current_version=current.version)
        try:
            definition = NurtureSequenceInput.model_validate({**current.definition(), **changes})
        except ValidationError as exc:
            raise invalid_sequence(exc) from None
        self._check_templates(definition)
        now = self.now()
        changed = NurtureSequence.model_validate(
            {**current.model_dump(), **definition.model_dump(), "updated_at": now, "updated_by": by.actor}
        )
        audit = audit_entry(
            SEQUENCE_AUDIT,
            sequence_id,
            "updated",
            actor=by.actor,
            at=now,
            old=current.model_dump(mode="json", include={*current.definition(), "updated_by"}),
            new=changed.model_dump(mode="json", include={*changed.definition(), "updated_by"}),
        )
        stored = self.nurture.put_sequence(changed, expected_version=version, audit=audit)
        logger.info("Nurture sequence changed", extra={"sequence_id": stored.id, "by": by.subject})
        return stored

    def delete(self, sequence_id: str, version: int | None, by: Principal) -> None:
        require_role(by, *SEQUENCE_EDITORS)
        audit = audit_entry(SEQUENCE_AUDIT, sequence_id, "deleted", actor=by.actor, at=self.now())
        self.nurture.delete_sequence(sequence_id, version, audit=audit)
        logger.info("Nurture sequence deleted", extra={"sequence_id": sequence_id, "by": by.subject})

    def _check_templates(self, definition: NurtureSequenceDefinition) -> None:
        problems: list[FieldProblem] = []
        for index, step in enumerate(definition.steps):
            template = self.templates.get(step.template)
            name = f"steps[{index}].template"
            if template is None:
                problems.append(FieldProblem(name, f"no SES email template is named {step.template}"))
                continue
            problems += [
                FieldProblem(name, f"the template's {problem}") for problem in template_problems(template)
            ]
        if problems:
            raise InvalidInput(problems, "; ".join(f"{p.field}: {p.message}" for p in problems))


class NurtureService:
    def __init__(
        self,
        leads: LeadRepository,
        nurture: NurtureRepository,
        publisher: MessagePublisher,
        *,
        notification_queue_url: str,
        sales_threshold: Callable[[], int],
        requires_consent: bool = False,
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.leads = leads
        self.nurture = nurture
        self.publisher = publisher
        self.notification_queue_url = notification_queue_url
        self._sales_threshold = sales_threshold
        self.requires_consent = requires_consent
        self.now = now

    @property
    def sales_threshold(self) -> int:
        """The stored sales threshold (crm.leads.routing_settings), as of at most a few seconds ago."""
        return self._sales_threshold()

    # ------------------------------------------------------------------ enrollment
    def enroll(self, lead_id: str) -> str:
        """Enroll a nurture lead in its sequence, once; returns what happened (for logs and tests)."""
        for _ in range(MAX_ATTEMPTS):
            lead = self.leads.get(lead_id)
            if lead is None or not lead.nurture:
                return "skipped"
            reason = stop_reason(
                lead.model_dump(), self.sales_threshold, requires_consent=self.requires_consent
            )
            if reason is not None:
                logger.info("Nurture lead not enrolled", extra={"lead_id": lead_id, "reason": reason.value})
                return f"skipped:{reason.value}"
            sequence = CompiledSequences(self.nurture.list_sequences()).first_match(lead)
            if sequence is None:
                logger.info("No nurture sequence matches the lead", extra={"lead_id": lead_id})
                return "no_sequence"
            now = self.now()
            enrollment = enroll(lead.id, sequence, now)
            activity = new_activity(
                lead.id,
                "nurture_enrolled",
                f"Enrolled in the nurture sequence {sequence.name} ({len(sequence.steps)} emails)",
                NURTURER,
                now,
                sequence_id=sequence.id,
                sequence_version=sequence.version,
                enrollment_id=enrollment.id,
                first_due_at=clock.isoformat(enrollment.next_due_at) if enrollment.next_due_at else None,
            )
            result = self.nurture.enroll(enrollment, lead.version, activity)
            if result is EnrollResult.LEAD_CHANGED:
                continue  # decide again on the lead as it is now
            if result is EnrollResult.ENROLLED:
                logger.info(
                    "Lead enrolled in nurture", extra={"lead_id": lead_id, "sequence_id": sequence.id}
                )
                return "enrolled"
            return "already_enrolled"
        raise RetryableError("The lead keeps changing; its enrollment will be tried again")

    # ------------------------------------------------------------------ stopping
    def stop(self, lead_id: str, reason: StopReason) -> bool:
        """Stop the lead's enrollment if it is active; True if this call stopped it."""
        enrollment = self.nurture.get_enrollment(lead_id)
        if enrollment is None:
            return False
        return stop_enrollment(self.nurture, enrollment, reason, self.now())

    # ------------------------------------------------------------------ firing due steps
    def due_source(self) -> "NurtureDueSource":
        return NurtureDueSource(self)

    def fire(self, enrollment: NurtureEnrollment) -> bool:
        """Queue the pending step's email and move the enrollment on; False if there was nothing to do."""
        step = enrollment.pending
        if step is None:
            return False
        if self.nurture.get_sequence(enrollment.sequence_id) is None:
            return stop_enrollment(self.nurture, enrollment, StopReason.SEQUENCE_DELETED, self.now())
        job = NotificationRequest(
            kind=NotificationKind.NURTURE_STEP,
            lead_id=enrollment.lead_id,
            event_id=step_event_id(enrollment.id, enrollment.next_step),
        )
        self.publisher.send(self.notification_queue_url, job.model_dump(mode="json"))
        moved = self.nurture.advance(enrollment, advance(enrollment, self.now()))
        logger.info(
            "Nurture step queued" if moved else "Nurture step queued again (already moved on)",
            extra={"lead_id": enrollment.lead_id, "step": enrollment.next_step + 1},
        )
        return moved


def stop_enrollment(
    nurture: NurtureRepository, enrollment: NurtureEnrollment, reason: StopReason, now: datetime
) -> bool:
    """Stop an active enrollment with a `nurture_stopped` activity; False if it was not active any more.
    A step fired meanwhile moves the enrollment on: then it is read again and stopped at its new step."""
    current: NurtureEnrollment | None = enrollment
    for _ in range(MAX_ATTEMPTS):
        if current is None or current.id != enrollment.id or current.state is not EnrollmentState.ACTIVE:
            return False
        activity = new_activity(
            current.lead_id,
            "nurture_stopped",
            f"Left the nurture sequence {current.sequence_name}: {reason.value.replace('_', ' ')} "
            f"(after {current.next_step} of its {len(current.steps)} steps)",
            NURTURER,
            now,
            reason=reason.value,
            sequence_id=current.sequence_id,
            enrollment_id=current.id,
            steps_done=current.next_step,
        )
        if nurture.stop(current, stop(current, reason, now), activity):
            logger.info("Nurture stopped", extra={"lead_id": current.lead_id, "reason": reason.value})
            return True
        current = nurture.get_enrollment(enrollment.lead_id)
    raise RetryableError("The enrollment keeps changing; stopping it will be tried again")


class NurtureDueSource:
    """The follow-up scheduler's view of nurture (`crm.platform.scheduler`): enrollments whose next step
    is due."""

    name = "nurture"

    def __init__(self, service: NurtureService) -> None:
        self.service = service

    def due(self, since: datetime, until: datetime, limit: int) -> list[DueWork]:
        return [
            DueWork(
                due_at=enrollment.next_due_at or until,
                key=f"nurture:{enrollment.lead_id}:{enrollment.next_step + 1}",
                fire=partial(self.service.fire, enrollment),
            )
            for enrollment in self.service.nurture.due(since, until, limit)
        ]
