"""An install seeded by an earlier release gets today's default scoring rules, on DynamoDB Local: new defaults
are added, a default nobody edited follows today's, what the team edited or deleted stays theirs."""

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from crm.platform.dynamo import marshal, unmarshal
from crm.scoring.engine import DEFAULTS_VERSION, default_rules
from crm.scoring.rescoring import StoredRule
from crm.scoring.rule_repository import RuleSetItem, ScoringRuleItem, ScoringRuleRepository, meta_key

from devstack.template import Template
from tests.integration.lead_stream import create_isolated_table

pytestmark = pytest.mark.ddblocal

SEEDED_AT = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
FIRST_C_LEVEL = r"\b(ceo|cto|cfo|coo|cmo|cio|chief)\b"


def first_release_install(client: Any, table: str) -> None:
    """What the first release left: its 16 defaults (C-level without the literal "C-level"), one of them
    edited by the team, one deleted, at revision 5 and no defaults version."""
    rules = []
    for rule in default_rules(SEEDED_AT):
        if rule.id.startswith("seed-quick-start") or rule.id == "seed-industry":
            continue  # not in the first release / deleted by the team
        stored = StoredRule(**rule.model_dump(), updated_at=SEEDED_AT)
        if rule.id == "seed-title-c-level":
            stored = stored.model_copy(update={"value": FIRST_C_LEVEL})
        if rule.id == "seed-size-10":
            stored = stored.model_copy(update={"points": 7, "version": 2})
        rules.append(stored)
    for stored in rules:
        client.put_item(TableName=table, Item=marshal(ScoringRuleItem.from_rule(stored).model_dump()))
    stamp = SEEDED_AT.isoformat()
    meta = RuleSetItem(revision=5, rule_count=len(rules), updated_at=stamp, seeded_at=stamp).model_dump()
    del meta["defaults_version"]
    client.put_item(TableName=table, Item=marshal(meta))


def test_an_earlier_install_gets_todays_defaults_once(dynamodb_local: str, template: Template) -> None:
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    table = create_isolated_table(dynamodb_local, template)
    first_release_install(client, table)
    upgraded_at = SEEDED_AT + timedelta(days=200)
    repository = ScoringRuleRepository(table, client=client)

    # When several functions read the rules at once after the deploy
    with ThreadPoolExecutor(max_workers=4) as pool:
        seen = list(pool.map(lambda _: repository.rule_set(lambda: upgraded_at), range(4)))

    # Then one upgrade happened, in one new revision (whose rescore job applies it)
    rule_set = repository.rule_set()
    assert [each.revision for each in seen] == [6, 6, 6, 6] and rule_set.revision == 6
    by_id = {rule.id: rule for rule in rule_set.rules}
    c_level = by_id["seed-title-c-level"]
    assert c_level.value == r"\b(ceo|cto|cfo|coo|cmo|cio|chief|c-level)\b"
    assert (c_level.version, c_level.created_at, c_level.updated_at) == (2, SEEDED_AT, upgraded_at)
    quick_start = [by_id["seed-quick-start-email-opens"], by_id["seed-quick-start-page-views"]]
    assert [(r.active, r.count_operator, r.count_value, r.version) for r in quick_start] == [
        (False, "gt", 5, 1),
        (False, "gt", 10, 1),
    ]
    assert (by_id["seed-size-10"].points, by_id["seed-size-10"].version) == (7, 2)  # the team's edit
    assert "seed-industry" not in by_id  # the team's deletion
    meta = unmarshal(client.get_item(TableName=table, Key=marshal(meta_key()))["Item"])
    assert len(rule_set.rules) == 17  # 16 - 1 deleted + 2 new
    assert (meta["defaults_version"], meta["rule_count"]) == (DEFAULTS_VERSION, 17)
