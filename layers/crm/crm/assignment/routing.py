"""Routing: which leads go to the assignment queue, which are left to nurture, and waking waiting leads.

- A lead is considered once it has been scored (it has a grade), while unassigned and open.
- Score >= the sales threshold: one message on the assignment queue. The routing marker is written first,
  conditionally, so redelivered stream records enqueue nothing more; if the message cannot be sent the
  marker is withdrawn and the record fails, so the retry tries again.
- Below the threshold: flagged `nurture` with an activity (once). If its score later reaches the threshold
  it is routed like any other.
- Live chat leads skip the threshold: they are assigned at once, during the capture (`assign_chat_lead`).
- Waiting leads are sent to the queue again by the sweep (every few minutes) and when users change.
"""

from collections.abc import Callable
from datetime import datetime

from pydantic import BaseModel, Field

from crm.assignment.choice import Trigger
from crm.assignment.repository import AssignmentRepository, RoutingState
from crm.assignment.service import AssignmentService, is_open
from crm.leads.model import Lead, new_activity
from crm.leads.repository import LeadRepository
from crm.platform import clock
from crm.platform.errors import RetryableError
from crm.platform.observability import logger
from crm.platform.queues import MessagePublisher

ROUTER = "system:routing"
MAX_ATTEMPTS = 5


class AssignmentJob(BaseModel):
    """A message on the assignment queue."""

    lead_id: str = Field(min_length=1, max_length=64)
    trigger: Trigger
    requested_at: str | None = None


def assignment_job(lead_id: str, trigger: Trigger, requested_at: datetime) -> dict[str, str]:
    return {"lead_id": lead_id, "trigger": trigger.value, "requested_at": clock.isoformat(requested_at)}


class RoutingService:
    def __init__(
        self,
        leads: LeadRepository,
        assignments: AssignmentRepository,
        publisher: MessagePublisher,
        *,
        assignment_queue_url: str,
        sales_threshold: Callable[[], int],
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.leads = leads
        self.assignments = assignments
        self.publisher = publisher
        self.assignment_queue_url = assignment_queue_url
        self._sales_threshold = sales_threshold
        self.now = now

    @property
    def sales_threshold(self) -> int:
        """The stored sales threshold (crm.leads.routing_settings), as of at most a few seconds ago."""
        return self._sales_threshold()

    def consider(self, lead_id: str) -> str:
        """Route or nurture the lead as it is now; returns what was done (for logs and tests)."""
        for _ in range(MAX_ATTEMPTS):
            lead = self.leads.get(lead_id)
            if lead is None or lead.assigned_to is not None or not is_open(lead) or lead.grade is None:
                return "skipped"
            marker = self.assignments.get_marker(lead_id)
            if marker is not None and marker.state is not RoutingState.NURTURE:
                return "skipped"  # already requested, waiting or assigned
            if lead.score >= self.sales_threshold:
                return "routed" if self.request(lead_id, Trigger.SCORE_THRESHOLD) else "skipped"
            if lead.nurture or marker is not None:
                return "skipped"
            if self._mark_nurture(lead):
                return "nurture"
        raise RetryableError("The lead keeps changing; it will be considered again")

    def request(self, lead_id: str, trigger: Trigger) -> bool:
        """Put the lead on the assignment queue once; False if it was already requested."""
        now = self.now()
        if not self.assignments.request_routing(lead_id, trigger.value, now):
            return False
        try:
            self.publisher.send(self.assignment_queue_url, assignment_job(lead_id, trigger, now))
        except Exception:
            self.assignments.withdraw_request(lead_id, now)
            raise
        logger.info("Lead sent for assignment", extra={"lead_id": lead_id, "trigger": trigger.value})
        return True

    def _mark_nurture(self, lead: Lead) -> bool:
        now = self.now()
        activity = new_activity(
            lead.id,
            "nurture_marked",
            f"Score {lead.score} ({lead.grade}) is below the sales threshold of {self.sales_threshold}: "
            "left to nurture instead of a rep",
            ROUTER,
            now,
            score=lead.score,
            grade=lead.grade,
            threshold=self.sales_threshold,
        )
        marked = self.assignments.mark_nurture(lead, activity, now)
        if marked:
            logger.info("Lead marked for nurture", extra={"lead_id": lead.id})
        return marked

    def requeue_waiting(self, trigger: Trigger, team: str | None = None) -> int:
        """Send every lead waiting for a rep (of `team`, or of all teams) to the assignment queue again."""
        waiting = self.assignments.waiting_lead_ids(team)
        now = self.now()
        if waiting:
            self.publisher.send_many(
                self.assignment_queue_url, [assignment_job(lead_id, trigger, now) for lead_id, _ in waiting]
            )
        logger.info("Waiting leads sent for assignment again", extra={"count": len(waiting), "team": team})
        return len(waiting)


def assign_chat_lead(lead: Lead, assignments: AssignmentService, routing: RoutingService) -> None:
    """CaptureService's `assign_now` for live chat: assign during the capture, whatever the score.

    The capture has already succeeded, so a failure here must not undo it: the lead is then put on the
    assignment queue instead (and if even that fails, the error is logged with the lead's id).
    """
    try:
        assignments.assign(lead.id, Trigger.LIVE_CHAT)
        return
    except Exception:
        logger.exception(
            "Live chat lead could not be assigned at once; queueing it", extra={"lead_id": lead.id}
        )
    try:
        routing.request(lead.id, Trigger.LIVE_CHAT)
    except Exception:
        logger.exception("Live chat lead left unassigned", extra={"lead_id": lead.id})
