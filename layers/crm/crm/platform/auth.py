"""Who is calling: the principal from the API Gateway JWT authorizer's claims (Cognito ID tokens)."""

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from crm.platform.errors import Forbidden, Unauthorized


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    REP = "rep"


@dataclass(frozen=True)
class Principal:
    subject: str
    email: str | None
    groups: frozenset[str]
    teams: frozenset[str] = frozenset()

    @property
    def roles(self) -> frozenset[Role]:
        return frozenset(Role(group) for group in self.groups if group in Role._value2member_map_)

    @property
    def actor(self) -> str:
        """How activities name this person."""
        return f"user:{self.subject}"


def _groups(value: Any) -> frozenset[str]:
    # API Gateway flattens array claims into a string such as "[admin manager]".
    if isinstance(value, list | tuple):
        return frozenset(str(group) for group in value)
    if isinstance(value, str):
        cleaned = value.strip().strip("[]")
        return frozenset(part for part in cleaned.replace(",", " ").split() if part)
    return frozenset()


def principal_from_event(event: dict[str, Any]) -> Principal:
    """The caller of a JWT route. A signed-in user must also hold a role: the user pool's groups are the
    roles, and an account nobody has put in one (or one made before sign-up was closed) may do nothing."""
    claims = ((event.get("requestContext") or {}).get("authorizer") or {}).get("jwt", {}).get("claims") or {}
    subject = claims.get("sub")
    if not subject:
        raise Unauthorized("A signed-in user is required")
    principal = Principal(
        subject=str(subject),
        email=claims.get("email"),
        groups=_groups(claims.get("cognito:groups")),
        # The user's team(s) when the identity provider issues them (the local stack's tokens do).
        teams=_groups(claims.get("custom:team")),
    )
    if not principal.roles:
        raise Forbidden(
            "Your account has no role yet: an admin must add you to the admin, manager or rep group"
        )
    return principal
