"""Composition root: the services each function uses, built once per execution environment.

Every service gets its collaborators here, through its constructor; nothing below this module imports it.
`lead_change_reactions()` is the one list that wires each context's reactions to lead changes (the
lead-events stream) to the service it needs. Getters import what they build when first called, so the
capture function's cold start does not pay for the contexts it never uses.
"""

from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, TypeVar

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
    from crm.exports.service import ExportService
    from crm.follow_ups.service import FollowUpService
    from crm.imports.service import ImportService
    from crm.integrations.publisher import DomainEventPublisher
    from crm.integrations.webhooks import Subscription, WebhookService
    from crm.leads.changes import LeadChange, LeadEventsDispatcher
    from crm.leads.model import Lead
    from crm.leads.routing_settings import RoutingSettingsService
    from crm.leads.suppression import SuppressionList
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
    from crm.platform.captcha import CaptchaVerifier
    from crm.platform.cursor import CursorCodec
    from crm.platform.queues import SqsPublisher
    from crm.platform.scheduler import DueSource, FollowUpScheduler
    from crm.privacy.service import PrivacyService
    from crm.queries.list_repository import LeadListRepository
    from crm.queries.search import SearchIndex
    from crm.queries.service import LeadQueryService
    from crm.scoring.preview_service import RulePreviewService
    from crm.scoring.service import ActivityService, RescoreService, RuleService, ScoringService
    from crm.users.repository import UserRepository
    from crm.users.service import UserService

Built = TypeVar("Built")
_BUILT: list[Any] = []


def built_once(getter: Callable[[], Built]) -> Callable[[], Built]:
    """Build on first call, then keep (one per execution environment); `reset()` forgets them all."""
    cached = cache(getter)
    _BUILT.append(cached)
    return cached


@built_once
def lead_repository() -> LeadRepository:
    settings = get_settings()
    return LeadRepository(settings.table_name, shards=settings.index_shards)


@built_once
def capture_service() -> CaptureService:
    return CaptureService(
        lead_repository(),
        assign_now=_assign_chat_lead,
        demo_form_types=get_settings().demo_request_form_types,
    )


def _assign_chat_lead(lead: "Lead") -> None:
    # Live chat leads are assigned during the capture; the assignment code loads only when a chat arrives.
    from crm.assignment.routing import assign_chat_lead

    assign_chat_lead(lead, assignment_service(), routing_service())


@built_once
def captcha_verifier() -> "CaptchaVerifier":
    from crm.platform.captcha import CaptchaVerifier

    settings = get_settings()
    return CaptchaVerifier(settings.captcha_secret, settings.captcha_verify_url)


@built_once
def lifecycle_service() -> "LifecycleService":
    from crm.lifecycle.repository import LeadChangeRepository
    from crm.lifecycle.service import LifecycleService

    settings = get_settings()
    changes = LeadChangeRepository(settings.table_name, settings.index_shards)
    return LifecycleService(lead_repository(), changes)


@built_once
def task_service() -> "TaskService":
    from crm.leads.task_repository import TaskRepository
    from crm.lifecycle.service import TaskService

    settings = get_settings()
    return TaskService(
        lead_repository(), TaskRepository(settings.table_name, settings.index_shards), user_repository()
    )


@built_once
def conversion_service() -> "ConversionService":
    from crm.conversion.repository import ConversionRepository
    from crm.conversion.service import ConversionService

    settings = get_settings()
    return ConversionService(
        lead_repository(),
        ConversionRepository(settings.table_name, settings.index_shards),
        require_qualified=settings.conversion_requires_qualification,
    )


@built_once
def scoring_service() -> "ScoringService":
    from crm.scoring.rule_repository import ScoringRuleRepository
    from crm.scoring.score_repository import ScoreRepository
    from crm.scoring.service import ScoringService

    settings = get_settings()
    return ScoringService(
        ScoreRepository(settings.table_name, settings.index_shards),
        ScoringRuleRepository(settings.table_name),
        half_life_days=settings.score_half_life_days,
    )


@built_once
def rescore_service() -> "RescoreService":
    from crm.scoring.rescore_job_repository import RescoreJobRepository
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
        # Re-routing jobs (PUT /settings/routing with reroute_nurture) route through assignment's routing.
        reroute=lambda lead_id: routing_service().consider(lead_id) == "routed",
        # The reconciler routes a scored lead nobody routed (`start_reconcile`).
        route=lambda lead_id: routing_service().consider(lead_id),
    )


@built_once
def rule_service() -> "RuleService":
    from crm.scoring.service import RuleService

    return RuleService(scoring_service().rules)


@built_once
def rule_preview_service() -> "RulePreviewService":
    from crm.scoring.preview_repository import PreviewRepository
    from crm.scoring.preview_service import RulePreviewService

    settings = get_settings()
    return RulePreviewService(
        scoring_service().rules,
        PreviewRepository(settings.table_name, settings.index_shards),
        routing_settings_service().sales_threshold,
        half_life_days=settings.score_half_life_days,
    )


@built_once
def routing_settings_service() -> "RoutingSettingsService":
    from crm.leads.routing_settings import RoutingSettingsService
    from crm.leads.routing_settings_repository import RoutingSettingsRepository

    settings = get_settings()
    # The deploy parameter is the threshold until a manager saves one (PUT /settings/routing).
    return RoutingSettingsService(RoutingSettingsRepository(settings.table_name), settings.sales_threshold)


@built_once
def activity_service() -> "ActivityService":
    from crm.scoring.service import ActivityService

    return ActivityService(lead_repository(), scoring_service().scores)


# ---------------------------------------------------------------- assignment and notifications


@built_once
def user_repository() -> "UserRepository":
    from crm.users.repository import UserRepository

    return UserRepository(get_settings().table_name)


@built_once
def assignment_repository() -> "AssignmentRepository":
    from crm.assignment.repository import AssignmentRepository

    settings = get_settings()
    return AssignmentRepository(settings.table_name, shards=settings.index_shards)


@built_once
def publisher() -> "SqsPublisher":
    from crm.platform.queues import SqsPublisher

    return SqsPublisher()


@built_once
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


@built_once
def routing_service() -> "RoutingService":
    from crm.assignment.routing import RoutingService

    settings = get_settings()
    return RoutingService(
        lead_repository(),
        assignment_repository(),
        publisher(),
        assignment_queue_url=settings.assignment_queue_url,
        sales_threshold=routing_settings_service().sales_threshold,
    )


@built_once
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
        console_url=settings.public_console_url,
        # A sender that died mid-send holds its claim this long; then a retry may send.
        lease=timedelta(seconds=120),
        nurture=nurture_mailer(),
    )


@built_once
def email_event_recorder() -> "EmailEventRecorder":
    from crm.notifications.repository import NotificationRepository
    from crm.notifications.ses_events import EmailEventRecorder

    return EmailEventRecorder(
        NotificationRepository(get_settings().table_name),
        # A permanent bounce or a complaint about an email to a lead marks it do-not-email.
        suppress=do_not_email_service().suppress_for_email_event,
    )


@built_once
def user_service() -> "UserService":
    from functools import partial

    from crm.assignment.choice import Trigger
    from crm.users.service import UserService

    return UserService(
        user_repository(),
        open_leads=assignment_repository().loads,
        wake_waiting_leads=partial(routing_service().requeue_waiting, Trigger.USER_CHANGE),
    )


@built_once
def assignment_rule_service() -> "AssignmentRuleService":
    from crm.assignment.rule_service import AssignmentRuleService

    return AssignmentRuleService(assignment_repository())


@built_once
def lead_events_dispatcher() -> "LeadEventsDispatcher":
    from crm.leads.changes import LeadEventsDispatcher

    return LeadEventsDispatcher([_bound(reaction, service) for reaction, service in lead_change_reactions()])


@built_once
def domain_event_publisher() -> "DomainEventPublisher | None":
    """Publishes the stream's business facts to the lead-events bus; None where no bus is configured."""
    from crm.integrations.bus import EventBridgeBus
    from crm.integrations.publisher import DomainEventPublisher
    from crm.integrations.repository import PublishedEventRepository

    settings = get_settings()
    if not settings.event_bus_name:
        return None
    return DomainEventPublisher(
        EventBridgeBus(settings.event_bus_name), PublishedEventRepository(settings.table_name)
    )


@built_once
def webhook_service() -> "WebhookService":
    from crm.integrations.http import GuardedHttpSender
    from crm.integrations.queue import SqsDeliveryQueue
    from crm.integrations.repository import WebhookRepository
    from crm.integrations.webhooks import WebhookService

    settings = get_settings()
    return WebhookService(
        WebhookRepository(settings.table_name),
        GuardedHttpSender(allow_loopback=settings.webhook_allow_loopback),
        SqsDeliveryQueue(settings.webhook_queue_url, settings.webhook_dead_letter_queue_url),
        allow_loopback=settings.webhook_allow_loopback,
        retry_base_seconds=settings.webhook_retry_base_seconds,
        notify_owner=_email_paused_subscription_owner,
    )


def _email_paused_subscription_owner(subscription: "Subscription") -> None:
    from crm.platform.email import OutgoingEmail, SesEmailSender

    if not subscription.owner_email:
        return
    settings = get_settings()
    text = (
        f"Every delivery to your webhook subscription {subscription.id} ({subscription.url}) failed for 24 "
        "hours, so it is paused. Fix the receiver, then resume it: PATCH /webhook-subscriptions/"
        f'{subscription.id} with {{"state": "active"}}.'
    )
    SesEmailSender(settings.notification_sender, settings.ses_configuration_set).send(
        OutgoingEmail(
            to=subscription.owner_email,
            subject="Webhook subscription paused",
            html=f"<p>{text}</p>",
            text=text,
        )
    )


def lead_change_reactions() -> list[tuple[Callable[["LeadChange", Any], None], Callable[[], Any]]]:
    """Each context's reactions to a lead change, in the order they run, with the service each needs."""
    from crm.analytics.reactions import count_for_analytics
    from crm.assignment.reactions import keep_open_lead_counters, notify_new_assignee, route_lead
    from crm.follow_ups.reactions import (
        close_what_no_longer_waits,
        plan_follow_ups,
        start_speed_to_lead_clock,
    )
    from crm.nurture.reactions import enroll_in_nurture, stop_nurture
    from crm.queries.reactions import index_for_search, repair_list_index

    return [
        # First: a score written in place leaves the score-sorted list keys behind; repaired here with one
        # UpdateItem, so that routing's transaction (a nurture mark, an assignment) does not rewrite those
        # three index keys itself at twice the write units.
        (repair_list_index, lead_query_service),
        (route_lead, routing_service),
        (keep_open_lead_counters, assignment_service),
        (notify_new_assignee, assignment_service),
        (start_speed_to_lead_clock, follow_up_service),
        (plan_follow_ups, follow_up_service),
        (close_what_no_longer_waits, follow_up_service),
        (index_for_search, lead_query_service),
        (count_for_analytics, analytics_service),
        (enroll_in_nurture, nurture_service),
        (stop_nurture, nurture_service),
    ]


def _bound(
    reaction: Callable[["LeadChange", Any], None], service: Callable[[], Any]
) -> Callable[["LeadChange"], None]:
    # The service is built when a change first needs it, not when the dispatcher is.
    return lambda change: reaction(change, service())


def index_shards() -> int:
    return get_settings().index_shards


@built_once
def list_repository() -> "LeadListRepository":
    from crm.queries.list_repository import LeadListRepository

    return LeadListRepository(get_settings().table_name)


@built_once
def search_index() -> "SearchIndex":
    from crm.queries.search_repository import DynamoSearchIndex

    return DynamoSearchIndex(get_settings().table_name)


@built_once
def cursor_codec() -> "CursorCodec":
    from crm.platform.cursor import CursorCodec
    from crm.platform.signing_keys import signing_keys

    settings = get_settings()
    return CursorCodec(
        lambda: signing_keys(settings.cursor_signing_key, settings.cursor_key_secret, "cursor signing key")
    )


@built_once
def lead_query_service() -> "LeadQueryService":
    from crm.queries.service import LeadQueryService

    return LeadQueryService(
        list_repository(), search_index(), lead_repository(), cursor_codec(), index_shards()
    )


@built_once
def analytics_service() -> "AnalyticsService":
    from crm.analytics.repository import AnalyticsRepository
    from crm.analytics.service import AnalyticsService

    settings = get_settings()
    return AnalyticsService(AnalyticsRepository(settings.table_name, settings.index_shards))


@built_once
def follow_up_service() -> "FollowUpService":
    from datetime import timedelta

    from crm.follow_ups.repository import FollowUpRepository
    from crm.follow_ups.rules import SpeedToLeadSla
    from crm.follow_ups.service import FollowUpService
    from crm.leads.task_repository import TaskRepository
    from crm.platform.working_hours import parse_working_hours

    settings = get_settings()
    return FollowUpService(
        lead_repository(),
        TaskRepository(settings.table_name, settings.index_shards),
        FollowUpRepository(settings.table_name, settings.index_shards),
        publisher(),
        notification_queue_url=settings.notification_queue_url,
        sla=SpeedToLeadSla(
            allowance=timedelta(minutes=settings.speed_to_lead_sla_minutes),
            hours=parse_working_hours(settings.sla_working_hours),
        ),
        default_team=settings.default_team,
    )


def due_sources() -> list["DueSource"]:
    """Every kind of due work the follow-up scheduler fires, in the order it fires them."""
    return [*follow_up_service().due_sources(), nurture_service().due_source()]


@built_once
def follow_up_scheduler() -> "FollowUpScheduler":
    from crm.platform.checkpoints import CheckpointRepository
    from crm.platform.scheduler import FollowUpScheduler

    return FollowUpScheduler(CheckpointRepository(get_settings().table_name), due_sources())


# ---------------------------------------------------------------- nurture sequences and unsubscribe


@built_once
def nurture_repository() -> "NurtureRepository":
    from crm.nurture.repository import NurtureRepository

    settings = get_settings()
    return NurtureRepository(settings.table_name, settings.index_shards)


@built_once
def email_templates() -> "SesTemplateStore":
    from crm.notifications.templates import SesTemplateStore

    return SesTemplateStore()


@built_once
def unsubscribe_tokens() -> "UnsubscribeTokens":
    from crm.nurture.unsubscribe import UnsubscribeTokens
    from crm.platform.signing_keys import signing_keys

    settings = get_settings()
    return UnsubscribeTokens(
        lambda: signing_keys(
            settings.unsubscribe_signing_key, settings.unsubscribe_key_secret, "unsubscribe signing key"
        )
    )


@built_once
def nurture_sequence_service() -> "NurtureSequenceService":
    from crm.nurture.service import NurtureSequenceService

    return NurtureSequenceService(nurture_repository(), email_templates())


@built_once
def nurture_service() -> "NurtureService":
    from crm.nurture.service import NurtureService

    settings = get_settings()
    return NurtureService(
        lead_repository(),
        nurture_repository(),
        publisher(),
        notification_queue_url=settings.notification_queue_url,
        sales_threshold=routing_settings_service().sales_threshold,
        requires_consent=settings.nurture_requires_consent,
    )


@built_once
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
        sales_threshold=routing_settings_service().sales_threshold,
        requires_consent=settings.nurture_requires_consent,
        lease=timedelta(seconds=120),
        suppressed=suppression_list().blocks,
    )


@built_once
def do_not_email_service() -> "DoNotEmailService":
    from crm.nurture.do_not_email import DoNotEmailService

    return DoNotEmailService(lead_repository())


# ---------------------------------------------------------------- a person's data on request


def _privacy_hash_key() -> bytes:
    from crm.platform.signing_keys import signing_keys

    settings = get_settings()
    return signing_keys(settings.privacy_hash_key, settings.privacy_key_secret, "privacy hash key")[0]


@built_once
def suppression_list() -> "SuppressionList":
    from crm.leads.suppression import SuppressionList, SuppressionRepository

    return SuppressionList(SuppressionRepository(get_settings().table_name), _privacy_hash_key)


@built_once
def privacy_service() -> "PrivacyService":
    from crm.privacy.repository import PrivacyRepository
    from crm.privacy.service import PrivacyService

    settings = get_settings()
    return PrivacyService(
        PrivacyRepository(settings.table_name, settings.index_shards),
        suppression_list(),
        publisher(),
        settings.privacy_queue_url,
    )


@built_once
def export_service() -> "ExportService":
    from crm.exports.repository import ExportJobRepository
    from crm.exports.service import ExportService, ExportSettings
    from crm.exports.storage import S3ExportStorage

    settings = get_settings()
    return ExportService(
        ExportJobRepository(settings.table_name),
        S3ExportStorage(settings.exports_bucket),
        lead_query_service(),
        publisher(),
        cursor_codec(),
        ExportSettings(
            queue_url=settings.export_queue_url,
            page_size=settings.export_page_size,
            part_bytes=settings.export_part_bytes,
            link_seconds=settings.export_link_seconds,
            lease_seconds=settings.export_lease_seconds,
        ),
    )


@built_once
def import_service() -> "ImportService":
    from crm.imports.repository import ImportRepository
    from crm.imports.service import ImportService, ImportSettings
    from crm.imports.storage import S3ImportStorage

    settings = get_settings()
    return ImportService(
        ImportRepository(settings.table_name),
        S3ImportStorage(settings.imports_bucket),
        capture_service(),
        lead_repository(),
        publisher(),
        ImportSettings(
            queue_url=settings.import_queue_url,
            chunk_rows=settings.import_chunk_rows,
            lease_seconds=settings.import_lease_seconds,
            upload_seconds=settings.import_upload_seconds,
            link_seconds=settings.import_link_seconds,
        ),
    )


def caller(event: dict[str, Any]) -> "Principal":
    """The signed-in caller, with the teams the user directory gives them (what a manager may see).

    Every API route asks for the caller here, so permissions are decided on the same teams everywhere.
    """
    from crm.platform.auth import principal_from_event

    return user_service().with_directory_teams(principal_from_event(event))


def reset() -> None:
    """Forget built services (tests switch settings between cases)."""
    for getter in _BUILT:
        getter.cache_clear()
