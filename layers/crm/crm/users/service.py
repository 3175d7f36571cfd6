"""Managing users (admins only) and what a change means for waiting leads.

When a user is created or changed (back from absence, more capacity, new team, hours), the leads waiting
in their teams' queues are sent for assignment again at once, rather than at the next sweep. Should that
fail, the change stands and the sweep picks them up within minutes.
"""

from collections.abc import Callable, Iterable
from dataclasses import replace
from datetime import datetime

from botocore.exceptions import ClientError

from crm.leads.permissions import require_role
from crm.platform import clock
from crm.platform.audit import audit_entry
from crm.platform.auth import Principal, Role
from crm.platform.errors import RetryableError, VersionConflict
from crm.platform.observability import logger
from crm.users.model import User
from crm.users.repository import UserRepository

USERS_AUDIT = "users"
_STAMPS = {"created_at", "updated_at", "version"}  # not changes a person makes


class UserService:
    def __init__(
        self,
        users: UserRepository,
        open_leads: Callable[[Iterable[str]], dict[str, int]],
        wake_waiting_leads: Callable[[str], object],
        now: Callable[[], datetime] = clock.now,
    ) -> None:
        self.users = users
        # Both belong to assignment (open-lead counters; the team queues), given here by crm.bootstrap.
        self._open_leads = open_leads
        self._wake_team = wake_waiting_leads
        self.now = now

    def with_directory_teams(self, principal: Principal) -> Principal:
        """The principal with the teams the user directory gives them (matched by sub, else by email)."""
        user = self.users.find(principal.subject, principal.email)
        if user is None:
            return principal
        return replace(principal, teams=principal.teams | frozenset(user.teams))

    def open_leads(self, users: list[User]) -> dict[str, int]:
        return self._open_leads(user.sub for user in users)

    def create(self, new_user: Callable[[datetime], User], by: Principal) -> User:
        require_role(by, Role.ADMIN)
        now = self.now()
        user = new_user(now).model_copy(update={"updated_by": by.actor})
        audit = audit_entry(
            USERS_AUDIT,
            user.sub,
            "created",
            actor=by.actor,
            at=now,
            new=user.model_dump(mode="json", exclude=_STAMPS),
        )
        self.users.create(user, audit)
        logger.info("User created", extra={"user": user.sub, "by": by.subject})
        self._wake_waiting_leads(user.teams)
        return user

    def update(self, sub: str, change: Callable[[User, datetime], User], version: int, by: Principal) -> User:
        require_role(by, Role.ADMIN)
        before = self.users.require(sub)
        if before.version != version:
            raise VersionConflict("The user was changed by someone else", current_version=before.version)
        now = self.now()
        after = User.model_validate(change(before, now).model_dump() | {"updated_by": by.actor})
        audit = audit_entry(
            USERS_AUDIT,
            sub,
            "updated",
            actor=by.actor,
            at=now,
            old=before.model_dump(mode="json", exclude=_STAMPS),
            new=after.model_dump(mode="json", exclude=_STAMPS),
        )
        stored = self.users.replace(before, after, audit)
        logger.info("User updated", extra={"user": sub, "by": by.subject, "version": stored.version})
        self._wake_waiting_leads(set(before.teams) | set(stored.teams))
        return stored

    def _wake_waiting_leads(self, teams: set[str] | list[str]) -> None:
        for team in sorted(set(teams)):
            try:
                self._wake_team(team)
            except (RetryableError, ClientError):  # the change is stored; the sweep sends them within minutes
                logger.warning("Waiting leads not requeued after a user change", extra={"team": team})
