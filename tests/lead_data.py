"""Leads in bulk for the list, search and analytics tests and the benchmark: built as domain leads, stored in
exactly the shape the repository writes (`LeadItem.from_lead`, list-index keys included)."""

import random
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from crm.leads.model import Lead, LeadStatus, grade_for
from crm.leads.repository import LeadItem
from crm.platform.auth import Principal

ADMIN = Principal("admin-1", None, frozenset({"admin"}))
MANAGER = Principal("manager-1", None, frozenset({"manager"}), frozenset({"sales"}))
OTHER_MANAGER = Principal("manager-2", None, frozenset({"manager"}), frozenset({"partners"}))
REP = Principal("rep-1", None, frozenset({"rep"}), frozenset({"sales"}))
OTHER_REP = Principal("rep-2", None, frozenset({"rep"}), frozenset({"sales"}))
OUTSIDER = Principal("rep-9", None, frozenset({"rep"}), frozenset({"partners"}))
PRINCIPALS = {
    "admin": ADMIN,
    "manager": MANAGER,
    "other_manager": OTHER_MANAGER,
    "rep": REP,
    "other_rep": OTHER_REP,
    "outsider": OUTSIDER,
}

SOURCES = ("website_form", "live_chat", "acme", "api")
# (status, qualified, converted): every state the domain produces.
STATES = (
    (LeadStatus.NEW, False, False),
    (LeadStatus.CONTACTED, False, False),
    (LeadStatus.QUALIFIED, True, False),
    (LeadStatus.UNQUALIFIED, False, False),
    (LeadStatus.CONVERTED, True, True),
    (LeadStatus.CONVERTED, False, True),
)
# (assigned_to, team)
HOLDERS = (
    ("rep-1", "sales"),
    ("rep-2", "sales"),
    ("rep-9", "partners"),
    (None, "sales"),
    (None, "partners"),
    (None, None),
)
_serializer = TypeSerializer()


def lead(
    created_at: datetime,
    *,
    status: LeadStatus = LeadStatus.NEW,
    qualified: bool = False,
    converted: bool = False,
    assigned_to: str | None = None,
    team: str | None = None,
    source: str = "website_form",
    score: int = 0,
    graded: bool = True,
    first_name: str = "Ada",
    last_name: str = "Lovelace",
    email: str | None = None,
    company: str | None = "Analytical Engines",
) -> Lead:
    lead_id = str(uuid.uuid4())
    return Lead(
        id=lead_id,
        first_name=first_name,
        last_name=last_name,
        email=email or f"{lead_id[:8]}@example.com",
        company=company,
        lead_source=source,
        lead_status=status,
        qualified=qualified,
        qualified_at=created_at if qualified else None,
        converted=converted,
        converted_at=created_at if converted else None,
        assigned_to=assigned_to,
        assigned_at=created_at if assigned_to else None,
        team=team,
        score=score,
        grade=grade_for(score) if graded else None,
        created_at=created_at,
        updated_at=created_at,
    )


def varied_leads(count: int, first_day: datetime, days: int, seed: int = 7) -> list[Lead]:
    """`count` leads spread over `days` days from `first_day`, over every state, holder, source and score
    band, deterministically."""
    rng = random.Random(seed)
    leads = []
    for index in range(count):
        status, qualified, converted = STATES[index % len(STATES)]
        assigned_to, team = HOLDERS[(index // len(STATES)) % len(HOLDERS)]
        created = first_day + timedelta(seconds=rng.randrange(days * 86_400), microseconds=index)
        leads.append(
            lead(
                created.replace(tzinfo=UTC),
                status=status,
                qualified=qualified,
                converted=converted,
                assigned_to=assigned_to,
                team=team,
                source=SOURCES[rng.randrange(len(SOURCES))],
                # A lead is scored (score and grade written together) or not yet (score 0, no grade).
                score=rng.choice((0, 15, 45, 55, 65, 75, 85, 95, 120)) if index % 11 else 0,
                graded=index % 11 != 0,
            )
        )
    return leads


def item_of(stored: Lead, shards: int) -> dict[str, Any]:
    item = LeadItem.from_lead(stored, shards).model_dump()
    return {name: _serializer.serialize(value) for name, value in item.items() if value is not None}


def _chunks(items: list[Any], size: int) -> Iterator[list[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def store(dynamodb: Any, table: str, items: Iterable[dict[str, Any]], threads: int = 8) -> int:
    """BatchWriteItem already-marshalled items (25 a call, unprocessed ones retried); returns the count."""
    batch = list(items)

    def write(chunk: list[dict[str, Any]]) -> None:
        request: dict[str, Any] = {table: [{"PutRequest": {"Item": item}} for item in chunk]}
        while request:
            response = dynamodb.batch_write_item(RequestItems=request)
            request = response.get("UnprocessedItems") or {}

    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(write, _chunks(batch, 25)))
    return len(batch)


def store_leads(dynamodb: Any, table: str, leads: Iterable[Lead], shards: int = 4) -> int:
    return store(dynamodb, table, (item_of(stored, shards) for stored in leads))
