"""HTTP plumbing shared by the API functions: the resolver, error mapping, body reading, responses.

This is the one place that maps domain errors to HTTP status codes.
"""

import json
from decimal import Decimal
from http import HTTPStatus
from types import UnionType
from typing import Any
from urllib.parse import parse_qsl

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyValidationError,
)
from pydantic import BaseModel, ValidationError

from crm.platform.errors import (
    BadQuery,
    Conflict,
    DomainError,
    FieldProblem,
    Forbidden,
    InvalidInput,
    MalformedBody,
    NotFound,
    PayloadTooLarge,
    PreconditionRequired,
    RetryableError,
    Unauthorized,
    UnsupportedMediaType,
)
from crm.platform.observability import logger


class ErrorField(BaseModel):
    field: str
    message: str


# The body of every error answer (no docstring: it would become the schema's description).
class ErrorResponse(BaseModel):
    error: str
    message: str
    fields: list[ErrorField] | None = None
    current_version: int | None = None


JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_FIELDS = 200
# DynamoDB's own nesting limit for what it stores; no request of this API needs more. A deeper body is
# refused before anything reads it (Python's json and pydantic recurse, and ~1000 levels overflow them).
MAX_JSON_DEPTH = 32
# Routes behind the API's JWT authorizer declare this, so the OpenAPI document says so.
JWT: list[dict[str, list[str]]] = [{"CognitoJwt": []}]

_STATUS_BY_ERROR: list[tuple[type[DomainError], HTTPStatus]] = [
    (PreconditionRequired, HTTPStatus.PRECONDITION_REQUIRED),  # before InvalidInput, its base
    (BadQuery, HTTPStatus.BAD_REQUEST),  # before InvalidInput, its base
    (InvalidInput, HTTPStatus.UNPROCESSABLE_ENTITY),
    (MalformedBody, HTTPStatus.BAD_REQUEST),
    (UnsupportedMediaType, HTTPStatus.UNSUPPORTED_MEDIA_TYPE),
    (PayloadTooLarge, HTTPStatus.REQUEST_ENTITY_TOO_LARGE),
    (Unauthorized, HTTPStatus.UNAUTHORIZED),
    (Forbidden, HTTPStatus.FORBIDDEN),
    (NotFound, HTTPStatus.NOT_FOUND),
    (Conflict, HTTPStatus.CONFLICT),
    (RetryableError, HTTPStatus.SERVICE_UNAVAILABLE),
]


_ERROR_DESCRIPTIONS = {
    400: "Malformed body (not JSON, not UTF-8, not an object), or query parameters no index serves "
    "together, or a cursor from another query (named in `fields`)",
    401: "Missing or invalid credentials or signature",
    403: "Not allowed for this role",
    404: "Not found (or not visible to the caller)",
    409: "Conflict: a stale version, or a request with this Idempotency-Key still in progress",
    413: "Body too large",
    415: "Unsupported Content-Type",
    422: "Invalid fields, each named in `fields`",
    428: "The version is required (`If-Match` header or `version` in the body)",
    503: "Temporarily unavailable; retry after `Retry-After` seconds",
}


# What a route that changes something from a JSON body can answer besides success: a bad body (400, 413,
# 415, 422), no or too few rights (401, 403), an unknown record (404), a conflict (409), a busy database
# (503); and with optimistic locking, no version sent (428).
CHANGE_ERRORS = (400, 401, 403, 404, 409, 413, 415, 422, 503)
VERSIONED_CHANGE_ERRORS = (*CHANGE_ERRORS, 428)


def documented_responses(
    success: dict[int, tuple[str, type[BaseModel] | UnionType | None]], *errors: int
) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses for a route: its successes (a model, or `A | B` when either body may come) and the
    error bodies it can answer with."""
    documented: dict[int, OpenAPIResponse] = {}
    for status, (description, model) in success.items():
        # No model: no body. The empty content keeps Powertools from guessing one from the handler's return
        # type (the document's builder, crm.api.docs, then leaves `content` out).
        documented[status] = {
            "description": description,
            "content": {JSON: {"model": model}} if model else {},
        }
    for status in errors:
        documented[status] = {
            "description": _ERROR_DESCRIPTIONS[status],
            "content": {JSON: {"model": ErrorResponse}},
        }
    return documented


def json_response(status: int, model: BaseModel, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=model.model_dump_json(exclude_none=False),
        headers=headers,
    )


def error_response(status: int, body: ErrorResponse, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body.model_dump_json(exclude_none=True),
        headers=headers,
    )


def _field_name(location: tuple[Any, ...]) -> str:
    parts = [str(part) for part in location if part not in ("body", "query", "path")]
    return ".".join(parts) or "body"


def problems_from_pydantic(errors: list[Any]) -> list[FieldProblem]:
    problems = []
    for error in errors:
        message = str(error.get("msg") or error.get("type", "invalid")).removeprefix("Value error, ")
        if error.get("type") == "extra_forbidden":
            message = "unknown field"
        elif error.get("type") == "missing":
            message = "field required"
        problems.append(FieldProblem(_field_name(tuple(error.get("loc", ()))), str(message)))
    return problems


def invalid_input_from(exc: ValidationError) -> InvalidInput:
    problems = problems_from_pydantic(list(exc.errors(include_url=False, include_input=False)))
    summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
    return InvalidInput(problems, f"Invalid fields: {summary}")


def _invalid_input_body(exc: InvalidInput) -> ErrorResponse:
    return ErrorResponse(
        error=exc.code,
        message=exc.message,
        fields=[ErrorField(field=p.field, message=p.message) for p in exc.problems],
    )


def build_resolver(enable_validation: bool = False) -> APIGatewayHttpResolver:
    app = APIGatewayHttpResolver(enable_validation=enable_validation)

    @app.exception_handler(ValidationError)
    def _pydantic_error(exc: ValidationError) -> Response[str]:
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, _invalid_input_body(invalid_input_from(exc)))

    @app.exception_handler(RequestValidationError)
    def _request_validation_error(exc: RequestValidationError) -> Response[str]:
        errors = list(exc.errors())
        if any(error.get("type") == "json_invalid" for error in errors):
            body = ErrorResponse(error=MalformedBody.code, message="The body is not valid JSON")
            return error_response(HTTPStatus.BAD_REQUEST, body)
        problems = problems_from_pydantic(errors)
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems)
        return error_response(
            HTTPStatus.UNPROCESSABLE_ENTITY,
            _invalid_input_body(InvalidInput(problems, f"Invalid fields: {summary}")),
        )

    @app.exception_handler(IdempotencyValidationError)
    def _idempotency_mismatch(exc: IdempotencyValidationError) -> Response[str]:
        body = ErrorResponse(
            error="idempotency_key_reused",
            message="This Idempotency-Key was already used with a different request body",
            fields=[ErrorField(field="Idempotency-Key", message="already used with a different body")],
        )
        return error_response(HTTPStatus.UNPROCESSABLE_ENTITY, body)

    @app.exception_handler(IdempotencyAlreadyInProgressError)
    def _idempotency_in_progress(exc: IdempotencyAlreadyInProgressError) -> Response[str]:
        body = ErrorResponse(
            error="idempotency_in_progress",
            message="A request with this Idempotency-Key is still being processed; retry shortly",
        )
        return error_response(HTTPStatus.CONFLICT, body, headers={"Retry-After": "1"})

    @app.exception_handler(DomainError)
    def _domain_error(exc: DomainError) -> Response[str]:
        status = next(
            (code for error_type, code in _STATUS_BY_ERROR if isinstance(exc, error_type)),
            HTTPStatus.BAD_REQUEST,
        )
        if isinstance(exc, InvalidInput):
            return error_response(status, _invalid_input_body(exc))
        headers: dict[str, str] = {}
        if isinstance(exc, RetryableError):
            headers["Retry-After"] = "1"
            logger.warning("Retryable failure", extra={"error": exc.message})
        body = ErrorResponse(
            error=exc.code,
            message=exc.message,
            current_version=exc.current_version if isinstance(exc, Conflict) else None,
        )
        return error_response(status, body, headers=headers or None)

    return app


# ---------------------------------------------------------------- reading bodies


def _reject_constant(name: str) -> None:
    raise ValueError(f"{name} is not a number JSON allows")


def media_type(headers: dict[str, str]) -> str:
    value = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    return value.split(";", 1)[0].strip().lower()


def raw_body(event: Any, max_bytes: int) -> bytes:
    """The request body as bytes (API Gateway base64-encodes some), refused past `max_bytes`."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        import base64

        if len(body) * 3 // 4 > max_bytes:
            raise PayloadTooLarge(f"The body is larger than {max_bytes // 1024} KB")
        try:
            data = base64.b64decode(body, validate=True)
        except ValueError:
            raise MalformedBody("The body is not valid base64") from None
    else:
        # surrogatepass: a text body that is not valid UTF-8 stays invalid, for parse_json_object to refuse
        data = body.encode("utf-8", "surrogatepass") if isinstance(body, str) else bytes(body)
    if len(data) > max_bytes:
        raise PayloadTooLarge(f"The body is larger than {max_bytes // 1024} KB")
    return data


def _nesting_depth(value: Any) -> int:
    """How deeply objects and arrays nest in a parsed JSON value (a scalar is 0), without recursing."""
    deepest = 0
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            depth += 1
            deepest = max(deepest, depth)
            pending.extend((child, depth) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json_object(data: bytes) -> dict[str, Any]:
    """The one reader of JSON request bodies: strict UTF-8 (RFC 8259), Decimal numbers, bounded nesting."""
    if not data.strip():
        raise MalformedBody("The body is empty; send a JSON object")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise MalformedBody("The body is not UTF-8") from None
    too_deep = MalformedBody(f"The body nests objects and arrays deeper than {MAX_JSON_DEPTH} levels")
    try:
        value = json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise MalformedBody(f"The body is not valid JSON: {exc}") from None
    if not isinstance(value, dict):
        raise MalformedBody("The body must be a JSON object")
    if _nesting_depth(value) > MAX_JSON_DEPTH:
        raise too_deep
    return value


def parse_form(data: bytes) -> dict[str, str]:
    try:
        text = data.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=MAX_FORM_FIELDS)
    except UnicodeDecodeError:
        raise MalformedBody("The form is not UTF-8") from None
    except ValueError:
        raise PayloadTooLarge(f"The form has more than {MAX_FORM_FIELDS} fields") from None
    fields: dict[str, str] = {}
    for name, value in pairs:
        fields.setdefault(name, value)  # the first value wins when a field repeats
    return fields


def parse_body(headers: dict[str, str], data: bytes, accept_form: bool = False) -> dict[str, Any]:
    """JSON object (or urlencoded form where accepted), with clear 4xx errors for anything else."""
    kind = media_type(headers)
    if kind in ("", JSON) or kind.endswith("+json"):
        return parse_json_object(data)
    if accept_form and kind == FORM:
        return parse_form(data)
    accepted = f"{JSON} or {FORM}" if accept_form else JSON
    raise UnsupportedMediaType(f"Content-Type must be {accepted}")


def model_from(model: type[Any], data: dict[str, Any]) -> Any:
    """Validate input into an API model, turning pydantic's errors into InvalidInput naming each field."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise invalid_input_from(exc) from None
