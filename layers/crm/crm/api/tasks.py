"""Task routes, served by the leads API function: a rep's open tasks, new tasks under a lead, task edits."""

from http import HTTPStatus

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from crm import bootstrap
from crm.api.lifecycle import checked_id, json_body
from crm.api.models.lifecycle import (
    CreateTaskRequest,
    TaskListResponse,
    TaskQuery,
    TaskResponse,
    UpdateTaskRequest,
    etag,
    expected_version,
)
from crm.api.openapi import query_model, request_model
from crm.platform.http import JWT, VERSIONED_CHANGE_ERRORS, documented_responses, json_response, model_from
from crm.platform.observability import logger


def build_router() -> Router:
    router = Router()

    @router.get(
        "/tasks",
        summary="Tasks of an owner (open by default), soonest due first",
        description=(
            "Query parameters: `owner` (`me`, the default, or a user id: reps may only ask for their own), "
            "`state` (`open`, the default, `done`, `cancelled` or `all`; anything else is 422 naming "
            "`state`), "
            "`due_before` (ISO-8601 date or time; only tasks due strictly before it), `limit` (1-200, "
            "default 50) and `cursor` (the `next_cursor` of the previous page). One Query on an index "
            "partition per state (`all` merges the three by due time)."
        ),
        tags=["Tasks"],
        security=JWT,
        responses=documented_responses({200: ("The tasks", TaskListResponse)}, 400, 401, 403, 422, 503),
        openapi_extensions=query_model(TaskQuery),
    )
    def list_tasks_route() -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        query: TaskQuery = model_from(TaskQuery, dict(event.get("queryStringParameters") or {}))
        page = bootstrap.task_service().owner_tasks(
            principal,
            query.owner,
            query.state,
            due_before=query.due_before,
            limit=query.limit,
            cursor=query.cursor,
        )
        body = TaskListResponse(
            items=[TaskResponse.from_task(t) for t in page.tasks], next_cursor=page.cursor
        )
        return json_response(HTTPStatus.OK, body)

    @router.get(
        "/tasks/<task_id>",
        summary="One task, open, done or cancelled",
        description=(
            "Reps see their own tasks and the tasks of their own leads; managers and admins every task. "
            "Any other task is 404, as if it did not exist. The `ETag` is the version for `If-Match`."
        ),
        tags=["Tasks"],
        security=JWT,
        responses=documented_responses({200: ("The task", TaskResponse)}, 400, 401, 403, 404, 503),
    )
    def get_task_route(task_id: str) -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        checked_id(task_id, "task")
        task = bootstrap.task_service().get(task_id, principal)
        return json_response(HTTPStatus.OK, TaskResponse.from_task(task), headers=etag(task.version))

    @router.get(
        "/leads/<lead_id>/tasks",
        summary="Every task of a lead (open, done and cancelled), soonest due first",
        description="For anyone who may see the lead (404 otherwise). One page: `next_cursor` is null.",
        tags=["Tasks"],
        security=JWT,
        responses=documented_responses(
            {200: ("The lead's tasks", TaskListResponse)}, 400, 401, 403, 404, 503
        ),
    )
    def lead_tasks_route(lead_id: str) -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        checked_id(lead_id, "lead")
        tasks = bootstrap.task_service().lead_tasks(lead_id, principal)
        body = TaskListResponse(items=[TaskResponse.from_task(t) for t in tasks], next_cursor=None)
        return json_response(HTTPStatus.OK, body)

    @router.post(
        "/leads/<lead_id>/tasks",
        summary="Create a task under a lead",
        description="Owner: the lead's rep unless `owner` is given (a rep may only name themselves).",
        tags=["Tasks"],
        security=JWT,
        responses=documented_responses(
            {201: ("The new task", TaskResponse)}, 400, 401, 403, 404, 413, 415, 422, 503
        ),
        openapi_extensions=request_model(CreateTaskRequest),
    )
    def create_task_route(lead_id: str) -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        checked_id(lead_id, "lead")
        request: CreateTaskRequest = model_from(CreateTaskRequest, json_body(event))
        task = bootstrap.task_service().create(lead_id, request.to_draft(), principal)
        logger.info("Task created", extra={"lead_id": lead_id, "task_id": task.id})
        headers = {"Location": f"/tasks/{task.id}", **etag(task.version)}
        return json_response(HTTPStatus.CREATED, TaskResponse.from_task(task), headers=headers)

    @router.patch(
        "/tasks/<task_id>",
        summary="Change a task (title, priority, due_at, done) with optimistic locking",
        description=(
            'Send the version you read as `If-Match: "3"` (or `3`, `W/"3"`) or as `version` in the body. '
            "A stale version is 409 with `current_version`; no version is 428."
        ),
        tags=["Tasks"],
        security=JWT,
        responses=documented_responses({200: ("The task as stored", TaskResponse)}, *VERSIONED_CHANGE_ERRORS),
        openapi_extensions=request_model(UpdateTaskRequest),
    )
    def update_task_route(task_id: str) -> Response[str]:
        event = router.current_event.raw_event
        principal = bootstrap.caller(event)
        checked_id(task_id, "task")
        request: UpdateTaskRequest = model_from(UpdateTaskRequest, json_body(event))
        version = expected_version(event.get("headers") or {}, request.version)
        task = bootstrap.task_service().update(task_id, request.to_changes(), version, principal)
        logger.info("Task updated", extra={"task_id": task.id, "version": task.version})
        return json_response(HTTPStatus.OK, TaskResponse.from_task(task), headers=etag(task.version))

    return router
