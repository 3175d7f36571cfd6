"""Users (reps, managers, admins) and when a rep can take a lead: plain Python, no AWS.

A user is identified by the `sub` of their Cognito user, which is what `Lead.assigned_to` and the JWT
principal carry. Availability for automatic assignment:

- only active users with the role `rep` are balanced over (a rule may still name any active user:
  `crm.assignment.choice.choose_rep` leaves managers and admins out);
- not during an out-of-office period (start inclusive, end exclusive);
- under capacity (maximum open leads), when a capacity is set;
- within working hours in the user's own IANA time zone, when working hours are set. A shift whose end is
  before its start crosses midnight and belongs to the day it starts; start == end is the whole day.
"""

import re
from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    StringConstraints,
    ValidationInfo,
    field_validator,
)

from crm.leads.model import UtcDatetime
from crm.platform.auth import Role
from crm.platform.fields import EMAIL_FORMAT
from crm.platform.working_hours import WorkingHours

MAX_TEAMS = 20
MAX_CAPACITY = 100_000
_TEAM = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
# Staff addresses are entered by an admin and may sit on internal domains (e.g. demo.leadflow.local, which
# the public-address validator of lead emails refuses as special-use): a plain syntax check, lower-cased.
_STAFF_EMAIL = re.compile(
    r"^[a-z0-9.!#$%&'*+/=?^_`{|}~-]+@[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$"
)


def team_name(value: str) -> str:
    value = value.lower()
    if not _TEAM.match(value):
        raise ValueError("a team name is lower-case letters, digits and _ . - (e.g. sales, emea-enterprise)")
    return value


def staff_email(value: str) -> str:
    value = value.lower()
    if not _STAFF_EMAIL.match(value):
        raise ValueError("not a valid email address")
    return value


StaffEmail = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=254),
    AfterValidator(staff_email),
    EMAIL_FORMAT,
]
TeamName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50), AfterValidator(team_name)
]


class Unavailable(StrEnum):
    """Why a user cannot take a lead right now (recorded in the assignment activity)."""

    INACTIVE = "inactive"
    OUT_OF_OFFICE = "out_of_office"
    AT_CAPACITY = "at_capacity"
    OUTSIDE_WORKING_HOURS = "outside_working_hours"


class OutOfOffice(BaseModel):
    """An absence: no leads from `start` (inclusive) until `end` (exclusive)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start: UtcDatetime
    end: UtcDatetime

    @field_validator("start", "end")
    @classmethod
    def aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise ValueError("give a time zone offset, e.g. 2026-12-24T00:00:00Z")
        return value

    @field_validator("end")
    @classmethod
    def after_start(cls, end: datetime, info: ValidationInfo) -> datetime:
        start = info.data.get("start")
        if start is not None and end <= start:
            raise ValueError("must be after start")
        return end

    def contains(self, moment: datetime) -> bool:
        return self.start <= moment < self.end


class User(BaseModel):
    """A person who works leads. `sub` is their Cognito user's subject (the JWT `sub`)."""

    sub: str
    name: str
    email: str
    role: Role
    teams: list[str] = []
    active: bool = True
    capacity: int | None = None
    working_hours: WorkingHours | None = None
    out_of_office: OutOfOffice | None = None
    created_at: UtcDatetime
    updated_at: UtcDatetime
    updated_by: str | None = None  # who made the last change (`user:<sub>`); None for seeded users
    version: int = 1

    def unavailable_reason(
        self, open_leads: int, now: datetime, *, ignore_hours: bool = False
    ) -> Unavailable | None:
        """None when this user can take one more lead now; otherwise why not."""
        if not self.active:
            return Unavailable.INACTIVE
        if self.out_of_office is not None and self.out_of_office.contains(now):
            return Unavailable.OUT_OF_OFFICE
        if self.capacity is not None and open_leads >= self.capacity:
            return Unavailable.AT_CAPACITY
        if not ignore_hours and self.working_hours is not None and not self.working_hours.contains(now):
            return Unavailable.OUTSIDE_WORKING_HOURS
        return None

    @property
    def primary_team(self) -> str | None:
        return self.teams[0] if self.teams else None
