"""HTTP models of users (the directory, input and output), apart from the domain."""

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints, field_validator

from crm.leads.model import UtcDatetime
from crm.platform.auth import Role
from crm.platform.fields import PersonName, StrictInteger
from crm.platform.working_hours import WorkingHours
from crm.users.model import MAX_CAPACITY, MAX_TEAMS, OutOfOffice, StaffEmail, TeamName, User

SubId = Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:@\-]+$")]


def _distinct_teams(teams: list[str]) -> list[str]:
    seen: list[str] = []
    for team in teams:
        if team not in seen:
            seen.append(team)
    return seen


class CreateUserRequest(BaseModel):
    """A user: `sub` is the subject of their Cognito user (what their ID token's `sub` claim holds)."""

    model_config = ConfigDict(extra="forbid")

    sub: SubId
    name: PersonName
    email: StaffEmail
    role: Role
    teams: list[TeamName] = Field(default_factory=list, max_length=MAX_TEAMS)
    active: StrictBool = True
    capacity: StrictInteger | None = Field(default=None, ge=0, le=MAX_CAPACITY)
    working_hours: WorkingHours | None = None
    out_of_office: OutOfOffice | None = None

    @field_validator("teams")
    @classmethod
    def distinct(cls, teams: list[str]) -> list[str]:
        return _distinct_teams(teams)

    def to_user(self, now: datetime) -> User:
        return User(**self.model_dump(), created_at=now, updated_at=now)


class UpdateUserRequest(BaseModel):
    """A partial change: fields left out keep their value; null clears capacity, hours or absence."""

    model_config = ConfigDict(extra="forbid")

    name: PersonName | None = None
    email: StaffEmail | None = None
    role: Role | None = None
    teams: list[TeamName] | None = Field(default=None, max_length=MAX_TEAMS)
    active: StrictBool | None = None
    capacity: StrictInteger | None = Field(default=None, ge=0, le=MAX_CAPACITY)
    working_hours: WorkingHours | None = None
    out_of_office: OutOfOffice | None = None
    version: StrictInteger | None = Field(
        default=None, ge=1, description="the version you read (or If-Match)"
    )

    @field_validator("teams")
    @classmethod
    def distinct(cls, teams: list[str] | None) -> list[str] | None:
        return None if teams is None else _distinct_teams(teams)

    @field_validator("name", "email", "role", "teams", "active", mode="before")
    @classmethod
    def not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may not be null")
        return value

    def apply(self, user: User, now: datetime) -> User:
        changes = self.model_dump(exclude_unset=True, exclude={"version"})
        for name in ("working_hours", "out_of_office"):
            if name in changes:
                changes[name] = getattr(self, name)  # keep the validated value objects
        return user.model_copy(update={**changes, "updated_at": now})


class UserResponse(BaseModel):
    sub: str
    name: str
    email: str
    role: Role
    teams: list[str]
    active: bool
    capacity: int | None
    working_hours: WorkingHours | None
    out_of_office: OutOfOffice | None
    open_leads: int | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    updated_by: str | None = Field(default=None, description="Who made the last change (`user:<sub>`)")
    version: int

    @classmethod
    def from_user(cls, user: User, open_leads: int | None = None) -> "UserResponse":
        return cls.model_validate({**user.model_dump(), "open_leads": open_leads})


class UserListResponse(BaseModel):
    items: list[UserResponse]
    next_cursor: str | None = Field(default=None, description="Always null: the whole list is one page")
    users: list[UserResponse] = Field(description="Deprecated alias of `items` (one release)")
