"""The docs function serves the OpenAPI document and Swagger UI without any AWS dependency."""

import json
from typing import Any

from tests.support import event


def docs_event(path: str) -> dict[str, Any]:
    return event("get_openapi.json", rawPath=path, routeKey=f"GET {path}")


def test_the_openapi_document_is_served(invoke: Any) -> None:
    response = invoke("DocsFunction", docs_event("/openapi.json"))
    assert response["statusCode"] == 200
    document = json.loads(response["body"])
    assert document["info"]["title"] == "LeadFlow lead management API"
    assert "/capture/form" in document["paths"]


def test_swagger_ui_is_served_with_its_assets_inline(invoke: Any) -> None:
    response = invoke("DocsFunction", docs_event("/docs"))
    assert response["statusCode"] == 200
    assert response["headers"]["Content-Type"] == "text/html"
    assert "SwaggerUIBundle" in response["body"]
    assert "unpkg.com" not in response["body"]
