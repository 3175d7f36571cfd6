import re

from crm.api.docs import openapi_document
from openapi_spec_validator import validate

from devstack.template import Template

DOC_ROUTES = {"GET /openapi.json", "GET /docs"}


def normalised(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)


def test_the_document_is_valid_openapi() -> None:
    validate(openapi_document())


def test_every_template_route_is_documented_and_nothing_else(template: Template) -> None:
    in_template = {
        f"{route.method} {normalised(route.path)}"
        for route in template.routes
        if f"{route.method} {route.path}" not in DOC_ROUTES
    }
    document = openapi_document()
    in_document = {
        f"{method.upper()} {normalised(path)}"
        for path, operations in document["paths"].items()
        for method in operations
    }
    assert in_document == in_template


def test_protected_routes_declare_the_jwt_and_public_ones_do_not(template: Template) -> None:
    document = openapi_document()
    for route in template.routes:
        if f"{route.method} {route.path}" in DOC_ROUTES:
            continue
        path = next(p for p in document["paths"] if normalised(p) == normalised(route.path))
        operation = document["paths"][path][route.method.lower()]
        assert bool(operation.get("security")) == (route.authorizer is not None), route.route_key


def test_request_bodies_and_error_bodies_are_described() -> None:
    capture_form = openapi_document()["paths"]["/capture/form"]["post"]
    assert set(capture_form["requestBody"]["content"]) == {
        "application/json",
        "application/x-www-form-urlencoded",
    }
    assert capture_form["responses"]["422"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "ErrorResponse"
    )
