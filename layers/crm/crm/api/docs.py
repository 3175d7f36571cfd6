"""The OpenAPI document of every route, generated from the routers themselves, and Swagger UI.

Request bodies are read by our own parsers (forms, signed webhooks, exact-byte idempotency), so routes
name their input model in the `x-request-model` extension and the document gains a `requestBody`
from that model's JSON schema here.
"""

import json
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer
from pydantic import BaseModel

from crm import api_models
from crm.api import capture, leads
from crm.http import FORM, JSON

TITLE = "LeadFlow lead management API"
VERSION = "1.0.0"
JWT_SCHEME = "CognitoJwt"
_FORM_ROUTES = {("/capture/form", "post")}

# Every router factory of every API function: the document covers all of them.
ROUTER_FACTORIES: list[Callable[[], Router]] = [capture.build_router, leads.build_router]


def _request_models() -> dict[str, type[BaseModel]]:
    models: dict[str, type[BaseModel]] = {}
    for name in dir(api_models):
        value = getattr(api_models, name)
        if isinstance(value, type) and issubclass(value, BaseModel):
            models[name] = value
    return models


def _add_request_bodies(document: dict[str, Any]) -> None:
    models = _request_models()
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            name = operation.pop("x-request-model", None)
            if name is None:
                continue
            schema = models[name].model_json_schema(ref_template="#/components/schemas/{model}")
            schemas.update(schema.pop("$defs", {}))
            schemas[name] = schema
            content = {JSON: {"schema": {"$ref": f"#/components/schemas/{name}"}}}
            if (path, method) in _FORM_ROUTES:
                content[FORM] = {"schema": {"$ref": f"#/components/schemas/{name}"}}
            operation["requestBody"] = {"required": True, "content": content}


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
    return document


def build_router() -> Router:
    router = Router()

    @router.get(
        "/openapi.json", summary="This API's OpenAPI document", tags=["Docs"], include_in_schema=False
    )
    def openapi_json() -> Response[str]:
        return Response(status_code=200, content_type=JSON, body=json.dumps(openapi_document()))

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
