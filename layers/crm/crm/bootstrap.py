"""Composition root: the services each function uses, built once per execution environment."""

from functools import cache
from typing import TYPE_CHECKING, Any

from crm.capture.service import CaptureService
from crm.leads.repository import LeadRepository
from crm.platform.settings import get_settings

if TYPE_CHECKING:  # imported where built, so the capture function's cold start does not pay for them
    from crm.analytics.service import AnalyticsService
    from crm.assignment.repository import AssignmentRepository
    from crm.assignment.routing import RoutingService
    from crm.assignment.rule_service import AssignmentRuleService
    from crm.assignment.service import AssignmentService
    from crm.conversion.service import ConversionService
    from crm.follow_ups.service import FollowUpService
    from crm.leads.changes import LeadEventsDispatcher
    from crm.leads.model import Lead
    from crm.lifecycle.service import LifecycleService, TaskService
    from crm.notifications.delivery import NotificationService
    from crm.notifications.ses_events import EmailEventRecorder
    from crm.notifications.templates import SesTemplateStore
    from crm.nurture.do_not_email import DoNotEmailService
    from crm.nurture.mailer import NurtureMailer
    from crm.nurture.repository import NurtureRepository
    from crm.nurture.service import NurtureSequenceService, NurtureService
    from crm.nurture.unsubscribe import UnsubscribeTokens
    from crm.platform.auth import Principal
    from crm.platform.cursor import CursorCodec
    from crm.platform.queues import SqsPublisher
    from crm.platform.scheduler import DueSource, FollowUpScheduler
    from crm.queries.list_repository import LeadListRepository
    from crm.queries.search import SearchIndex
    from crm.queries.service import LeadQueryService
    from crm.scoring.service import ActivityService, RescoreService, RuleService, ScoringService
    from crm.users.repository import UserRepository
    from crm.users.service import UserService


@cache
def lead_repository() -> LeadRepository:
    settings = get_settings()
    return LeadRepository(settings.table_name, shards=settings.index_shards)


@cache
def capture_service() -> CaptureService:
    return CaptureService(lead_repository(), assign_now=_assign_chat_lead)


def _assign_chat_lead(lead: "Lead") -> None:
    # Live chat leads are assigned during the capture; the assignment code loads only when a chat arrives.
    from crm.assignment.routing import assign_chat_lead

    assign_chat_lead(lead)


@cache
def lifecycle_service() -> "LifecycleService":
    from crm.lifecycle.repository import LeadChangeRepository
    from crm.lifecycle.service import LifecycleService

    settings = get_settings()
    changes = LeadChangeRepository(settings.table_name, settings.index_shards)
    return LifecycleService(lead_repository(), changes)


@cache
def task_service() -> "TaskService":
    from crm.leads.task_repository import TaskRepository
    from crm.lifecycle.service import TaskService

    settings = get_settings()
    return TaskService(
        lead_repository(), TaskRepository(settings.table_name, settings.index_shards), user_repository()
    )


@cache
def conversion_service() -> "ConversionService":
    from crm.conversion.repository import ConversionRepository
    from crm.conversion.service import ConversionService

    settings = get_settings()
    return ConversionService(
        lead_repository(),
        ConversionRepository(settings.table_name, settings.index_shards),
        require_qualified=settings.conversion_requires_qualification,
    )


@cache
def scoring_service() -> "ScoringService":
    from crm.scoring.repository import ScoreRepository, ScoringRuleRepository
    from crm.scoring.service import ScoringService

    settings = get_settings()
    return ScoringService(
        ScoreRepository(settings.table_name, settings.index_shards),
        ScoringRuleRepository(settings.table_name),
        half_life_days=settings.score_half_life_days,
    )


@cache
def rescore_service() -> "RescoreService":
    from crm.scoring.repository import RescoreJobRepository
    from crm.scoring.rescore_queue import SqsRescoreQueue
    from crm.scoring.service import RescoreService

    settings = get_settings()
    scoring = scoring_service()
    return RescoreService(
        RescoreJobRepository(settings.table_name),
        scoring.rules,
        scoring,
        SqsRescoreQueue(settings.rescore_queue_url),
        shards=settings.index_shards,
        page_size=settings.rescore_page_size,
        concurrency=settings.rescore_concurrency,
    )


@cache
def rule_service() -> "RuleService":
    from crm.scoring.service import RuleService

    return RuleService(scoring_service().rules)


@cache
def activity_service() -> "ActivityService":
    from crm.scoring.service import ActivityService

    return ActivityService(lead_repository(), scoring_service().scores)


# ---------------------------------------------------------------- assignment and notifications


@cache
def user_repository() -> "UserRepository":
    from crm.users.repository import UserRepository

    return UserRepository(get_settings().table_name)


@cache
def assignment_repository() -> "AssignmentRepository":
    from crm.assignment.repository import AssignmentRepository

    settings = get_settings()
    return AssignmentRepository(settings.table_name, shards=settings.index_shards)


@cache
def publisher() -> "SqsPublisher":
    from crm.platform.queues import SqsPublisher

    return SqsPublisher()


@cache
def assignment_service() -> "AssignmentService":
    from crm.assignment.service import AssignmentService

    settings = get_settings()
    return AssignmentService(
        lead_repository(),
        assignment_repository(),
        user_repository(),
        publisher(),
        default_team=settings.default_team,
        after_hours_policy=settings.after_hours_policy,
        notification_queue_url=settings.notification_queue_url,
    )


@cache
def routing_service() -> "RoutingService":
    from crm.assignment.routing import RoutingService

    settings = get_settings()
    return RoutingService(
        lead_repository(),
        assignment_repository(),
        publisher(),
        assignment_queue_url=settings.assignment_queue_url,
        sales_threshold=settings.sales_threshold,
    )


@cache
def notification_service() -> "NotificationService":
    from datetime import timedelta

    from crm.leads.task_repository import TaskRepository
    from crm.notifications.delivery import NotificationService
    from crm.notifications.repository import NotificationRepository
    from crm.platform.email import SesEmailSender

    settings = get_settings()
    return NotificationService(
        lead_repository(),
        user_repository(),
        NotificationRepository(settings.table_name),
        SesEmailSender(settings.notification_sender, settings.ses_configuration_set),
        TaskRepository(settings.table_name, settings.index_shards),
        public_base_url=settings.public_base_url,
        # A sender that died mid-send holds its claim this long; then a retry may send.
        lease=timedelta(seconds=120),
        nurture=nurture_mailer(),
    )


@cache
def email_event_recorder() -> "EmailEventRecorder":
    from crm.notifications.repository import NotificationRepository
    from crm.notifications.ses_events import EmailEventRecorder

    return EmailEventRecorder(
        NotificationRepository(get_settings().table_name),
        # A permanent bounce or a complaint about an email to a lead marks it do-not-email.
        suppress=do_not_email_service().suppress_for_email_event,
    )


@cache
def user_service() -> "UserService":
    from crm.users.service import UserService

    return UserService(user_repository(), assignment_repository(), routing_service())


@cache
def assignment_rule_service() -> "AssignmentRuleService":
    from crm.assignment.rule_service import AssignmentRuleService

    return AssignmentRuleService(assignment_repository())


@cache
def lead_events_dispatcher() -> "LeadEventsDispatcher":
    from crm.leads.changes import LeadEventsDispatcher, default_handlers

    return LeadEventsDispatcher(default_handlers())


def index_shards() -> int:
    return get_settings().index_shards


@cache
def list_repository() -> "LeadListRepository":
    from crm.queries.list_repository import LeadListRepository

    return LeadListRepository(get_settings().table_name)


@cache
def search_index() -> "SearchIndex":
    from crm.queries.search_repository import DynamoSearchIndex

    return DynamoSearchIndex(get_settings().table_name)


@cache
def cursor_codec() -> "CursorCodec":
    from crm.platform.cursor import CursorCodec
    from crm.platform.signing_keys import signing_keys

    settings = get_settings()
    return CursorCodec(
        lambda: signing_keys(settings.cursor_signing_key, settings.cursor_key_secret, "cursor signing key")
    )


@cache
def lead_query_service() -> "LeadQueryService":
    from crm.queries.service import LeadQueryService

    return LeadQueryService(
        list_repository(), search_index(), lead_repository(), cursor_codec(), index_shards()
    )


@cache
def analytics_service() -> "AnalyticsService":
    from crm.analytics.repository import AnalyticsRepository
    from crm.analytics.service import AnalyticsService

    settings = get_settings()
    return AnalyticsService(AnalyticsRepository(settings.table_name, settings.index_shards))


@cache
def follow_up_service() -> "FollowUpService":
    from crm.follow_ups.repository import FollowUpRepository
    from crm.follow_ups.service import FollowUpService
    from crm.leads.task_repository import TaskRepository

    settings = get_settings()
    return FollowUpService(
        lead_repository(),
        TaskRepository(settings.table_name, settings.index_shards),
        FollowUpRepository(settings.table_name, settings.index_shards),
        publisher(),
        notification_queue_url=settings.notification_queue_url,
        sla=settings.speed_to_lead_sla(),
        default_team=settings.default_team,
    )


def due_sources() -> list["DueSource"]:
    """Every kind of due work the follow-up scheduler fires, in the order it fires them."""
    return [*follow_up_service().due_sources(), nurture_service().due_source()]


@cache
def follow_up_scheduler() -> "FollowUpScheduler":
    from crm.platform.checkpoints import CheckpointRepository
    from crm.platform.scheduler import FollowUpScheduler

    return FollowUpScheduler(CheckpointRepository(get_settings().table_name), due_sources())


# ---------------------------------------------------------------- nurture sequences and unsubscribe


@cache
def nurture_repository() -> "NurtureRepository":
    from crm.nurture.repository import NurtureRepository

    settings = get_settings()
    return NurtureRepository(settings.table_name, settings.index_shards)


@cache
def email_templates() -> "SesTemplateStore":
    from crm.notifications.templates import SesTemplateStore

    return SesTemplateStore()


@cache
def unsubscribe_tokens() -> "UnsubscribeTokens":
    from crm.nurture.unsubscribe import UnsubscribeTokens
    from crm.platform.signing_keys import signing_keys

    settings = get_settings()
    return UnsubscribeTokens(
        lambda: signing_keys(
            settings.unsubscribe_signing_key, settings.unsubscribe_key_secret, "unsubscribe signing key"
        )
    )


@cache
def nurture_sequence_service() -> "NurtureSequenceService":
    from crm.nurture.service import NurtureSequenceService

    return NurtureSequenceService(nurture_repository(), email_templates())


@cache
def nurture_service() -> "NurtureService":
    from crm.nurture.service import NurtureService

    settings = get_settings()
    return NurtureService(
        lead_repository(),
        nurture_repository(),
        publisher(),
        notification_queue_url=settings.notification_queue_url,
        sales_threshold=settings.sales_threshold,
    )


@cache
def nurture_mailer() -> "NurtureMailer":
    from datetime import timedelta

    from crm.notifications.repository import NotificationRepository
    from crm.nurture.mailer import NurtureMailer
    from crm.platform.email import SesEmailSender

    settings = get_settings()
    return NurtureMailer(
        lead_repository(),
        nurture_repository(),
        NotificationRepository(settings.table_name),
        SesEmailSender(settings.notification_sender, settings.ses_configuration_set),
        templates=email_templates(),
        tokens=unsubscribe_tokens(),
        public_base_url=settings.public_base_url,
        sales_threshold=settings.sales_threshold,
        lease=timedelta(seconds=120),
    )


@cache
def do_not_email_service() -> "DoNotEmailService":
    from crm.nurture.do_not_email import DoNotEmailService

    return DoNotEmailService(lead_repository())


def caller(event: dict[str, Any]) -> "Principal":
    """The signed-in caller, with the teams the user directory gives them (what a manager may see).

    Every API route asks for the caller here, so permissions are decided on the same teams everywhere.
    """
    from crm.platform.auth import principal_from_event

    return user_service().with_directory_teams(principal_from_event(event))


def reset() -> None:
    """Forget built services (tests switch settings between cases)."""
    for getter in (
        user_repository,
        assignment_repository,
        publisher,
        assignment_service,
        routing_service,
        notification_service,
        email_event_recorder,
        user_service,
        assignment_rule_service,
        lead_events_dispatcher,
        list_repository,
        search_index,
        cursor_codec,
        lead_query_service,
        analytics_service,
        follow_up_service,
        follow_up_scheduler,
        nurture_repository,
        email_templates,
        unsubscribe_tokens,
        nurture_sequence_service,
        nurture_service,
        nurture_mailer,
        do_not_email_service,
    ):
        getter.cache_clear()
    scoring_service.cache_clear()
    rescore_service.cache_clear()
    rule_service.cache_clear()
    activity_service.cache_clear()
    lead_repository.cache_clear()
    capture_service.cache_clear()
    lifecycle_service.cache_clear()
    task_service.cache_clear()
    conversion_service.cache_clear()
