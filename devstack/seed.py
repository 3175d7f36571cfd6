"""Local development values (demo users, secrets, verified mail senders), kept in devstack/seed.json."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .paths import SEED_FILE


@dataclass(frozen=True)
class DemoUser:
    username: str
    sub: str
    email: str
    name: str
    groups: tuple[str, ...]
    team: str


@dataclass(frozen=True)
class SeedParameter:
    name: str  # may hold {GLOBAL_ENV_VAR} placeholders, filled from the template's Globals
    type: str
    value: str


@dataclass(frozen=True)
class SeedSecret:
    """A fixed local value for a secret the template declares (instead of the value it would generate)."""

    name: str  # the secret's name; may hold {GLOBAL_ENV_VAR} placeholders, filled from the template's Globals
    value: str


@dataclass(frozen=True)
class Seed:
    users: tuple[DemoUser, ...]
    parameters: tuple[SeedParameter, ...]
    ses_identities: tuple[str, ...]
    secrets: tuple[SeedSecret, ...] = ()

    def user(self, *, username: str | None = None, role: str | None = None) -> DemoUser:
        for user in self.users:
            if (username is not None and user.username == username) or (
                username is None and role is not None and role in user.groups
            ):
                return user
        known = ", ".join(f"{u.username} ({'/'.join(u.groups)})" for u in self.users)
        raise KeyError(
            f"no demo user {'named ' + username if username else 'with role ' + str(role)}; known: {known}"
        )


def load_seed(path: Path = SEED_FILE) -> Seed:
    raw: dict[str, Any] = json.loads(path.read_text())
    return Seed(
        users=tuple(
            DemoUser(u["username"], u["sub"], u["email"], u["name"], tuple(u["groups"]), u["team"])
            for u in raw.get("users", [])
        ),
        parameters=tuple(
            SeedParameter(p["name"], p.get("type", "String"), p["value"])
            for p in raw.get("ssm_parameters", [])
        ),
        ses_identities=tuple(raw.get("ses_identities", [])),
        secrets=tuple(SeedSecret(s["name"], s["value"]) for s in raw.get("secrets", [])),
    )
