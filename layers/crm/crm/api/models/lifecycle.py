"""API models of the lifecycle routes (lead edits, qualification, tasks), and reading the version a
client sends for optimistic locking (`If-Match` or `version`)."""

import re
from datetime import UTC, date, datetime, time
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, field_validator

from crm.api.models.leads import LeadResponse
from crm.leads.model import LeadStatus, UtcDatetime
from crm.leads.tasks import Task, TaskChanges, TaskPriority
from crm.lifecycle.service import BantAnswers, LeadChanges, TaskDraft
from crm.platform.errors import FieldProblem, InvalidInput, PreconditionRequired
from crm.platform.fields import (
    Email,
    LongText,
    OptionalMoney,
    OptionalPhone,
    OptionalText100,
    OptionalText255,
    PersonName,
    StrictEmployeeCount,
    Text255,
    Timestamp,
)

Version = Annotated[StrictInt, Field(ge=1)]
_IF_MATCH = re.compile(r'^(?:W/)?"?(\d{1,18})"?$')


def _reject_null(value: object) -> object:
    if value is None:
        raise ValueError("cannot be null")
    return value


def expected_version(headers: dict[str, str], body_version: int | None) -> int:
    """The version the client read: `If-Match` (`"3"`, `3` or `W/"3"`) or `version` in the body.

    Missing → 428 naming both; unreadable or disagreeing → 422 naming the field.
    """
    raw = next((value for name, value in headers.items() if name.lower() == "if-match"), None)
    header_version: int | None = None
    if raw is not None and raw.strip():
        match = _IF_MATCH.match(raw.strip())
        if not match or int(match.group(1)) < 1:
            raise InvalidInput.single("If-Match", 'must be the version you read, e.g. "3"')
        header_version = int(match.group(1))
    if header_version is not None and body_version is not None and header_version != body_version:
        raise InvalidInput.single("version", "disagrees with the If-Match header")
    version = header_version if header_version is not None else body_version
    if version is None:
        raise PreconditionRequired(
            [
                FieldProblem("version", "required: send the version you read as `version` or in If-Match"),
                FieldProblem("If-Match", 'or send it here, e.g. If-Match: "3"'),
            ],
            "The version you read is required (If-Match header or `version` in the body)",
        )
    return version


def etag(version: int) -> dict[str, str]:
    return {"ETag": f'"{version}"'}


# ---------------------------------------------------------------- leads


class UpdateLeadRequest(BaseModel):
    """`PATCH /leads/{id}`: only the fields sent change; `null` clears an optional field."""

    model_config = ConfigDict(extra="forbid")

    first_name: PersonName | None = None
    last_name: PersonName | None = None
    email: Email | None = None
    phone: OptionalPhone = None
    company: OptionalText255 = None
    title: OptionalText100 = None
    industry: OptionalText100 = None
    employee_count: StrictEmployeeCount | None = None
    annual_revenue: OptionalMoney = None
    # true: no marketing email may reach the person (they asked); false: they asked to get it again.
    do_not_email: StrictBool | None = None
    lead_status: LeadStatus | None = None
    version: Version | None = None

    @field_validator("first_name", "last_name", "email", "lead_status", "do_not_email", mode="before")
    @classmethod
    def not_null(cls, value: object) -> object:
        return _reject_null(value)

    def to_changes(self) -> LeadChanges:
        sent = self.model_fields_set - {"version", "lead_status"}
        return LeadChanges(fields={name: getattr(self, name) for name in sent}, status=self.lead_status)


class QualifyLeadRequest(BaseModel):
    """`POST /leads/{id}/qualify`: the BANT answers; all four true → qualified."""

    model_config = ConfigDict(extra="forbid")

    has_budget: StrictBool
    has_authority: StrictBool
    has_need: StrictBool
    has_timeline: StrictBool
    notes: LongText | None = None

    def to_answers(self) -> BantAnswers:
        return BantAnswers(
            has_budget=self.has_budget,
            has_authority=self.has_authority,
            has_need=self.has_need,
            has_timeline=self.has_timeline,
            notes=self.notes,
        )


# ---------------------------------------------------------------- tasks


class TaskResponse(BaseModel):
    id: str
    lead_id: str
    title: str
    kind: str
    priority: TaskPriority
    due_at: UtcDatetime
    owner: str
    done: bool
    done_at: UtcDatetime | None
    cancelled_at: UtcDatetime | None = None
    cancel_reason: str | None = None
    reminded_at: UtcDatetime | None = None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int

    @classmethod
    def from_task(cls, task: Task) -> "TaskResponse":
        return cls.model_validate(task.model_dump())


class TaskListResponse(BaseModel):
    items: list[TaskResponse]
    next_cursor: str | None = None


class QualificationResponse(BaseModel):
    lead: LeadResponse
    task: TaskResponse | None


class CreateTaskRequest(BaseModel):
    """`POST /leads/{id}/tasks`. `owner` defaults to the lead's rep; a rep may only name themselves."""

    model_config = ConfigDict(extra="forbid")

    title: Text255
    due_at: Timestamp
    priority: TaskPriority = TaskPriority.NORMAL
    owner: Annotated[str, Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@:\-]+$")] | None = None

    def to_draft(self) -> TaskDraft:
        return TaskDraft(title=self.title, due_at=self.due_at, priority=self.priority, owner=self.owner)


class UpdateTaskRequest(BaseModel):
    """`PATCH /tasks/{id}`: only the fields sent change; `done: true` completes the task."""

    model_config = ConfigDict(extra="forbid")

    title: Text255 | None = None
    priority: TaskPriority | None = None
    due_at: Timestamp | None = None
    done: StrictBool | None = None
    version: Version | None = None

    @field_validator("title", "priority", "due_at", "done", mode="before")
    @classmethod
    def not_null(cls, value: object) -> object:
        return _reject_null(value)

    def to_changes(self) -> TaskChanges:
        sent = self.model_fields_set - {"version"}
        return TaskChanges(fields={name: getattr(self, name) for name in sent})


class TaskQuery(BaseModel):
    """`GET /tasks?owner=me&state=open&due_before=...&limit=...&cursor=...`"""

    model_config = ConfigDict(extra="forbid")

    state: Literal["open", "done", "cancelled", "all"] = Field(
        default="open", description="`open` (the default), `done`, `cancelled` or `all`"
    )

    owner: Annotated[
        str,
        Field(
            min_length=1,
            max_length=128,
            pattern=r"^[A-Za-z0-9_.@:\-]+$",
            description="`me` (the default) or a user id; reps may only ask for their own",
        ),
    ] = "me"
    due_before: Timestamp | None = Field(
        default=None, description="ISO-8601 date or time: only tasks due strictly before it"
    )
    limit: Annotated[int, Field(ge=1, le=200, description="Page size, 1-200 (default 50)")] = 50
    # Judged by crm.platform.cursor, as every cursor is (400 for anything not ours).
    cursor: Annotated[str, Field(description="`next_cursor` of the previous page")] | None = None

    @field_validator("due_before", mode="before")
    @classmethod
    def date_or_datetime(cls, value: Any) -> Any:
        # A bare date means the start of that day, UTC.
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d{2}-\d{2}", value.strip()):
            return datetime.combine(date.fromisoformat(value.strip()), time(0), tzinfo=UTC)
        return value
