"""Environment, read once at cold start into a validated model."""

import os
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from crm.platform.working_hours import parse_working_hours


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True)

    stage: str = "dev"
    table_name: str = Field(min_length=1)
    allowed_origins: tuple[str, ...] = ()
    public_base_url: str = "http://127.0.0.1:3000"
    # The web console (crm.api.console): its address (links in staff emails), the app client it signs in
    # with and where the sign-in pages live (Cognito's managed login domain, or the local stack itself).
    public_console_url: str = "http://127.0.0.1:3000/app/"
    console_client_id: str = ""
    console_auth_base_url: str = ""
    partner_secrets_path: str = "/leadflow/dev/partners"
    # Write-sharding for low-cardinality index keys (status, source, unassigned queue).
    index_shards: int = Field(default=4, ge=1, le=64)
    max_body_bytes: int = Field(default=256 * 1024, ge=1024)
    idempotency_ttl_seconds: int = Field(default=24 * 3600, ge=60)
    webhook_tolerance_seconds: int = Field(default=300, ge=1)
    honeypot_field: str = "_gotcha"
    # A website form whose `form_type` is one of these is a demo request (crm.capture.service).
    demo_request_form_types: tuple[str, ...] = ("demo_request",)
    # Server-side captcha check of the public capture routes (crm.platform.captcha): off while the secret is
    # empty. The verify URL speaks Cloudflare Turnstile's and reCAPTCHA's siteverify protocol.
    captcha_secret: str = ""
    captcha_verify_url: str = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    # Nurture email only to people who agreed to marketing email (crm.nurture.sequences.stop_reason).
    nurture_requires_consent: bool = True
    # Assignment and notifications (crm.assignment.routing, crm.assignment.service,
    # crm.notifications.delivery).
    sales_threshold: int = Field(default=70, ge=0, le=1000)
    default_team: str = Field(default="sales", min_length=1)
    after_hours_policy: Literal["assign", "wait"] = "assign"
    assignment_queue_url: str = ""
    notification_queue_url: str = ""
    notification_sender: str = "leads@leadflow.local"
    ses_configuration_set: str = ""
    # Queue consumers: where a message goes after its last attempt, and the retry backoff's first step.
    dead_letter_queue_url: str = ""
    max_receive_count: int = Field(default=5, ge=1, le=1000)
    retry_base_seconds: int = Field(default=10, ge=0, le=900)
    # A lead that is not qualified converts only with `force: true` from a manager or admin.
    conversion_requires_qualification: bool = True
    # Lead scoring (crm.scoring.service): behavioural points halve every this many days; 0 or unset: no decay.
    score_half_life_days: float | None = Field(default=None, gt=0, le=3650)
    rescore_queue_url: str = ""
    rescore_page_size: int = Field(default=50, ge=1, le=500)
    rescore_concurrency: int = Field(default=8, ge=1, le=32)

    # Speed to lead (crm.follow_ups.rules): a new lead not contacted within this many minutes of working time
    # escalates to its team's managers (0: off); working time as `mon-fri 09:00-17:00 Europe/London`, or
    # empty for around the clock.
    speed_to_lead_sla_minutes: int = Field(default=60, ge=0, le=60 * 24 * 30)
    sla_working_hours: str = "mon-fri 09:00-17:00 UTC"

    # Lists and analytics (crm.queries.lists, crm.analytics.counters): the page cursor's HMAC key, given
    # directly
    # (tests) or, in AWS, as the ARN of the Secrets Manager secret the stack generates (CURSOR_KEY_SECRET);
    # one line per key, newest first, during a rotation (crm.platform.signing_keys).
    cursor_signing_key: str = ""
    cursor_key_secret: str = ""
    # Nurture emails (crm.nurture.unsubscribe): the HMAC key of one-click unsubscribe links, configured
    # like the
    # cursor key (UNSUBSCRIBE_SIGNING_KEY, or in AWS the secret UNSUBSCRIBE_KEY_SECRET).
    unsubscribe_signing_key: str = ""
    unsubscribe_key_secret: str = ""
    # A person's data on request (crm.privacy): the erasure queue, and the key of the email hash that names
    # an erased person (PRIVACY_HASH_KEY, or in AWS the secret PRIVACY_KEY_SECRET; its first line).
    privacy_queue_url: str = ""
    privacy_hash_key: str = ""
    privacy_key_secret: str = ""
    # Leads not converted and with no change or activity for this many days are erased by a daily job
    # (crm.privacy.service.start_retention); 0: off.
    inactive_lead_retention_days: int = Field(default=0, ge=0, le=36500)
    # Domain events (crm.integrations.publisher): the custom bus LeadEventsFunction publishes to; empty: none.
    event_bus_name: str = ""
    # Outbound webhooks (crm.integrations.webhooks): the delivery queue, its dead-letter queue, the first
    # retry's delay (doubling per attempt), and whether http://127.0.0.1 URLs are allowed (only the local
    # stack sets it).
    webhook_queue_url: str = ""
    webhook_dead_letter_queue_url: str = ""
    webhook_retry_base_seconds: float = Field(default=30, ge=0, le=900)
    webhook_allow_loopback: bool = False
    # CSV exports (crm.exports.service): the private bucket of the files, the job's queue, leads per list
    # page, bytes per multipart part (S3: at least 5 MiB but the last), how long a download link lasts, and
    # the lease a worker holds on a job while it writes a part (longer than the function's timeout).
    exports_bucket: str = ""
    export_queue_url: str = ""
    export_page_size: int = Field(default=100, ge=1, le=100)
    export_part_bytes: int = Field(default=5 * 1024 * 1024, ge=1)
    export_link_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    export_lease_seconds: int = Field(default=360, ge=1, le=3600)
    # CSV imports (crm.imports.service): the private bucket of the uploads and reject files, the chunks'
    # queue, rows per chunk at most, the lease a worker holds on an import while it works a chunk (longer than
    # the function's timeout), how long the upload link and the rejects link work.
    imports_bucket: str = ""
    import_queue_url: str = ""
    import_chunk_rows: int = Field(default=1000, ge=1, le=100_000)
    import_lease_seconds: int = Field(default=360, ge=1, le=3600)
    import_upload_seconds: int = Field(default=900, ge=60, le=7 * 24 * 3600)
    import_link_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)

    @field_validator("score_half_life_days", mode="before")
    @classmethod
    def zero_turns_decay_off(cls, value: object) -> object:
        if isinstance(value, str) and not value.strip():
            return None
        try:
            return None if float(value) == 0 else value  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return value  # reported by the field's own validation

    @field_validator("sla_working_hours")
    @classmethod
    def readable_working_hours(cls, value: str) -> str:
        parse_working_hours(value)  # ValueError says what is expected
        return value

    @field_validator("allowed_origins", mode="before")
    @classmethod
    def split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value

    @field_validator("demo_request_form_types", mode="before")
    @classmethod
    def split_form_types(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(kind.strip().lower() for kind in value.split(",") if kind.strip())
        return value


@cache
def get_settings() -> Settings:
    names = Settings.model_fields.keys()
    values = {name: os.environ[name.upper()] for name in names if name.upper() in os.environ}
    return Settings.model_validate(values)
