"""The rule preview and the stored sales threshold, through the scoring API's real handler on DynamoDB Local.

The preview runs over a table of its own holding 1,000 generated leads; the expected figures are computed
here from the default rules as the specification states them, without the scoring engine.
"""

import random
import uuid
from collections import Counter
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from crm.leads.model import Activity, Lead, LeadStatus
from crm.leads.repository import ActivityItem

from devstack.provision import table_definition
from devstack.template import Template
from tests.integration.scoring_helpers import as_user
from tests.lead_data import item_of, lead, store
from tests.support import FakeLambdaContext, event, load_handler, response_json

pytestmark = pytest.mark.ddblocal

SHARDS = 4
TITLES = {"CEO": 20, "VP Sales": 15, "Director of IT": 10, "Engineer": 0}
DOMAINS = {"example.com": 0, "school.edu": 5, "agency.gov": 10}
SIZES = {5: 0, 50: 5, 500: 10, 5000: 15}
REVENUES = {None: 0, 2_000_000: 10, 20_000_000: 15}
INDUSTRIES = ("Technology", "Finance", "Retail")
STATUSES = (LeadStatus.NEW, LeadStatus.CONTACTED, LeadStatus.UNQUALIFIED, LeadStatus.CONVERTED)
# Technology +25 instead of +10: the target-industry rule keeps Finance and Healthcare, a new rule scores it.
TECHNOLOGY_25 = [
    {"op": "update", "id": "seed-industry", "value": ["Finance", "Healthcare"]},
    {
        "op": "create",
        "name": "Technology",
        "category": "firmographic",
        "field": "industry",
        "operator": "equals",
        "value": "Technology",
        "points": 25,
    },
]


def grade(score: int) -> str:
    for floor, name in ((90, "A+"), (80, "A"), (70, "B"), (60, "C"), (50, "D")):
        if score >= floor:
            return name
    return "F"


def expected_score(fields: dict[str, Any], technology_points: int) -> int:
    """The default rules, by hand: one title tier, email, one size tier, one revenue tier, industry, and
    per activity page_viewed 1 and form_submitted 10."""
    industry = {"Technology": technology_points, "Finance": 10}.get(fields["industry"], 0)
    return (
        TITLES[fields["title"]]
        + DOMAINS[fields["domain"]]
        + SIZES[fields["size"]]
        + REVENUES[fields["revenue"]]
        + industry
        + fields["page_views"]
        + 10 * fields["forms"]
    )


def create_table(local_aws: dict[str, Any], template: Template) -> str:
    """A table of its own, shaped by template.yaml."""
    dynamodb = local_aws["dynamodb"]
    name = f"preview-{uuid.uuid4().hex[:8]}"
    dynamodb.create_table(**(table_definition(template.tables[0]) | {"TableName": name}))
    dynamodb.get_waiter("table_exists").wait(TableName=name)
    return name


@pytest.fixture
def empty_table(local_aws: dict[str, Any], template: Template) -> dict[str, Any]:
    """For checks that read no lead: input errors, permissions, settings."""
    return {**local_aws, "table": create_table(local_aws, template), "open": {}}


@pytest.fixture
def preview_table(local_aws: dict[str, Any], template: Template) -> dict[str, Any]:
    """A table of its own (from template.yaml) with 1,000 generated leads, a quarter of them converted."""
    dynamodb = local_aws["dynamodb"]
    name = create_table(local_aws, template)
    rng = random.Random(13)
    start = datetime(2026, 1, 5, tzinfo=UTC)
    leads: list[Lead] = []
    fields: dict[str, dict[str, Any]] = {}
    activities: list[dict[str, Any]] = []
    serializer = TypeSerializer()
    for index in range(1000):
        status = STATUSES[index % len(STATUSES)]
        created = start + timedelta(minutes=index)
        chosen = {
            "title": rng.choice(list(TITLES)),
            "domain": rng.choice(list(DOMAINS)),
            "size": rng.choice(list(SIZES)),
            "revenue": rng.choice(list(REVENUES)),
            "industry": rng.choice(INDUSTRIES),
            "page_views": rng.randrange(4),
            "forms": rng.randrange(2),
        }
        # Not routed to a team yet: every manager may see them (and so find them among the movers).
        base = lead(created, status=status, converted=status is LeadStatus.CONVERTED, team=None)
        generated = base.model_copy(
            update={
                "email": f"lead{index}@{chosen['domain']}",
                "title": chosen["title"],
                "employee_count": chosen["size"],
                "annual_revenue": None if chosen["revenue"] is None else Decimal(chosen["revenue"]),
                "industry": chosen["industry"],
            }
        )
        leads.append(generated)
        fields[generated.id] = chosen
        kinds = ["page_viewed"] * chosen["page_views"] + ["form_submitted"] * chosen["forms"]
        for number, kind in enumerate(kinds):
            activity = Activity(
                id=f"{generated.id[:8]}-{number}",
                lead_id=generated.id,
                type=kind,
                description=kind,
                created_by="test",
                created_at=created + timedelta(seconds=number + 1),
            )
            item = ActivityItem.from_activity(activity).model_dump()
            activities.append(
                {key: serializer.serialize(value) for key, value in item.items() if value is not None}
            )
    store(dynamodb, name, [item_of(generated, SHARDS) for generated in leads] + activities)
    open_fields = {
        lead_id: chosen
        for lead_id, chosen in fields.items()
        if next(found for found in leads if found.id == lead_id).lead_status is not LeadStatus.CONVERTED
    }
    return {**local_aws, "table": name, "open": open_fields}


@pytest.fixture
def scoring_api(template: Template, function_env: Any, preview_table: dict[str, Any]) -> Any:
    """The scoring API's handler on the 1,000-lead table."""
    return scoring_api_on(template, function_env, preview_table)


@pytest.fixture
def scoring_api_empty(template: Template, function_env: Any, empty_table: dict[str, Any]) -> Any:
    """The scoring API's handler on a table without leads (input errors, permissions, settings)."""
    return scoring_api_on(template, function_env, empty_table)


def scoring_api_on(template: Template, function_env: Any, preview_table: dict[str, Any]) -> Any:
    function = template.function("ScoringApiFunction")
    handler = load_handler(function)

    def call(
        sample: str, user: str = "manager", body: Any = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        function_env("ScoringApiFunction", TABLE_NAME=preview_table["table"])
        request = event(sample) if body is None else event(sample, body=body)
        request["headers"].update(headers or {})
        context = FakeLambdaContext(function_name=function.name, timeout_s=function.timeout_s)
        response = handler(as_user(request, user), context)
        return response["statusCode"], response_json(response), response.get("headers") or {}

    return call


def table_state(dynamodb: Any, table: str) -> tuple[int, dict[str, int]]:
    """How many items the table holds, and every lead's version (test inspection: a Scan)."""
    items = []
    for page in dynamodb.get_paginator("scan").paginate(TableName=table):
        items.extend(page["Items"])
    versions = {item["id"]["S"]: int(item["version"]["N"]) for item in items if item["entity"]["S"] == "lead"}
    return len(items), versions


def test_a_preview_of_technology_at_25_matches_an_independent_count_and_writes_nothing(
    scoring_api: Any, preview_table: dict[str, Any]
) -> None:
    # Given 1,000 leads, 750 of them open, the default rules, and the table as it is
    dynamodb, table, open_fields = preview_table["dynamodb"], preview_table["table"], preview_table["open"]
    assert scoring_api("list_scoring_rules.json")[0] == 200  # the default rules, seeded on first read
    before = table_state(dynamodb, table)

    # When a manager previews Technology at +25 instead of +10, with a sales threshold of 75
    status, body, _ = scoring_api(
        "preview_scoring_rules.json", body={"changes": TECHNOLOGY_25, "threshold": 75}
    )

    # Then every open lead was scored, under both rule sets, exactly as the rules say
    assert status == 200, body
    assert (body["leads_considered"], body["open_leads"], body["sampled"]) == (750, 750, False)
    current = {lead_id: expected_score(chosen, 10) for lead_id, chosen in open_fields.items()}
    proposed = {lead_id: expected_score(chosen, 25) for lead_id, chosen in open_fields.items()}
    for outcome, scores, threshold in ((body["current"], current, 70), (body["proposed"], proposed, 75)):
        grades = Counter(grade(score) for score in scores.values())
        assert outcome["grades"] == {name: grades[name] for name in ("A+", "A", "B", "C", "D", "F")}
        assert outcome["threshold"] == threshold
        assert outcome["sales"] == sum(1 for score in scores.values() if score >= threshold)
        assert outcome["nurture"] == sum(1 for score in scores.values() if score < threshold)
    # Only Technology leads move, each by 15; the 20 movers shown are the first ids among them
    moved = sorted(lead_id for lead_id in open_fields if current[lead_id] != proposed[lead_id])
    assert (
        body["leads_moved"]
        == len(moved)
        == sum(1 for f in open_fields.values() if f["industry"] == "Technology")
    )
    assert [mover["lead_id"] for mover in body["movers"]] == moved[:20]
    for mover in body["movers"]:
        assert (mover["score_before"], mover["score_after"], mover["change"]) == (
            current[mover["lead_id"]],
            proposed[mover["lead_id"]],
            15,
        )
        assert (mover["grade_before"], mover["grade_after"]) == (
            grade(current[mover["lead_id"]]),
            grade(proposed[mover["lead_id"]]),
        )
    # And nothing was written: the same items, every lead at the same version
    assert table_state(dynamodb, table) == before


def test_an_invalid_change_is_a_422_naming_the_change_and_a_rep_may_not_preview(
    scoring_api_empty: Any,
) -> None:
    scoring_api = scoring_api_empty
    status, body, _ = scoring_api(
        "preview_scoring_rules.json",
        body={
            "changes": [
                {"op": "delete", "id": "seed-email-gov"},
                {"op": "update", "id": "seed-industry", "points": "x"},
            ]
        },
    )
    assert status == 422
    assert [problem["field"] for problem in body["fields"]] == ["changes[1].points"]

    status, body, _ = scoring_api(
        "preview_scoring_rules.json", body={"changes": [{"op": "update", "id": "no-such-rule", "points": 5}]}
    )
    assert (status, [problem["field"] for problem in body["fields"]]) == (422, ["changes[0].id"])

    status, body, _ = scoring_api("preview_scoring_rules.json", body={"threshold": 1001})
    assert (status, [problem["field"] for problem in body["fields"]]) == (422, ["threshold"])

    status, _, _ = scoring_api("preview_scoring_rules.json", user="rep1", body={"threshold": 60})
    assert status == 403


def test_the_sales_threshold_is_a_versioned_setting_the_preview_starts_from(scoring_api_empty: Any) -> None:
    scoring_api = scoring_api_empty
    # Given nobody has saved it: the deploy parameter at version 1
    status, body, headers = scoring_api("get_routing_settings.json")
    assert (status, body["sales_threshold"], body["version"], headers["ETag"]) == (200, 70, 1, '"1"')

    # When a manager saves 65 without the version, then with it, then with the stale one
    no_version = scoring_api("put_routing_settings.json", body={"sales_threshold": 65})
    saved = scoring_api(
        "put_routing_settings.json", body={"sales_threshold": 65}, headers={"if-match": '"1"'}
    )
    stale = scoring_api(
        "put_routing_settings.json", body={"sales_threshold": 60}, headers={"if-match": '"1"'}
    )

    # Then: 428, 200 at version 2, 409 naming the current version
    assert no_version[0] == 428
    assert (saved[0], saved[1]["sales_threshold"], saved[1]["version"], saved[2]["ETag"]) == (
        200,
        65,
        2,
        '"2"',
    )
    assert saved[1]["reroute_job"] is None
    assert stale[0] == 409 and stale[1]["current_version"] == 2
    assert scoring_api("get_routing_settings.json")[1]["sales_threshold"] == 65
    # And the preview compares against the stored threshold when the request names none
    status, body, _ = scoring_api("preview_scoring_rules.json", body={})
    assert (status, body["current"]["threshold"], body["proposed"]["threshold"]) == (200, 65, 65)
    assert body["leads_moved"] == 0 and body["current"] == body["proposed"]
    # A rep may not read or change it
    assert scoring_api("get_routing_settings.json", user="rep1")[0] == 403
    assert (
        scoring_api("put_routing_settings.json", user="rep1", body={"sales_threshold": 1, "version": 2})[0]
        == 403
    )


def test_reroute_nurture_is_a_job_over_the_nurture_leads_only_with_progress(
    preview_table: dict[str, Any],
) -> None:
    from crm.scoring.rescore_job_repository import RescoreJobRepository
    from crm.scoring.rescore_queue import InMemoryRescoreQueue
    from crm.scoring.rescoring import JobState
    from crm.scoring.rule_repository import ScoringRuleRepository
    from crm.scoring.score_repository import ScoreRepository
    from crm.scoring.service import RescoreService, ScoringService

    # Given 30 unassigned leads flagged for nurture among the 1,000 (none of the others is)
    dynamodb, table = preview_table["dynamodb"], preview_table["table"]
    nurtured = [
        lead(datetime(2026, 2, 1, tzinfo=UTC), score=60 + index).model_copy(update={"nurture": True})
        for index in range(30)
    ]
    store(dynamodb, table, [item_of(nurtured_lead, SHARDS) for nurtured_lead in nurtured])
    routed: list[str] = []
    rules = ScoringRuleRepository(table, client=dynamodb)
    queue = InMemoryRescoreQueue()
    jobs = RescoreService(
        RescoreJobRepository(table, client=dynamodb),
        rules,
        ScoringService(ScoreRepository(table, SHARDS, client=dynamodb), rules),
        queue,
        shards=SHARDS,
        page_size=7,
        # Stands in for assignment's routing: sends the lead to sales when its score reaches 75.
        reroute=lambda lead_id: (
            routed.append(lead_id) or next(n for n in nurtured if n.id == lead_id).score >= 75
        ),
    )

    # When a threshold change asks for it, and the queue is drained
    started = jobs.start_reroute_job(2, "manager-1")
    while (page := queue.take()) is not None:
        jobs.process_page(page)

    # Then every nurture lead was routed again once, and the job says so
    assert started.job_id == "reroute-2"
    assert sorted(routed) == sorted(n.id for n in nurtured)
    job = jobs.job_status("reroute-2")
    assert (job.effective_state, job.leads_found, job.leads_done, job.leads_changed) == (
        JobState.COMPLETED,
        30,
        30,
        15,
    )
    assert job.progress() == "30 of 30 nurture leads routed again (15 sent to sales)"
