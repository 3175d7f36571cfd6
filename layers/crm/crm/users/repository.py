"""Data access for users: the only module that reads and writes user items.

    user            PK=USER#<sub>         SK=USER           GSI2PK=USERS  GSI2SK=<name lower>#<sub>
    team membership PK=USER#<sub>         SK=TEAM#<team>    GSI1PK=TEAM#<team>  GSI1SK=USER#<sub>
                    (a full copy of the user: a team's members, with their settings, in one Query)
    email lookup    PK=USEREMAIL#<email>  SK=USEREMAIL      (one user per email; finds a principal by email)

A user, their memberships and their email claim are always written in one transaction.
"""

from collections.abc import Iterable
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict

from crm.platform.audit import AuditEntry, audit_put
from crm.platform.dynamo import TableRepository, cancellation_codes, error_code, marshal, translate
from crm.platform.errors import Conflict, NotFound, RetryableError, VersionConflict
from crm.users.model import User


def user_key(sub: str) -> dict[str, str]:
    return {"PK": f"USER#{sub}", "SK": "USER"}


def membership_key(sub: str, team: str) -> dict[str, str]:
    return {"PK": f"USER#{sub}", "SK": f"TEAM#{team}"}


def user_email_key(email: str) -> dict[str, str]:
    return {"PK": f"USEREMAIL#{email}", "SK": "USEREMAIL"}


class UserItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "user"
    GSI2PK: str = "USERS"
    GSI2SK: str

    @classmethod
    def from_user(cls, user: User) -> "UserItem":
        return cls(**user_key(user.sub), GSI2SK=f"{user.name.lower()}#{user.sub}", **_attributes(user))

    def to_user(self) -> User:
        return User.model_validate(self.model_extra or {})


class MembershipItem(BaseModel):
    model_config = ConfigDict(extra="allow")

    PK: str
    SK: str
    entity: str = "team_member"
    GSI1PK: str
    GSI1SK: str
    team: str

    @classmethod
    def from_user(cls, user: User, team: str) -> "MembershipItem":
        return cls(
            **membership_key(user.sub, team),
            GSI1PK=f"TEAM#{team}",
            GSI1SK=f"USER#{user.sub}",
            team=team,
            member=_attributes(user),
        )

    def to_user(self) -> User:
        return User.model_validate((self.model_extra or {})["member"])


def _attributes(user: User) -> dict[str, Any]:
    attributes = user.model_dump(mode="json", exclude_none=True)
    attributes["version"] = user.version
    if user.capacity is not None:
        attributes["capacity"] = user.capacity
    return attributes


class UserRepository(TableRepository):
    # ------------------------------------------------------------------ writes
    def create(self, user: User, audit: AuditEntry | None = None) -> None:
        """A new user with their memberships and email claim; Conflict if the sub or the email is taken."""
        items: list[Any] = [
            self._put(UserItem.from_user(user).model_dump(), "attribute_not_exists(PK)"),
            self._put(
                {**user_email_key(user.email), "entity": "user_email", "sub": user.sub},
                "attribute_not_exists(PK)",
            ),
            *(self._put(MembershipItem.from_user(user, team).model_dump()) for team in user.teams),
            *([audit_put(self.table_name, audit)] if audit else []),
        ]
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise Conflict(f"A user with sub {user.sub} already exists") from exc
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                raise Conflict(f"Another user already has the email {user.email}") from exc
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError("The user could not be written; try again") from exc
            raise translate(exc) from exc

    def replace(self, before: User, after: User, audit: AuditEntry | None = None) -> User:
        """Store `after` if the user is still at `before.version`; memberships and email follow."""
        stored = after.model_copy(update={"version": before.version + 1})
        items: list[Any] = [
            {
                "Put": {
                    "TableName": self.table_name,
                    "Item": marshal(UserItem.from_user(stored).model_dump()),
                    "ConditionExpression": "#version = :expected",
                    "ExpressionAttributeNames": {"#version": "version"},
                    "ExpressionAttributeValues": {":expected": {"N": str(before.version)}},
                }
            },
            *(self._put(MembershipItem.from_user(stored, team).model_dump()) for team in stored.teams),
            *(
                {"Delete": {"TableName": self.table_name, "Key": marshal(membership_key(before.sub, team))}}
                for team in set(before.teams) - set(stored.teams)
            ),
        ]
        email_changed = before.email != stored.email
        if email_changed:
            items.append(
                self._put(
                    {**user_email_key(stored.email), "entity": "user_email", "sub": stored.sub},
                    "attribute_not_exists(PK)",
                )
            )
            items.append(
                {
                    "Delete": {
                        "TableName": self.table_name,
                        "Key": marshal(user_email_key(before.email)),
                        "ConditionExpression": "#sub = :sub",
                        "ExpressionAttributeNames": {"#sub": "sub"},
                        "ExpressionAttributeValues": {":sub": {"S": before.sub}},
                    }
                }
            )
        if audit is not None:
            items.append(audit_put(self.table_name, audit))
        try:
            self.client.transact_write_items(TransactItems=items)
        except ClientError as exc:
            codes = cancellation_codes(exc)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise VersionConflict("The user was changed by someone else") from exc
            if email_changed and "ConditionalCheckFailed" in codes[1:]:
                raise Conflict(f"Another user already has the email {stored.email}") from exc
            if error_code(exc) == "TransactionCanceledException":
                raise RetryableError("The user could not be written; try again") from exc
            raise translate(exc) from exc
        return stored

    # ------------------------------------------------------------------ reads
    def get(self, sub: str) -> User | None:
        item = self._get_item(user_key(sub))
        return UserItem.model_validate(item).to_user() if item else None

    def require(self, sub: str) -> User:
        user = self.get(sub)
        if user is None:
            raise NotFound(f"No user with sub {sub}")
        return user

    def sub_for_email(self, email: str) -> str | None:
        item = self._get_item(user_email_key(email.lower()))
        return str(item["sub"]) if item else None

    def find(self, sub: str, email: str | None) -> User | None:
        """The user a signed-in principal is: by subject, else by email."""
        user = self.get(sub)
        if user is None and email:
            found = self.sub_for_email(email)
            user = self.get(found) if found else None
        return user

    def list_all(self) -> list[User]:
        """Every user, by name (one index partition: a directory of people, not of leads)."""
        items = self._query_pages(
            {
                "IndexName": "GSI2",
                "KeyConditionExpression": "GSI2PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": "USERS"}},
            }
        )
        return [UserItem.model_validate(item).to_user() for item in items if item.get("entity") == "user"]

    def team_members(self, team: str) -> list[User]:
        items = self._query_pages(
            {
                "IndexName": "GSI1",
                "KeyConditionExpression": "GSI1PK = :pk",
                "ExpressionAttributeValues": {":pk": {"S": f"TEAM#{team}"}},
            }
        )
        return [
            MembershipItem.model_validate(item).to_user()
            for item in items
            if item.get("entity") == "team_member"
        ]

    def teams_members(self, teams: Iterable[str]) -> dict[str, list[User]]:
        return {team: self.team_members(team) for team in teams}

    # ------------------------------------------------------------------ helpers
    def _put(self, item: dict[str, Any], condition: str | None = None) -> dict[str, Any]:
        put: dict[str, Any] = {"TableName": self.table_name, "Item": marshal(item)}
        if condition:
            put["ConditionExpression"] = condition
        return {"Put": put}
