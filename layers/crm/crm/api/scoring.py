"""Scoring routes: rules CRUD and rescore jobs (manager or admin), a lead's score ledger, its events."""

import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.leads import ActivityResponse
from crm.api.models.lifecycle import etag, expected_version
from crm.api.models.scoring import (
    LeadScoreResponse,
    RecordActivityRequest,
    RescoreJobLink,
    RescoreJobResponse,
    RulePreviewRequest,
    RulePreviewResponse,
    ScoringRuleChangeResponse,
    ScoringRuleDeletedResponse,
    ScoringRuleListResponse,
    ScoringRulePatchRequest,
    ScoringRuleReplaceRequest,
    ScoringRuleResponse,
)
from crm.api.openapi import request_model
from crm.leads.permissions import require_role
from crm.platform.auth import Principal, Role
from crm.platform.errors import InvalidInput, NotFound
from crm.platform.http import (
    CHANGE_ERRORS,
    JWT,
    VERSIONED_CHANGE_ERRORS,
    documented_responses,
    json_response,
    model_from,
    parse_body,
    raw_body,
)
from crm.platform.ids import RECORD_ID
from crm.platform.settings import get_settings
from crm.scoring.preview import parse_changes
from crm.scoring.rescoring import is_job_id, rules_job_id
from crm.scoring.rules import ScoringRuleInput

_RULE_ID = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
_RULE_EDITORS = (Role.MANAGER, Role.ADMIN)
_DEFINITION_FIELDS = set(ScoringRuleInput.model_fields)


def _header(event: dict[str, Any], name: str) -> str | None:
    wanted = name.lower()
    return next((value for key, value in (event.get("headers") or {}).items() if key.lower() == wanted), None)


def _body(event: dict[str, Any]) -> dict[str, Any]:
    return parse_body(event.get("headers") or {}, raw_body(event, get_settings().max_body_bytes))


def _version(event: dict[str, Any], body_version: int | None) -> int:
    """The version the client read (If-Match or `version`), as every versioned route takes it."""
    return expected_version(event.get("headers") or {}, body_version)


def _rule_id(rule_id: str) -> str:
    if not _RULE_ID.match(rule_id):
        raise NotFound(f"No scoring rule with id {rule_id}")
    return rule_id


def _changed(rule: Any, revision: int, status: int = HTTPStatus.OK) -> Response[str]:
    body = ScoringRuleChangeResponse(
        rule=ScoringRuleResponse.from_rule(rule),
        revision=revision,
        rescore_job=RescoreJobLink.for_job(rules_job_id(revision)),
    )
    headers = etag(rule.version)
    if status == HTTPStatus.CREATED:
        headers["Location"] = f"/scoring-rules/{rule.id}"
    return json_response(status, body, headers=headers)


# ---------------------------------------------------------------- endpoints


def list_rules(principal: Principal) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    return json_response(
        HTTPStatus.OK, ScoringRuleListResponse.from_rule_set(bootstrap.rule_service().rule_set())
    )


def get_rule(principal: Principal, rule_id: str) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    rule = bootstrap.rule_service().get(_rule_id(rule_id))
    return json_response(HTTPStatus.OK, ScoringRuleResponse.from_rule(rule), headers=etag(rule.version))


def create_rule(event: dict[str, Any], principal: Principal) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    definition = model_from(ScoringRuleInput, _body(event))
    rule, revision = bootstrap.rule_service().create(definition, actor=principal.actor)
    return _changed(rule, revision, HTTPStatus.CREATED)


def replace_rule(event: dict[str, Any], principal: Principal, rule_id: str) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    rule_id = _rule_id(rule_id)
    request = model_from(ScoringRuleReplaceRequest, _body(event))
    version = _version(event, request.version)
    definition = ScoringRuleInput.model_validate(request.model_dump(exclude={"version"}))
    rule, revision = bootstrap.rule_service().replace(rule_id, definition, version, actor=principal.actor)
    return _changed(rule, revision)


def patch_rule(event: dict[str, Any], principal: Principal, rule_id: str) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    rule_id = _rule_id(rule_id)
    request = model_from(ScoringRulePatchRequest, _body(event))
    version = _version(event, request.version)
    changes = request.model_dump(exclude_unset=True, exclude={"version"})
    if not changes:
        raise InvalidInput.single("body", "name at least one field to change")
    current = bootstrap.rule_service().get(rule_id)
    # The merged rule is validated as a whole: errors name the field, as on create.
    definition = model_from(ScoringRuleInput, current.model_dump(include=_DEFINITION_FIELDS) | changes)
    rule, revision = bootstrap.rule_service().replace(rule_id, definition, version, actor=principal.actor)
    return _changed(rule, revision)


def delete_rule(event: dict[str, Any], principal: Principal, rule_id: str) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    # Optional on delete: with If-Match, only the version read is deleted.
    version = _version(event, None) if (_header(event, "If-Match") or "").strip() else None
    rule, revision = bootstrap.rule_service().delete(_rule_id(rule_id), version, actor=principal.actor)
    body = ScoringRuleDeletedResponse(
        deleted=rule.id, revision=revision, rescore_job=RescoreJobLink.for_job(rules_job_id(revision))
    )
    return json_response(HTTPStatus.OK, body)


def preview_rules(event: dict[str, Any], principal: Principal) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    body = _body(event)
    # Each change is checked on its own, so an error names it (changes[1].points); then the rest.
    changes = parse_changes(body.get("changes", []))
    request = model_from(RulePreviewRequest, body | {"changes": []})
    preview = bootstrap.rule_preview_service().preview(principal, changes, request.threshold)
    return json_response(HTTPStatus.OK, RulePreviewResponse.from_preview(preview))


def get_rescore_job(principal: Principal, job_id: str) -> Response[str]:
    require_role(principal, *_RULE_EDITORS)
    if not is_job_id(job_id):
        raise NotFound(f"No rescore job {job_id}")
    job = bootstrap.rescore_service().job_status(job_id)
    return json_response(HTTPStatus.OK, RescoreJobResponse.from_job(job))


def get_lead_score(principal: Principal, lead_id: str) -> Response[str]:
    if not RECORD_ID.match(lead_id):
        raise NotFound(f"No lead with id {lead_id}")
    lead, breakdown = bootstrap.scoring_service().lead_score(principal, lead_id)
    return json_response(HTTPStatus.OK, LeadScoreResponse.from_breakdown(lead, breakdown))


def record_activity(event: dict[str, Any], principal: Principal, lead_id: str) -> Response[str]:
    if not RECORD_ID.match(lead_id):
        raise NotFound(f"No lead with id {lead_id}")
    request = model_from(RecordActivityRequest, _body(event))
    activity, created = bootstrap.activity_service().record(
        principal,
        lead_id,
        activity_type=request.type,
        description=request.description,
        occurred_at=request.occurred_at,
        event_id=request.event_id,
        data=dict(request.data),
    )
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return json_response(status, ActivityResponse.from_activity(activity))


# ---------------------------------------------------------------- routes


def build_router() -> Router:
    router = Router()

    def event() -> dict[str, Any]:
        raw: dict[str, Any] = router.current_event.raw_event
        return raw

    def caller() -> Principal:
        return bootstrap.caller(event())

    @router.get(
        "/scoring-rules",
        summary="Every scoring rule (manager or admin)",
        description="A fresh install starts with the default rules. `revision` goes up with every change.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses({200: ("The rules", ScoringRuleListResponse)}, 401, 403, 503),
    )
    def list_rules_route() -> Response[str]:
        return list_rules(caller())

    @router.post(
        "/scoring-rules",
        summary="Create a scoring rule (manager or admin); every open lead is rescored",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses(
            {201: ("The rule, and the job rescoring every open lead", ScoringRuleChangeResponse)},
            *CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(ScoringRuleInput),
    )
    def create_rule_route() -> Response[str]:
        return create_rule(event(), caller())

    @router.post(
        "/scoring-rules/preview",
        summary="Try a rule change (and a sales threshold) over the open leads, writing nothing",
        description="Grades and sales/nurture counts now and with the change, and the 20 biggest movers. "
        "Above 10,000 open leads a uniform sample is scored (`sampled`). Manager or admin.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses(
            {200: ("What the change would do", RulePreviewResponse)}, 400, 401, 403, 413, 415, 422, 503
        ),
        openapi_extensions=request_model(RulePreviewRequest),
    )
    def preview_rules_route() -> Response[str]:
        return preview_rules(event(), caller())

    @router.get(
        "/scoring-rules/rescore-jobs/<job_id>",
        summary="Progress of a rescore job: how many leads of how many (manager or admin)",
        description="`rules-<revision>` after a rule change, `decay-<YYYY-MM-DD>` for the daily decay pass.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses({200: ("The job", RescoreJobResponse)}, 401, 403, 404, 503),
    )
    def get_rescore_job_route(job_id: str) -> Response[str]:
        return get_rescore_job(caller(), job_id)

    @router.get(
        "/scoring-rules/<rule_id>",
        summary="One scoring rule (manager or admin)",
        description="The `ETag` header carries the version to send back as `If-Match` when changing it.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses({200: ("The rule", ScoringRuleResponse)}, 401, 403, 404, 503),
    )
    def get_rule_route(rule_id: str) -> Response[str]:
        return get_rule(caller(), rule_id)

    @router.put(
        "/scoring-rules/<rule_id>",
        summary="Replace a scoring rule (manager or admin); every open lead is rescored",
        description="Optimistic locking: the version read (`If-Match` or `version`); stale 409, missing 428.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses(
            {200: ("The rule, and the job rescoring every open lead", ScoringRuleChangeResponse)},
            *VERSIONED_CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(ScoringRuleReplaceRequest),
    )
    def replace_rule_route(rule_id: str) -> Response[str]:
        return replace_rule(event(), caller(), rule_id)

    @router.patch(
        "/scoring-rules/<rule_id>",
        summary="Change some fields of a scoring rule (manager or admin); every open lead is rescored",
        description="Optimistic locking: the version read (`If-Match` or `version`); stale 409, missing 428.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses(
            {200: ("The rule, and the job rescoring every open lead", ScoringRuleChangeResponse)},
            *VERSIONED_CHANGE_ERRORS,
        ),
        openapi_extensions=request_model(ScoringRulePatchRequest),
    )
    def patch_rule_route(rule_id: str) -> Response[str]:
        return patch_rule(event(), caller(), rule_id)

    @router.delete(
        "/scoring-rules/<rule_id>",
        summary="Delete a scoring rule (manager or admin); every open lead is rescored",
        description="`If-Match` (optional) makes the delete conditional on the version read.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses(
            {200: ("The deleted rule's id, and the rescore job", ScoringRuleDeletedResponse)},
            401,
            403,
            404,
            409,
            422,
            503,
        ),
        openapi_extensions={"x-if-match": True},
    )
    def delete_rule_route(rule_id: str) -> Response[str]:
        return delete_rule(event(), caller(), rule_id)

    @router.get(
        "/leads/<lead_id>/score",
        summary="A lead's score and the ledger that explains it",
        description="Each matched rule with its points after decay and caps, and when; they add up to the "
        "stored score (plus `limit_adjustment` when the total is held within 0..1000).",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses({200: ("The score", LeadScoreResponse)}, 401, 404, 503),
    )
    def get_lead_score_route(lead_id: str) -> Response[str]:
        return get_lead_score(caller(), lead_id)

    @router.post(
        "/leads/<lead_id>/activities",
        summary="Record a behavioural event on a lead (system API); the lead is rescored within seconds",
        description="With `event_id` the call is idempotent: a replay answers 200 with the first activity.",
        tags=["Scoring"],
        security=JWT,
        responses=documented_responses(
            {
                201: ("The activity", ActivityResponse),
                200: ("This event_id was recorded before: the first activity", ActivityResponse),
            },
            400,
            401,
            403,
            404,
            413,
            415,
            422,
            503,
        ),
        openapi_extensions=request_model(RecordActivityRequest),
    )
    def record_activity_route(lead_id: str) -> Response[str]:
        return record_activity(event(), caller(), lead_id)

    return router
