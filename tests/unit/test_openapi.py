import json
import re

from crm.api.docs import openapi_document
from openapi_spec_validator import validate

from devstack.template import Template

# The docs (with the domain events' schemas) and the web console.
DOC_ROUTES = {"GET /openapi.json", "GET /docs", "GET /events/schemas/{name}", "GET /app", "GET /app/{proxy+}"}


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


def operations() -> list[tuple[str, str, dict]]:
    return [
        (path, method, operation)
        for path, methods in openapi_document()["paths"].items()
        for method, operation in methods.items()
    ]


def parameter(operation: dict, name: str, where: str) -> dict | None:
    return next((p for p in operation.get("parameters", []) if p["name"] == name and p["in"] == where), None)


def test_task_lists_describe_their_query_parameters() -> None:
    listing = openapi_document()["paths"]["/tasks"]["get"]

    query = {p["name"]: p for p in listing["parameters"] if p["in"] == "query"}

    assert set(query) == {"owner", "state", "due_before", "limit", "cursor"}
    assert not any(p["required"] for p in query.values())
    assert query["limit"]["schema"]["maximum"] == 200 and query["owner"]["schema"]["default"] == "me"
    assert query["state"]["schema"]["enum"] == ["open", "done", "cancelled", "all"]
    assert query["state"]["schema"]["default"] == "open"
    assert all(p.get("description") for p in query.values())


def body_schema(operation: dict) -> dict:
    reference = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema: dict = openapi_document()["components"]["schemas"][reference.rsplit("/", 1)[1]]
    return schema


def test_every_versioned_change_declares_an_optional_if_match_header() -> None:
    versioned = [
        (path, method, operation)
        for path, method, operation in operations()
        if method in ("patch", "put") and "version" in body_schema(operation)["properties"]
    ]
    assert {f"{method.upper()} {path}" for path, method, _ in versioned} >= {
        "PATCH /leads/{lead_id}",
        "PATCH /tasks/{task_id}",
        "PATCH /nurture-sequences/{sequence_id}",
        "PUT /scoring-rules/{rule_id}",
        "PATCH /scoring-rules/{rule_id}",
        "PATCH /users/{sub}",
        "PATCH /assignment-rules/{rule_id}",
    }
    for path, method, operation in versioned:
        if_match = parameter(operation, "If-Match", "header")
        assert if_match is not None, f"{method.upper()} {path}"
        assert if_match["required"] is False and if_match["schema"] == {"type": "string"}
        assert '"3"' in if_match["description"]


def test_deletes_that_take_if_match_declare_it() -> None:
    paths = openapi_document()["paths"]

    for path in ("/nurture-sequences/{sequence_id}", "/scoring-rules/{rule_id}"):
        if_match = parameter(paths[path]["delete"], "If-Match", "header")
        assert if_match is not None and if_match["required"] is False, path
    # Deleting an assignment rule is unconditional: it reads no If-Match, so it declares none.
    assert parameter(paths["/assignment-rules/{rule_id}"]["delete"], "If-Match", "header") is None


def test_unsubscribe_documents_its_token_and_the_answers_it_really_gives() -> None:
    link = openapi_document()["paths"]["/unsubscribe"]["get"]
    one_click = openapi_document()["paths"]["/unsubscribe"]["post"]

    assert parameter(link, "token", "query")["required"] is True
    assert parameter(one_click, "token", "query")["required"] is False
    for operation in (link, one_click):
        assert "422" not in operation["responses"]
        assert "token" in operation["responses"]["400"]["description"]
        assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith(
            "ErrorResponse"
        )
    assert set(link["responses"]["400"]["content"]) == {"application/json", "text/html"}
    assert set(link["responses"]["200"]["content"]) == {"application/json", "text/html"}


def test_no_route_documents_a_validation_body_it_never_sends() -> None:
    # The functions read their own input and answer 422 with ErrorResponse, never Powertools' default body.
    assert "HTTPValidationError" not in json.dumps(openapi_document())


def schema_ref(response: dict) -> str:
    return str(response["content"]["application/json"]["schema"]["$ref"]).rsplit("/", 1)[1]


def test_protected_routes_document_the_gateways_401_body_and_the_role_checks_403() -> None:
    gateway_body = openapi_document()["components"]["schemas"]["GatewayErrorResponse"]
    assert gateway_body["required"] == [
        "message"
    ]  # what the JWT authorizer sends: {"message": "Unauthorized"}
    protected = [
        (path, method, operation) for path, method, operation in operations() if operation.get("security")
    ]
    assert len(protected) > 30
    for path, method, operation in protected:
        assert schema_ref(operation["responses"]["401"]) == "GatewayErrorResponse", f"{method} {path}"
        assert schema_ref(operation["responses"]["403"]) == "ErrorResponse", f"{method} {path}"


def test_every_route_documents_the_gateways_throttle_and_its_own_answers_to_a_body_too_large() -> None:
    for path, method, operation in operations():
        responses = operation["responses"]
        assert schema_ref(responses["429"]) == "GatewayErrorResponse", f"{method} {path}"
        if "413" in responses:
            bodies = responses["413"]["content"]["application/json"]["schema"]["anyOf"]
            assert {body["$ref"].rsplit("/", 1)[1] for body in bodies} == {
                "ErrorResponse",
                "GatewayErrorResponse",
            }


def test_an_answer_without_a_body_documents_no_content() -> None:
    paths = openapi_document()["paths"]

    for path in ("/assignment-rules/{rule_id}", "/nurture-sequences/{sequence_id}"):
        assert paths[path]["delete"]["responses"]["204"] == {"description": "Deleted"}


def test_email_fields_of_requests_say_their_format() -> None:
    schemas = openapi_document()["components"]["schemas"]

    for name in ("LeadFields", "CreateLeadRequest", "ChatCaptureRequest", "CreateUserRequest"):
        assert schemas[name]["properties"]["email"]["format"] == "email", name
    for name in ("UpdateLeadRequest", "UpdateUserRequest"):
        assert schemas[name]["properties"]["email"]["anyOf"][0]["format"] == "email", name


def test_answers_that_carry_one_of_two_bodies_or_redirect_say_so() -> None:
    paths = openapi_document()["paths"]

    known_email = paths["/leads"]["post"]["responses"]["200"]["content"]["application/json"]["schema"][
        "anyOf"
    ]
    assert {body["$ref"].rsplit("/", 1)[1] for body in known_email} == {"LeadResponse", "CaptureResponse"}
    redirect = paths["/capture/form"]["post"]["responses"]["303"]
    assert schema_ref(redirect) == "PublicCaptureResponse"


def test_the_document_links_every_domain_event_schema_and_lists_them_as_webhooks() -> None:
    from crm.integrations.events import EVENT_NAMES, event_schema

    document = openapi_document()
    for name in EVENT_NAMES:
        assert f"(events/schemas/{name}.json)" in document["info"]["description"]
        body = document["webhooks"][name]["post"]["requestBody"]["content"]["application/json"]["schema"]
        component = document["components"]["schemas"][body["$ref"].rsplit("/", 1)[-1]]
        assert component["properties"]["detail-type"] == {"const": name}
        assert (event_schema(name) or {})["properties"] == component["properties"]
