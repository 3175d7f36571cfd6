"""Users (`/users`): any signed-in user reads the directory; admins create and change users."""

import re
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.models.lifecycle import etag, expected_version
from crm.api.models.users import CreateUserRequest, UpdateUserRequest, UserListResponse, UserResponse
from crm.api.openapi import request_model
from crm.platform.errors import InvalidInput, NotFound
from crm.platform.http import (
    JWT,
    VERSIONED_CHANGE_ERRORS,
    documented_responses,
    json_response,
    model_from,
    parse_body,
    raw_body,
)
from crm.platform.settings import get_settings
from crm.users.model import team_name

_SUB = re.compile(r"^[A-Za-z0-9_.:@\-]{1,128}$")


def _json_body(event: dict[str, Any]) -> dict[str, Any]:
    return parse_body(event.get("headers") or {}, raw_body(event, get_settings().max_body_bytes))


def _checked_sub(sub: str) -> str:
    if not _SUB.match(sub):
        raise NotFound(f"No user with sub {sub}")
    return sub


def list_users(event: dict[str, Any]) -> Response[str]:
    bootstrap.caller(event)
    team = (event.get("queryStringParameters") or {}).get("team")
    repository = bootstrap.user_repository()
    if team is not None:
        try:
            users = repository.team_members(team_name(team.strip()))
        except ValueError as exc:
            raise InvalidInput.single("team", str(exc)) from None
    else:
        users = repository.list_all()
    loads = bootstrap.user_service().open_leads(users)
    listed = [UserResponse.from_user(user, loads.get(user.sub, 0)) for user in users]
    body = UserListResponse(items=listed, users=listed)
    return json_response(HTTPStatus.OK, body)


def get_user(event: dict[str, Any], sub: str) -> Response[str]:
    bootstrap.caller(event)
    user = bootstrap.user_repository().require(_checked_sub(sub))
    load = bootstrap.user_service().open_leads([user]).get(user.sub, 0)
    return json_response(HTTPStatus.OK, UserResponse.from_user(user, load), headers=etag(user.version))


def create_user(event: dict[str, Any]) -> Response[str]:
    principal = bootstrap.caller(event)
    request: CreateUserRequest = model_from(CreateUserRequest, _json_body(event))
    user = bootstrap.user_service().create(request.to_user, principal)
    headers = {"Location": f"/users/{user.sub}", **etag(user.version)}
    return json_response(HTTPStatus.CREATED, UserResponse.from_user(user, 0), headers=headers)


def update_user(event: dict[str, Any], sub: str) -> Response[str]:
    principal = bootstrap.caller(event)
    request: UpdateUserRequest = model_from(UpdateUserRequest, _json_body(event))
    version = expected_version(event.get("headers") or {}, request.version)
    user = bootstrap.user_service().update(_checked_sub(sub), request.apply, version, principal)
    load = bootstrap.user_service().open_leads([user]).get(user.sub, 0)
    return json_response(HTTPStatus.OK, UserResponse.from_user(user, load), headers=etag(user.version))


def build_router() -> Router:
    router = Router()

    @router.get(
        "/users",
        summary="Users (reps, managers, admins) with their open leads; `?team=` for one team",
        tags=["Users"],
        security=JWT,
        responses=documented_responses({200: ("The users, by name", UserListResponse)}, 401, 422),
    )
    def list_users_route() -> Response[str]:
        return list_users(router.current_event.raw_event)

    @router.get(
        "/users/<sub>",
        summary="One user, by the sub of their Cognito user",
        tags=["Users"],
        security=JWT,
        responses=documented_responses({200: ("The user (ETag: its version)", UserResponse)}, 401, 404),
    )
    def get_user_route(sub: str) -> Response[str]:
        return get_user(router.current_event.raw_event, sub)

    @router.post(
        "/users",
        summary="Create a user (admin)",
        description="`sub` is the subject of the person's Cognito user. Email and sub are unique.",
        tags=["Users"],
        security=JWT,
        responses=documented_responses(
            {201: ("The new user", UserResponse)}, 400, 401, 403, 409, 413, 415, 422, 503
        ),
        openapi_extensions=request_model(CreateUserRequest),
    )
    def create_user_route() -> Response[str]:
        return create_user(router.current_event.raw_event)

    @router.patch(
        "/users/<sub>",
        summary="Change a user (admin): role, teams, active, capacity, working hours, absence",
        description=(
            'Send the version you read as `If-Match: "3"` or `version`: stale is 409, missing is 428. '
            "Leads waiting in the user's teams are sent for assignment again at once."
        ),
        tags=["Users"],
        security=JWT,
        responses=documented_responses({200: ("The user as stored", UserResponse)}, *VERSIONED_CHANGE_ERRORS),
        openapi_extensions=request_model(UpdateUserRequest),
    )
    def update_user_route(sub: str) -> Response[str]:
        return update_user(router.current_event.raw_event, sub)

    return router
