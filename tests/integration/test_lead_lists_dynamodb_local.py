"""Lists, search and analytics against Amazon's DynamoDB Local, on a table built from template.yaml, with
the table's real stream feeding the projection handlers."""

import random
import threading
import time
import zlib
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from crm import bootstrap
from crm.analytics.counters import COUNTER_FIELDS, Dimension, GroupBy, recount
from crm.analytics.repository import counter_items
from crm.leads.index import Sort
from crm.leads.model import Lead, LeadStatus, new_activity
from crm.leads.permissions import can_view
from crm.leads.repository import LeadItem
from crm.platform import clock
from crm.platform.auth import Principal
from crm.platform.dynamo import marshal, unmarshal
from crm.platform.errors import BadQuery, NotFound, RetryableError
from crm.queries.lists import LeadListQuery
from crm.queries.search import tokens_for
from crm.scoring.preview_repository import PreviewRepository
from crm.tools.list_backfill import backfill
from crm.tools.search_backfill import backfill as search_backfill

from devstack.template import Template
from tests.conftest import reset_cached_clients
from tests.integration.lead_stream import StreamReader, create_isolated_table, project
from tests.lead_data import (
    ADMIN,
    MANAGER,
    OUTSIDER,
    PRINCIPALS,
    REP,
    item_of,
    lead,
    store_leads,
    varied_leads,
)
from tests.unit.test_lead_lists import QUERIES, wanted

pytestmark = pytest.mark.ddblocal

DAY = datetime(2031, 3, 1, tzinfo=UTC)
PAGE = 12


@pytest.fixture(scope="module")
def use_table(dynamodb_local: str, template: Template) -> Iterator[Any]:
    """Point the services at a fresh table of the template's shape; the stream reader follows it."""
    patch = pytest.MonkeyPatch()
    environment = template.function("LeadQueriesFunction").environment

    def switch(table: str | None = None) -> str:
        name = table or create_isolated_table(dynamodb_local, template)
        for key, value in environment.items():
            patch.setenv(key, value)
        patch.setenv("AWS_ENDPOINT_URL_DYNAMODB", dynamodb_local)
        patch.setenv("TABLE_NAME", name)
        patch.setenv("CURSOR_SIGNING_KEY", "integration-cursor-key")
        reset_cached_clients()
        return name

    yield switch
    patch.undo()
    reset_cached_clients()


@pytest.fixture(scope="module")
def listed(use_table: Any, dynamodb_local: str) -> dict[str, Any]:
    table = use_table()
    leads = varied_leads(240, DAY, days=6, seed=11)
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    store_leads(client, table, leads)
    return {"table": table, "leads": leads}


def page_through(principal: Principal, query: LeadListQuery) -> list[Lead]:
    service = bootstrap.lead_query_service()
    found: list[Lead] = []
    cursor = None
    for _ in range(200):
        page = service.list_leads(principal, query, cursor)
        assert len(page.leads) <= query.limit
        found += page.leads
        cursor = page.next_cursor
        if cursor is None:
            return found
    raise AssertionError("paging did not end")


def sort_value(subject: Lead, sort: Sort) -> str:
    item = LeadItem.from_lead(subject, bootstrap.index_shards()).model_dump()
    return str(item["SCORESK" if sort is Sort.SCORE else "CREATEDSK"])


CASES = [
    "everything",
    "hottest first",
    "oldest first",
    "qualified",
    "forced conversions",
    "mine",
    "unassigned by score",
    "rep-1's",
    "mine, contacted",
    "source",
    "grade B",
    "score 50-90",
    "created range",
    "contacted in range",
]


@pytest.mark.parametrize("principal", [ADMIN, MANAGER, REP, OUTSIDER], ids=lambda p: p.subject)
@pytest.mark.parametrize("name", CASES)
def test_filters_and_pages_return_every_matching_lead_exactly_once_in_order(
    listed: dict[str, Any], use_table: Any, principal: Principal, name: str
) -> None:
    use_table(listed["table"])
    query = LeadListQuery(**{**QUERIES[name].__dict__, "limit": PAGE})
    expected = {s.id for s in listed["leads"] if wanted(principal, query, s)}
    try:
        found = page_through(principal, query)
    except BadQuery:
        return  # refused combinations are covered by the unit tests
    ids = [subject.id for subject in found]
    assert len(ids) == len(set(ids)), "a lead appeared on two pages"
    assert set(ids) == expected
    values = [sort_value(subject, query.effective_sort()) for subject in found]
    assert values == sorted(values, reverse=query.order.value == "desc")


def test_a_cursor_is_refused_on_another_query_and_when_edited(listed: dict[str, Any], use_table: Any) -> None:
    use_table(listed["table"])
    service = bootstrap.lead_query_service()
    first = service.list_leads(MANAGER, LeadListQuery(limit=5), None)
    assert first.next_cursor is not None
    with pytest.raises(BadQuery, match="another query"):
        service.list_leads(MANAGER, LeadListQuery(limit=5, status=LeadStatus.NEW), first.next_cursor)
    with pytest.raises(BadQuery, match="another query"):
        service.list_leads(ADMIN, LeadListQuery(limit=5), first.next_cursor)
    payload, signature = first.next_cursor.split(".")
    with pytest.raises(BadQuery):
        service.list_leads(MANAGER, LeadListQuery(limit=5), f"{payload[::-1]}.{signature}")


# ---------------------------------------------------------------- search


def test_search_finds_by_a_prefix_of_each_field_ignoring_case_and_accents(
    use_table: Any, dynamodb_local: str
) -> None:
    table = use_table()
    reader = StreamReader(dynamodb_local, table)
    zoe = lead(
        DAY,
        first_name="Zoë",
        last_name="Ångström",
        email="z.angstrom@nordique.example",
        company="Société Générale",
        assigned_to="rep-1",
        team="sales",
    )
    others = [lead(DAY, first_name=f"Ada{index}", assigned_to="rep-2", team="sales") for index in range(23)]
    repository = bootstrap.lead_repository()
    for subject in [zoe, *others]:
        repository.create(subject, [])
    project(reader.read())
    service = bootstrap.lead_query_service()

    for text in ("zoe", "ZOË", "Zo", "angst", "ÅNGSTRÖM", "z.ang", "nordique", "soci", "generale", "zoe ang"):
        page = service.search(ADMIN, text, 10, None, [])
        assert [found.id for found in page.leads] == [zoe.id], text
    assert service.search(REP, "zoe", 10, None, []).leads[0].id == zoe.id  # rep-1 owns it
    assert service.search(OUTSIDER, "zoe", 10, None, []).leads == []  # another team's rep
    assert service.search(ADMIN, "ample", 10, None, []).leads == []  # a prefix, not a substring

    seen: list[str] = []
    cursor = None
    while True:
        page = service.search(MANAGER, "ada", 4, cursor, [])
        seen += [found.id for found in page.leads]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(subject.id for subject in others)  # every one once, over 6 pages

    renamed = others[0].model_copy(update={"first_name": "Grace", "version": 2})
    repository.replace(renamed, 1, [])
    project(reader.read())
    assert others[0].id not in {found.id for found in service.search(ADMIN, "ada", 50, None, []).leads}
    assert [found.id for found in service.search(ADMIN, "grac", 5, None, []).leads] == [others[0].id]


def renamed_lead(table: str, dynamodb_local: str) -> tuple[Lead, list[dict[str, Any]]]:
    """Idem Potent, created then renamed Changed: the lead and the stream records of both writes."""
    reader = StreamReader(dynamodb_local, table)
    subject = lead(DAY, first_name="Idem", last_name="Potent")
    bootstrap.lead_repository().create(subject, [])
    renamed = subject.model_copy(update={"last_name": "Changed", "version": 2})
    bootstrap.lead_repository().replace(renamed, 1, [])
    return subject, reader.read()


def test_search_upkeep_is_idempotent_when_records_come_again_or_at_once(
    use_table: Any, dynamodb_local: str
) -> None:
    subject, records = renamed_lead(use_table(), dynamodb_local)

    with ThreadPoolExecutor(max_workers=6) as pool:  # the same records, concurrently, several times
        list(pool.map(lambda _: project(records), range(6)))
    project(records[:1])  # an old record after the newest: a no-op

    service = bootstrap.lead_query_service()
    assert [found.id for found in service.search(ADMIN, "chang", 5, None, []).leads] == [subject.id]
    assert service.search(ADMIN, "potent", 5, None, []).leads == []


def test_changes_indexed_after_their_lead_was_erased_leave_no_token_behind(
    use_table: Any, dynamodb_local: str
) -> None:
    # Given a lead created and renamed, erased before the stream got to either change
    table = use_table()
    subject, records = renamed_lead(table, dynamodb_local)
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    client.delete_item(TableName=table, Key={"PK": {"S": f"LEAD#{subject.id}"}, "SK": {"S": "LEAD"}})

    # When the stream catches up with the changes
    project(records)

    # Then no token item of the lead was written
    items = [
        unmarshal(item)
        for page in client.get_paginator("scan").paginate(TableName=table)
        for item in page["Items"]
    ]
    assert [
        item for item in items if item.get("lead_id") == subject.id and item["PK"].startswith("SEARCH")
    ] == []


def test_an_old_record_that_loses_the_race_to_a_newer_version_leaves_the_newer_tokens(
    use_table: Any, dynamodb_local: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a lead renamed, the rename indexed
    subject, records = renamed_lead(use_table(), dynamodb_local)
    project(records)
    # When the first version is indexed again by a replay that read the manifest before the rename stored it
    # (its token items are written, its manifest put then loses to the newer one)
    index = bootstrap.lead_query_service().search_index
    real_get = index._get_item
    stale_reads = [None]  # the first read (the manifest) answers as before the rename was indexed
    monkeypatch.setattr(index, "_get_item", lambda key: stale_reads.pop() if stale_reads else real_get(key))
    assert index.sync(subject.id, subject, 1) is False

    # Then the renamed lead is found by its new name only
    service = bootstrap.lead_query_service()
    assert [found.id for found in service.search(ADMIN, "chang", 5, None, []).leads] == [subject.id]
    assert service.search(ADMIN, "potent", 5, None, []).leads == []


def search_items(client: Any, table: str, lead_id: str) -> list[dict[str, Any]]:
    items = [
        unmarshal(item)
        for page in client.get_paginator("scan").paginate(TableName=table)
        for item in page["Items"]
    ]
    return [item for item in items if item.get("lead_id") == lead_id and item["PK"].startswith("SEARCH#")]


def test_routing_and_assignment_rewrite_each_token_item_in_place_and_search_follows_who_may_see(
    use_table: Any, dynamodb_local: str
) -> None:
    table = use_table()
    reader = StreamReader(dynamodb_local, table)
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    service = bootstrap.lead_query_service()
    repository = bootstrap.lead_repository()
    # A lead captured without a team, routed to the sales queue, then assigned to rep-1
    subject = lead(DAY, first_name="Quinta", last_name="Routed")
    routed = subject.model_copy(update={"team": "sales", "version": 2})
    assigned = routed.model_copy(update={"assigned_to": "rep-1", "version": 3})
    for step, stored in enumerate((subject, routed, assigned)):
        if step == 0:
            repository.create(stored, [])
        else:
            repository.replace(stored, stored.version - 1, [])
        project(reader.read())
        # At each step search finds it for exactly those who may see it
        for principal in PRINCIPALS.values():
            found = [f.id for f in service.search(principal, "quinta", 5, None, []).leads]
            assert found == ([subject.id] if can_view(principal, stored) else []), (step, principal.subject)
    assert {p.subject for p in PRINCIPALS.values() if can_view(p, routed)} > {"rep-1", "rep-2", "manager-1"}

    # And the lead has one item per token, in the ALL partitions, each naming who may see it
    items = search_items(client, table, subject.id)
    assert sorted(item["SK"].rsplit("#", 1)[0] for item in items) == sorted(tokens_for(assigned))
    assert {item["PK"].split("#")[1] for item in items} == {"ALL"}
    assert all(item["seen_by"] == ["TEAM#sales", "OWNER#rep-1"] for item in items)


def test_the_upgrade_backfill_rewrites_search_items_written_per_scope(
    use_table: Any, dynamodb_local: str
) -> None:
    # Given a lead indexed the old way: an item per token and scope, a manifest without `seen_by`
    table = use_table()
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    subject = lead(DAY, first_name="Olga", last_name="Legacy", assigned_to="rep-1", team="sales")
    bootstrap.lead_repository().create(subject, [])
    tokens = tokens_for(subject)
    keys = [
        {"PK": f"SEARCH#{scope}#{token[:2]}", "SK": f"{token}#{subject.id}"}
        for scope in ("ALL", "TEAM#sales", "OWNER#rep-1")
        for token in tokens
    ]
    for key in keys:
        client.put_item(
            TableName=table,
            Item=marshal(
                {**key, "entity": "search_token", "lead_id": subject.id, "tokens": tokens, "lead_version": 1}
            ),
        )
    manifest = {
        "PK": f"SEARCHDOC#{subject.id}",
        "SK": "SEARCHDOC",
        "entity": "search_doc",
        "lead_id": subject.id,
    }
    client.put_item(
        TableName=table,
        Item=marshal(
            {**manifest, "keys": [[k["PK"], k["SK"]] for k in keys], "tokens": tokens, "lead_version": 1}
        ),
    )
    service = bootstrap.lead_query_service()
    assert service.search(REP, "olga", 5, None, []).leads == []  # the old items carry no `seen_by`

    # When the backfill runs, twice
    first, again = search_backfill(table, client), search_backfill(table, client)

    # Then the lead is found by whoever may see it, through one item per token, and the second run is a no-op
    assert (first.leads, first.reindexed, again.reindexed) == (1, 1, 0)
    for principal in (ADMIN, MANAGER, REP):
        assert [found.id for found in service.search(principal, "olga", 5, None, []).leads] == [subject.id]
    assert service.search(OUTSIDER, "olga", 5, None, []).leads == []
    assert len(search_items(client, table, subject.id)) == len(tokens)


# ---------------------------------------------------------------- list-index upkeep


def test_an_in_place_assignment_is_listed_for_its_rep_once_the_stream_repairs_the_keys(
    use_table: Any, dynamodb_local: str
) -> None:
    table = use_table()
    reader = StreamReader(dynamodb_local, table)
    subject = lead(DAY, team="sales")
    bootstrap.lead_repository().create(subject, [])
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    # What an UpdateItem writer (the assignment) does: it knows nothing of the list indexes.
    client.update_item(
        TableName=table,
        Key={"PK": {"S": f"LEAD#{subject.id}"}, "SK": {"S": "LEAD"}},
        UpdateExpression="SET assigned_to = :rep ADD #version :one",
        ExpressionAttributeNames={"#version": "version"},
        ExpressionAttributeValues={":rep": {"S": "rep-1"}, ":one": {"N": "1"}},
    )
    service = bootstrap.lead_query_service()
    assert subject.id not in {s.id for s in service.list_leads(REP, LeadListQuery(owner="me"), None).leads}

    project(reader.read())

    assert [s.id for s in service.list_leads(REP, LeadListQuery(owner="me"), None).leads] == [subject.id]
    queue = service.list_leads(REP, LeadListQuery(owner="unassigned"), None).leads
    assert subject.id not in {s.id for s in queue}
    key = {"PK": {"S": f"LEAD#{subject.id}"}, "SK": {"S": "LEAD"}}
    assert "UNASSIGNEDPK" not in client.get_item(TableName=table, Key=key)["Item"]  # out of that index too
    assert project(reader.read()) == 1  # the repair's own record; it repairs nothing more
    assert project(reader.read()) == 0
    # A repair computed from an older state never overwrites the newer one.
    before = LeadItem.from_lead(subject, bootstrap.index_shards()).model_dump()
    before.pop("HOLDERPK")  # an old record's image, its keys out of date: version 1, unassigned
    assert not bootstrap.list_repository().repair_index(before, subject, bootstrap.index_shards())
    assert [s.id for s in service.list_leads(REP, LeadListQuery(owner="me"), None).leads] == [subject.id]


def test_the_timeline_pages_newest_first_and_is_hidden_from_who_may_not_see_the_lead(
    use_table: Any,
) -> None:
    use_table()
    subject = lead(DAY, assigned_to="rep-1", team="sales")
    activities = [
        new_activity(subject.id, "note", f"step {index}", "user:rep-1", DAY + timedelta(minutes=index))
        for index in range(12)
    ]
    bootstrap.lead_repository().create(subject, activities)
    service = bootstrap.lead_query_service()
    seen, cursor = [], None
    while True:
        page = service.timeline(REP, subject.id, 5, cursor)
        seen += [activity.description for activity in page.activities]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == [f"step {index}" for index in reversed(range(12))]
    with pytest.raises(NotFound):
        service.timeline(Principal("rep-2", None, frozenset({"rep"}), frozenset({"sales"})), subject.id)


# ---------------------------------------------------------------- analytics


def test_analytics_equal_a_recount_after_a_burst_with_redelivered_records(
    use_table: Any, dynamodb_local: str
) -> None:
    table = use_table()
    reader = StreamReader(dynamodb_local, table)
    repository = bootstrap.lead_repository()
    rng = random.Random(5)
    now = clock.now()
    captured = [
        lead(now - timedelta(days=rng.randrange(3)), source=rng.choice(["acme", "website_form", "api"]))
        for _ in range(30)
    ]
    with ThreadPoolExecutor(max_workers=8) as pool:  # a burst of captures
        list(pool.map(lambda subject: repository.create(subject, []), captured))
    project(reader.read())

    def work(subject: Lead) -> None:
        current = subject
        steps = rng.choice(
            [
                [],
                [LeadStatus.CONTACTED],
                [LeadStatus.CONTACTED, LeadStatus.QUALIFIED],
                [LeadStatus.UNQUALIFIED],
            ]
        )
        for step, status in enumerate(steps):
            changed = current.model_copy(
                update={
                    "lead_status": status,
                    "qualified": status is LeadStatus.QUALIFIED,
                    "assigned_to": current.assigned_to or rng.choice(["rep-1", "rep-2"]),
                    "updated_at": current.created_at + timedelta(minutes=10 * (step + 1)),
                }
            )
            current = repository.replace(changed, current.version, [])

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(work, captured))
    records = reader.read()
    rng.shuffle(shuffled := list(records))
    project(records)
    project(records[: len(records) // 2])  # a batch retried after a partial failure
    with ThreadPoolExecutor(max_workers=2) as pool:  # and redelivered concurrently
        list(pool.map(lambda _: project(shuffled), range(2)))

    stored = {subject.id: repository.get(subject.id) for subject in captured}
    leads = [subject for subject in stored.values() if subject is not None]
    start, end = min(s.created_at.date() for s in leads), max(s.created_at.date() for s in leads)
    analytics = bootstrap.analytics_service()
    expected = recount(leads)

    funnel = analytics.funnel(MANAGER, start, end, GroupBy.SOURCE)
    assert +Counter(funnel.total.counts) == +expected[("all", "all")]
    for group in funnel.groups:
        assert +Counter(group.counts) == +expected[(Dimension.SOURCE.value, group.key)]
    by_owner = analytics.funnel(ADMIN, start, end, GroupBy.OWNER)
    assert {g.key: g.leads for g in by_owner.groups} == {
        value: counts["leads"] for (dimension, value), counts in expected.items() if dimension == "owner"
    }
    by_day = analytics.funnel(ADMIN, start, end, GroupBy.DAY)
    assert sum(g.leads for g in by_day.groups) == len(leads)
    sources = analytics.sources(MANAGER, start, end)
    assert sum(figures.leads for figures in sources) == len(leads)

    contacted = [s for s in leads if s.lead_status is not LeadStatus.NEW]
    speed = analytics.speed(MANAGER, start, end)
    assert speed.overall.contacted == len(contacted)
    assert speed.overall.median_seconds == pytest.approx(600, rel=0.05)
    assert sum(rep.contacted for rep in speed.reps) == len(contacted)

    for day in {s.created_at.date() for s in leads}:
        assert analytics.reconcile(day).drift == []

    # Every stored counter item, day and month alike, is what the leads add up to (inspection scan).
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    stored_items = {
        (item["PK"], item["SK"]): {k: int(v) for k, v in item.items() if k in COUNTER_FIELDS and int(v)}
        for item in map(unmarshal, client.scan(TableName=table)["Items"])
        if str(item["PK"]).startswith("STATS#") and "dimension" in item
    }
    assert {key: counts for key, counts in stored_items.items() if counts} == {
        (item["PK"], item["SK"]): {k: v for k, v in item.items() if k in COUNTER_FIELDS and v}
        for item in counter_items(leads)
    }


def test_one_record_applied_by_many_workers_at_once_counts_once(use_table: Any) -> None:
    use_table()
    analytics = bootstrap.analytics_service()
    subject = lead(DAY + timedelta(days=400), source="race")
    start = threading.Barrier(10)

    def apply(_: int) -> bool:
        start.wait()
        return analytics.record_change(subject.id, "seq-000123", None, subject)

    with ThreadPoolExecutor(max_workers=10) as pool:
        outcomes = list(pool.map(apply, range(10)))
    assert outcomes.count(True) == 1
    day = subject.created_at.date()
    assert analytics.sources(MANAGER, day, day)[0].leads == 1


def test_the_nightly_reconciliation_reports_and_stores_drift(use_table: Any, dynamodb_local: str) -> None:
    table = use_table()
    reader = StreamReader(dynamodb_local, table)
    day = clock.now() - timedelta(days=1)
    for index in range(5):
        bootstrap.lead_repository().create(lead(day + timedelta(seconds=index), source="acme"), [])
    project(reader.read())
    analytics = bootstrap.analytics_service()
    assert analytics.reconcile().drift == []  # yesterday, by default

    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    client.update_item(
        TableName=table,
        Key={"PK": {"S": f"STATS#source#{day:%Y-%m}"}, "SK": {"S": f"D#{day:%d}#acme"}},
        UpdateExpression="ADD s_new :two",
        ExpressionAttributeValues={":two": {"N": "2"}},
    )
    report = analytics.reconcile(day.date())
    assert [(d.dimension, d.value, d.field, d.expected, d.stored) for d in report.drift] == [
        ("source", "acme", "s_new", 5, 7)
    ]
    stored = analytics.store.reconciliation(day.date())
    assert stored is not None
    assert (stored["leads"], stored["drift_count"]) == (5, 1)


def test_the_upgrade_backfill_gives_old_leads_their_list_keys_once(
    use_table: Any, dynamodb_local: str
) -> None:
    table = use_table()
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    old = [lead(DAY, assigned_to="rep-1", team="sales") for _ in range(3)]
    list_keys = {
        "CREATEDSK",
        "SCORESK",
        "ALLSTAGEPK",
        "TEAMSTAGEPK",
        "HOLDERPK",
        "HOLDERSTAGEPK",
        "TEAMOWNERPK",
    }
    for subject in old:  # as written before the list indexes existed
        item = {k: v for k, v in item_of(subject, bootstrap.index_shards()).items() if k not in list_keys}
        client.put_item(TableName=table, Item=item)
    service = bootstrap.lead_query_service()
    assert service.list_leads(REP, LeadListQuery(owner="me"), None).leads == []

    first, again = (
        backfill(table, bootstrap.index_shards(), client),
        backfill(table, bootstrap.index_shards(), client),
    )

    assert (first.leads, first.rewritten, again.rewritten) == (3, 3, 0)
    listed = service.list_leads(REP, LeadListQuery(owner="me"), None).leads
    assert {subject.id for subject in listed} == {subject.id for subject in old}


def test_the_upgrade_backfill_moves_leads_stored_in_gsi1_3_to_the_status_source_and_unassigned_indexes(
    use_table: Any, dynamodb_local: str
) -> None:
    table = use_table()
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    shards = bootstrap.index_shards()
    waiting = lead(DAY, source="fair")  # unassigned
    owned = lead(DAY + timedelta(minutes=1), source="fair", assigned_to="rep-1", team="sales")
    for subject in (waiting, owned):  # as stored while leads were in GSI1-3 (projection ALL)
        new_keys = ("STATUSPK", "SOURCEPK", "UNASSIGNEDPK")
        item = {k: v for k, v in item_of(subject, shards).items() if k not in new_keys}
        shard = zlib.crc32(subject.id.encode()) % shards
        created = item["CREATEDSK"]
        owner = f"OWNER#{subject.assigned_to}" if subject.assigned_to else f"OWNER#unassigned#{shard}"
        legacy = {
            "GSI1PK": owner,
            "GSI2PK": f"STATUS#{subject.lead_status.value}#{shard}",
            "GSI3PK": f"SOURCE#{subject.lead_source}#{shard}",
        }
        for pk, value in legacy.items():
            item[pk] = {"S": value}
            item[pk.replace("PK", "SK")] = created
        client.put_item(TableName=table, Item=item)
    service = bootstrap.lead_query_service()
    by_source = LeadListQuery(source="fair")
    assert service.list_leads(ADMIN, by_source, None).leads == []

    first, again = backfill(table, shards, client), backfill(table, shards, client)

    assert (first.leads, first.rewritten, first.out_of_gsi1_3) == (2, 2, 2)
    assert (again.rewritten, again.out_of_gsi1_3) == (0, 0)
    assert {s.id for s in service.list_leads(ADMIN, by_source, None).leads} == {waiting.id, owned.id}
    unassigned = service.list_leads(ADMIN, LeadListQuery(owner="unassigned"), None).leads
    assert [s.id for s in unassigned] == [waiting.id]
    preview = PreviewRepository(table, shards, client=client)
    assert set(preview.open_lead_ids()) == {waiting.id, owned.id}
    for index in ("GSI1", "GSI2", "GSI3"):
        assert client.scan(TableName=table, IndexName=index)["Items"] == []


def test_concurrent_changes_of_many_leads_on_the_same_counters_all_count(use_table: Any) -> None:
    use_table()
    analytics = bootstrap.analytics_service()
    day = DAY + timedelta(days=500)
    leads = [lead(day, source="contended") for _ in range(24)]
    start = threading.Barrier(8)

    def apply(index: int) -> None:
        if index < 8:
            start.wait()
        for attempt in range(20):  # what the stream does with a record that failed: deliver it again
            try:
                analytics.record_change(leads[index].id, f"seq-{index}", None, leads[index])
                return
            except RetryableError:
                time.sleep(0.05 * attempt)
        raise AssertionError("a record never got through")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(apply, range(len(leads))))
    figures = analytics.sources(MANAGER, day.date(), day.date())
    assert [(f.key, f.leads, f.counts["s_new"]) for f in figures] == [("contended", 24, 24)]
