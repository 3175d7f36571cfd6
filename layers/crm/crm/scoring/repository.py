"""Data access for scoring, shared by its three repositories: keys, value conversions, the base store.

The repositories: `rule_repository` (rules and the rule set), `score_repository` (scores with their
ledger, behavioural activities) and `rescore_job_repository` (rescore jobs and their pages).

Only these four modules of scoring talk to DynamoDB; they return domain models and turn DynamoDB's error
codes into domain errors. Keys (see docs/data-model.md):

    rule set        PK=RULES#scoring       SK=META             revision, rule_count (seeded once)
    scoring rule    PK=RULES#scoring       SK=RULE#<id>
    score (ledger)  PK=LEAD#<id>           SK=SCORE            GSI1PK=DECAY#<shard> GSI1SK=<scored_at>#<id>
                                                               (only while behavioural points can decay)
    event claim     PK=LEAD#<id>           SK=EVENT#<event id> (idempotent POST /leads/{id}/activities)
    rescore job     PK=RESCORE#<job id>    SK=JOB              counters, ADDed atomically
    job page        PK=RESCORE#<job id>    SK=PAGE#<partition>#<page>   each page counted once
"""

from datetime import datetime
from decimal import Decimal
from typing import Any

from crm.platform import clock
from crm.platform.dynamo import (
    TableRepository,
    serializer,
)


def storable(value: Any) -> Any:
    """A value DynamoDB accepts as it is: floats become Decimals, times fixed-width ISO text."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, datetime):
        return clock.isoformat(value)
    if isinstance(value, dict):
        return {str(key): storable(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [storable(item) for item in value]
    return value


def plain_number(value: Any) -> Any:
    """Numbers read back as Decimal: whole ones become int again (rule values, matched values)."""
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    if isinstance(value, list):
        return [plain_number(item) for item in value]
    if isinstance(value, dict):
        return {key: plain_number(item) for key, item in value.items()}
    return value


def attribute_value(value: Any) -> dict[str, Any]:
    serialized: dict[str, Any] = dict(serializer.serialize(value))
    return serialized


class ScoringStore(TableRepository):
    def _transact(self, items: list[Any]) -> None:
        self.client.transact_write_items(TransactItems=items)
