"""The OpenAPI document of every route, generated from the routers themselves, and Swagger UI.

Request bodies are read by our own parsers (forms, signed webhooks, exact-byte idempotency), so routes
name their input model class (`crm.api.openapi`) and the document gains a `requestBody`
from that model's JSON schema here; likewise `x-query-model` gives the query parameters. A PATCH or PUT
whose body has a `version` declares the `If-Match` header it also takes; a DELETE that takes one says so
with `x-if-match`. The functions read their own input, so Powertools' default 422 body is never sent:
it is left out. API Gateway answers some requests itself, before or instead of the function, with its own
`{"message": ...}` body: the JWT authorizer's 401, the route throttle's 429, its 413 for a body over its
payload limit; the document says so. A response documented without a body has no `content`.
"""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from pydantic import BaseModel, Field

from crm.api import (
    analytics,
    assignment,
    capture,
    conversion,
    lead_queries,
    leads,
    scoring,
    settings,
    tasks,
    users,
)
from crm.api import exports as exports_api
from crm.api import imports as imports_api
from crm.api import nurture as nurture_api
from crm.api import privacy as privacy_api
from crm.api import unsubscribe as unsubscribe_api
from crm.api import webhooks as webhooks_api
from crm.api.openapi import registered_model
from crm.integrations.events import EVENT_NAMES, event_schema
from crm.platform.http import FORM, JSON

TITLE = "LeadFlow lead management API"
VERSION = "1.0.0"
JWT_SCHEME = "CognitoJwt"
_FORM_ROUTES = {("/capture/form", "post"), ("/unsubscribe", "post")}
_POWERTOOLS_VALIDATION_ERROR = "#/components/schemas/HTTPValidationError"
_GATEWAY_ERROR = "#/components/schemas/GatewayErrorResponse"
_ERROR = "#/components/schemas/ErrorResponse"
_NO_ROLE = "Not allowed: the signed-in user has no role (admin, manager or rep)"
_IF_MATCH_ON_CHANGE = (
    'The version you read (the ETag), e.g. "3" (or `3`, `W/"3"`); or send it as `version` in the body. '
    "One of the two is required (428 without); a stale one is 409."
)
_IF_MATCH_ON_DELETE = (
    'Optional: the version you read (the ETag), e.g. "3". With it, only that version is deleted '
    "(409 if it changed meanwhile)."
)

# Every router factory of every API function: the document covers all of them.
ROUTER_FACTORIES: list[Callable[[], Router]] = [
    capture.build_router,
    leads.build_router,
    tasks.build_router,
    conversion.build_router,
    scoring.build_router,
    settings.build_router,
    users.build_router,
    assignment.build_router,
    lead_queries.build_router,
    analytics.build_router,
    nurture_api.build_router,
    unsubscribe_api.build_router,
    webhooks_api.build_router,
    privacy_api.build_router,
    exports_api.build_router,
    imports_api.build_router,
]


def _query_parameters(model: type[BaseModel], schemas: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAPI query parameters from a query-parameter model (routes name it in `x-query-model`)."""
    schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
    schemas.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema.get("properties", {}).items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "required": name in required}
        # An optional parameter's schema is anyOf [its type, null]: its description belongs to the parameter.
        for part in [prop, *prop.get("anyOf", [])]:
            if "description" in part:
                parameter["description"] = part.pop("description")
        prop.pop("title", None)
        parameter["schema"] = prop
        parameters.append(parameter)
    return parameters


def _if_match(description: str) -> dict[str, Any]:
    return {
        "name": "If-Match",
        "in": "header",
        "required": False,
        "description": description,
        "schema": {"type": "string"},
    }


# The body of API Gateway's own answers (no docstring: it would become the schema's description).
class GatewayErrorResponse(BaseModel):
    message: str = Field(examples=["Unauthorized", "Too Many Requests"])


def _complete_responses(document: dict[str, Any]) -> None:
    """What every route can answer beyond its own declaration: API Gateway's own answers (the JWT authorizer's
    401, the throttle's 429, a 413 over its payload limit) and the one role check's 403; and a response
    declared without a body loses its empty `content`."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    schemas["GatewayErrorResponse"] = GatewayErrorResponse.model_json_schema()
    gateway_body = {JSON: {"schema": {"$ref": _GATEWAY_ERROR}}}
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if operation.get("security"):
                # Every JWT route refuses a signed-in user with no role (crm.platform.auth), in one place.
                responses.setdefault(
                    "403", {"description": _NO_ROLE, "content": {JSON: {"schema": {"$ref": _ERROR}}}}
                )
                responses["401"] = {
                    "description": "No valid bearer token: the gateway's JWT authorizer refuses the request "
                    "before the function runs",
                    "content": gateway_body,
                }
            responses["429"] = {
                "description": "Throttled by the gateway's route limits; retry later",
                "content": gateway_body,
            }
            if "413" in responses:
                responses["413"]["content"] = {
                    JSON: {"schema": {"anyOf": [{"$ref": _ERROR}, {"$ref": _GATEWAY_ERROR}]}}
                }
            for response in responses.values():
                if response.get("content") == {}:
                    del response["content"]


def _drop_powertools_validation_errors(document: dict[str, Any]) -> None:
    """Powertools documents a 422 with its own body on every route declaring none; no function sends it."""
    for operations in document.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.get("responses", {})
            if _POWERTOOLS_VALIDATION_ERROR in json.dumps(responses.get("422", {})):
                del responses["422"]
    # Its schemas go too once nothing refers to them (each before the one it refers to).
    schemas = document.get("components", {}).get("schemas", {})
    for name in ("HTTPValidationError", "ResponseValidationError", "ValidationError"):
        others = {key: value for key, value in schemas.items() if key != name}
        if f'"#/components/schemas/{name}"' not in json.dumps([document.get("paths", {}), others]):
            schemas.pop(name, None)


def _add_request_bodies(document: dict[str, Any]) -> None:
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if operation.pop("x-if-match", False):
                operation["parameters"] = [*operation.get("parameters", []), _if_match(_IF_MATCH_ON_DELETE)]
            query_model = operation.pop("x-query-model", None)
            if query_model is not None:
                operation["parameters"] = [
                    *operation.get("parameters", []),
                    *_query_parameters(registered_model(query_model), schemas),
                ]
            name = operation.pop("x-request-model", None)
            if name is None:
                continue
            model = registered_model(name)
            schema = model.model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
            content = {JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}
            if (path, method) in _FORM_ROUTES:
                content[FORM] = {"schema": {"$ref": f"#/components/schemas/{name}"}}
            operation["requestBody"] = {"required": True, "content": content}
            if method in ("patch", "put") and "version" in model.model_fields:
                operation["parameters"] = [*operation.get("parameters", []), _if_match(_IF_MATCH_ON_CHANGE)]


@cache
def openapi_document() -> dict[str, Any]:
    resolver = APIGatewayHttpResolver(enable_validation=True)
    for build_router in ROUTER_FACTORIES:
        resolver.include_router(build_router())
    document: dict[str, Any] = json.loads(
        resolver.get_openapi_json_schema(
            title=TITLE,
            version=VERSION,
            description="Capture, deduplicate, score, assign, follow up and convert leads.",
            security_schemes={JWT_SCHEME: HTTPBearer(scheme="bearer", bearerFormat="JWT")},
        )
    )
    _add_request_bodies(document)
    _drop_powertools_validation_errors(document)
    _complete_responses(document)
    _add_domain_events(document)
    return document


def _add_domain_events(document: dict[str, Any]) -> None:
    """The domain events (EventBridge bus and outbound webhooks share one body): linked from the description
    to their JSON Schemas (served at `events/schemas/<name>.json`) and listed as the document's `webhooks`."""
    links = ", ".join(f"[{name}](events/schemas/{name}.json)" for name in EVENT_NAMES)
    document["info"]["description"] += (
        "\n\nDomain events, published to the lead-events EventBridge bus and sent to webhook subscriptions "
        f"(`source` leadflow, `detail-type` the name, a versioned `detail`); JSON Schemas: {links}."
    )
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    webhooks: dict[str, Any] = {}
    for name in EVENT_NAMES:
        schema = dict(event_schema(name) or {})
        for key in ("$schema", "$id"):
            schema.pop(key, None)
        component = "Event_" + name.replace(".", "_")
        schemas[component] = schema
        webhooks[name] = {
            "post": {
                "summary": name,
                "description": f"{schema.get('description', '')} Schema: [events/schemas/{name}.json]"
                f"(events/schemas/{name}.json). Signed with `X-Signature: t=<unix>,v1=<HMAC-SHA256 of "
                '"{t}.{body}">` and identified by `X-Event-Id`.',
                "requestBody": {
                    "required": True,
                    "content": {JSON: {"schema": {"$ref": f"#/components/schemas/{component}"}}},
                },
                "responses": {"200": {"description": "Received (any 2xx); 429 and 5xx are retried"}},
            }
        }
    document["webhooks"] = webhooks


def build_router() -> Router:
    router = Router()

    @router.get(
        "/openapi.json", summary="This API's OpenAPI document", tags=["Docs"], include_in_schema=False
    )
    def openapi_json() -> Response[str]:
        return Response(status_code=200, content_type=JSON, body=json.dumps(openapi_document()))

    @router.get(
        "/events/schemas/<name>",
        summary="A domain event's JSON Schema",
        tags=["Docs"],
        include_in_schema=False,
    )
    def event_schema_json(name: str) -> Response[str]:
        schema = event_schema(name.removesuffix(".json"))
        if schema is None:
            return Response(status_code=404, content_type=JSON, body=json.dumps({"message": "No such event"}))
        return Response(status_code=200, content_type=JSON, body=json.dumps(schema))

    @router.get("/docs", summary="Swagger UI", tags=["Docs"], include_in_schema=False)
    def swagger_ui() -> Response[str]:
        from aws_lambda_powertools.event_handler.openapi import swagger_ui

        assets = Path(swagger_ui.__file__).parent
        page = swagger_ui.generate_swagger_html(
            spec=json.dumps(openapi_document()).replace("</", "<\\/"),
            swagger_js=(assets / "swagger-ui-bundle.min.js").read_text(encoding="utf-8"),
            swagger_css=(assets / "swagger-ui.min.css").read_text(encoding="utf-8"),
            swagger_base_url="",
            oauth2_config=None,
            persist_authorization=True,
        )
        return Response(status_code=200, content_type="text/html", body=page)

    return router
