"""Seed a table with users, the default assignment rules and the default nurture sequence, so a fresh
install assigns leads at once and nurtures the others (with the SES templates of template.yaml).

Idempotent: users and rules that exist already are left as they are (edits made since are kept).

The local stack runs this at startup with devstack/seed.json (its demo users: the ones `make token`
signs for). After `sam deploy`, run it once with your own users file:

    TABLE_NAME=<TableName output> PYTHONPATH=layers/crm python -m crm.tools.seeding --users users.json

A users file is `{"users": [...]}`; each user has `sub` (their Cognito user's sub), `email`, `name`,
`groups` (or `role`): admin | manager | rep, `team` or `teams`, and optionally `capacity`,
`working_hours` ({"days": ["mon", ...], "start": "09:00", "end": "17:00", "time_zone": "Europe/Paris"}),
`out_of_office` and `active`.
"""

import argparse
import json
import sys
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from crm.api.models.users import CreateUserRequest
from crm.assignment.repository import AssignmentRepository
from crm.assignment.rules import default_assignment_rules
from crm.nurture.repository import NurtureRepository
from crm.nurture.sequences import default_nurture_sequence
from crm.platform import clock
from crm.platform.auth import Role
from crm.platform.errors import Conflict
from crm.users.repository import UserRepository

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

_ROLE_ORDER = (Role.ADMIN, Role.MANAGER, Role.REP)
_USER_FIELDS = set(CreateUserRequest.model_fields)


@dataclass
class SeedReport:
    users_created: list[str] = field(default_factory=list)
    users_kept: list[str] = field(default_factory=list)
    rules_created: list[str] = field(default_factory=list)
    rules_kept: list[str] = field(default_factory=list)
    sequences_created: list[str] = field(default_factory=list)
    sequences_kept: list[str] = field(default_factory=list)


def user_request(entry: dict[str, Any]) -> CreateUserRequest:
    """A users-file entry (devstack/seed.json shape, or the API's) as a validated user."""
    data = {key: value for key, value in entry.items() if key in _USER_FIELDS}
    if "role" not in data:
        groups = set(entry.get("groups") or [])
        data["role"] = next((role.value for role in _ROLE_ORDER if role.value in groups), Role.REP.value)
    if "teams" not in data and entry.get("team"):
        data["teams"] = [entry["team"]]
    return CreateUserRequest.model_validate(data)


def seed(
    table_name: str,
    users: list[dict[str, Any]],
    *,
    default_team: str = "sales",
    rules: bool = True,
    nurture: bool = True,
    stage: str = "dev",
    client: "DynamoDBClient | None" = None,
    now: datetime | None = None,
) -> SeedReport:
    moment = now or clock.now()
    report = SeedReport()
    user_repository = UserRepository(table_name, client=client)
    for entry in users:
        request = user_request(entry)
        try:
            user_repository.create(request.to_user(moment))
            report.users_created.append(request.sub)
        except Conflict:
            report.users_kept.append(request.sub)
    if rules:
        assignments = AssignmentRepository(table_name, client=client)
        for rule in default_assignment_rules(moment, default_team):
            try:
                assignments.put_rule(rule, expected_version=None)
                report.rules_created.append(rule.id)
            except Conflict:
                report.rules_kept.append(rule.id)
    if nurture:
        sequence = default_nurture_sequence(moment, stage)
        try:
            NurtureRepository(table_name, client=client).put_sequence(sequence, expected_version=None)
            report.sequences_created.append(sequence.id)
        except Conflict:
            report.sequences_kept.append(sequence.id)
    return report


def main(argv: list[str] | None = None) -> int:
    import os

    parser = argparse.ArgumentParser(prog="python -m crm.tools.seeding", description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=Path, required=True, help='JSON file: {"users": [...]}')
    parser.add_argument("--table", default=os.environ.get("TABLE_NAME"), help="default: $TABLE_NAME")
    parser.add_argument("--default-team", default=os.environ.get("DEFAULT_TEAM", "sales"))
    parser.add_argument("--no-rules", action="store_true", help="do not add the default assignment rules")
    parser.add_argument("--stage", default=os.environ.get("STAGE", "dev"), help="names the SES templates")
    parser.add_argument("--no-nurture", action="store_true", help="do not add the default nurture sequence")
    args = parser.parse_args(argv)
    if not args.table:
        parser.error("give --table or set TABLE_NAME")
    try:
        users = json.loads(args.users.read_text()).get("users", [])
        report = seed(
            args.table,
            users,
            default_team=args.default_team,
            rules=not args.no_rules,
            nurture=not args.no_nurture,
            stage=args.stage,
        )
    except (OSError, ValueError, ValidationError) as exc:
        print(f"seeding failed: {exc}", file=sys.stderr)
        return 1
    print(
        f"users: {len(report.users_created)} created, {len(report.users_kept)} already there; "
        f"assignment rules: {len(report.rules_created)} created, {len(report.rules_kept)} already there; "
        f"nurture sequences: {len(report.sequences_created)} created, "
        f"{len(report.sequences_kept)} already there"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
