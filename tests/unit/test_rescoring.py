"""Rescoring rules with no AWS: what a rescore writes, which stream records call for one (and that the
template's filter criteria never pass the scoring function's own writes), rescore jobs, API inputs."""

import json
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from boto3.dynamodb.types import TypeSerializer
from crm.api.models.scoring import RecordActivityRequest
from crm.leads.model import Activity, Lead, LeadStatus
from crm.platform.dynamo import stream_image
from crm.platform.settings import Settings
from crm.scoring.engine import default_rules
from crm.scoring.rescoring import (
    AUTO_QUALIFIED,
    SCORE_CHANGED,
    SCORING_ACTOR,
    JobReason,
    JobState,
    RescoreJob,
    RuleBook,
    RuleSet,
    StoredRule,
    decay_job_id,
    has_decaying_points,
    is_job_id,
    lead_to_rescore,
    plan_rescore,
    rule_set_revision,
    rules_job_revision,
    status_partitions,
)
from pydantic import ValidationError

from devstack.event_filter import matches_any
from devstack.template import Template

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
_serializer = TypeSerializer()


def rule_set(extra: list[StoredRule] | None = None, revision: int = 1) -> RuleSet:
    seeded = [StoredRule(**rule.model_dump(), updated_at=NOW) for rule in default_rules(NOW)]
    return RuleSet(revision=revision, rules=[*seeded, *(extra or [])])


def book(extra: list[StoredRule] | None = None, half_life: float | None = None) -> RuleBook:
    return RuleBook.build(rule_set(extra), half_life)


def lead(**changes: Any) -> Lead:
    fields: dict[str, Any] = {
        "id": "6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@analytical.gov",
        "title": "VP Engineering",
        "industry": "Technology",
        "employee_count": 1200,
        "lead_source": "website_form",
        "created_at": NOW - timedelta(days=1),
        "updated_at": NOW - timedelta(days=1),
    }
    return Lead(**(fields | changes))


def activity(kind: str, days_ago: float = 0) -> Activity:
    return Activity(
        id=f"{kind}-{days_ago}",
        lead_id=lead().id,
        type=kind,
        description=kind,
        created_by="user:tracker",
        created_at=NOW - timedelta(days=days_ago),
    )


# ---------------------------------------------------------------- plan_rescore


def test_a_first_scoring_writes_score_grade_ledger_and_a_score_change() -> None:
    update = plan_rescore(lead(), [], None, book(), now=NOW, half_life_days=None)

    assert update is not None
    # VP 15 + .gov 10 + over 1,000 employees 15 + target industry 10
    assert (update.lead.score, update.lead.grade) == (50, "D")
    assert sum(entry.points for entry in update.breakdown.entries) == 50
    (changed,) = update.activities
    assert changed.type == SCORE_CHANGED and changed.created_by == SCORING_ACTOR
    assert changed.description == "Score 0 → 50 (grade none → D)"
    assert changed.data == {
        "old_score": 0,
        "new_score": 50,
        "old_grade": None,
        "new_grade": "D",
        "rules_revision": 1,
    }


def test_a_lead_with_no_matching_rule_is_still_graded_once_without_a_score_change() -> None:
    bare = lead(email="ada@example.com", title=None, industry=None, employee_count=None)

    update = plan_rescore(bare, [], None, book(), now=NOW, half_life_days=None)

    assert update is not None and update.lead_changed
    assert (update.lead.score, update.lead.grade, update.activities) == (0, "F", [])


def test_rescoring_what_is_already_stored_writes_nothing() -> None:
    first = plan_rescore(lead(), [], None, book(), now=NOW, half_life_days=None)
    assert first is not None
    later = NOW + timedelta(hours=3)

    again = plan_rescore(first.lead, [], first.breakdown, book(), now=later, half_life_days=None)

    assert again is None


def test_a_new_activity_raises_the_score_and_says_old_to_new() -> None:
    first = plan_rescore(lead(), [], None, book(), now=NOW, half_life_days=None)
    assert first is not None

    update = plan_rescore(
        first.lead, [activity("demo_requested")], first.breakdown, book(), now=NOW, half_life_days=None
    )

    assert update is not None
    assert update.lead.score == 70 and update.lead.grade == "B"
    assert [a.description for a in update.activities] == ["Score 50 → 70 (grade D → B)"]


def test_a_renamed_rule_rewrites_the_ledger_but_not_the_lead() -> None:
    first = plan_rescore(lead(), [], None, book(), now=NOW, half_life_days=None)
    assert first is not None
    renamed = rule_set()
    industry = next(rule for rule in renamed.rules if rule.id == "seed-industry")
    industry.name = "Industries we sell to"

    update = plan_rescore(
        first.lead, [], first.breakdown, RuleBook.build(renamed, None), now=NOW, half_life_days=None
    )

    assert update is not None
    assert not update.lead_changed and update.activities == []
    assert "Industries we sell to" in [entry.rule_name for entry in update.breakdown.entries]


def test_reaching_80_qualifies_an_unqualified_lead_once_and_says_why() -> None:
    hot = lead(title="CTO", annual_revenue=Decimal(20_000_000))  # 20 + 10 + 15 + 15 + 10 = 70
    activities = [activity("demo_requested")]

    update = plan_rescore(hot, activities, None, book(), now=NOW, half_life_days=None)

    assert update is not None and update.qualified
    assert update.lead.score == 90 and update.lead.grade == "A+"
    assert update.lead.lead_status is LeadStatus.QUALIFIED
    assert update.lead.qualified and update.lead.qualified_at == NOW
    assert [a.type for a in update.activities] == [SCORE_CHANGED, AUTO_QUALIFIED]
    assert "reached 90" in update.activities[1].description
    again = plan_rescore(update.lead, activities, update.breakdown, book(), now=NOW, half_life_days=None)
    assert again is None


def test_a_lead_someone_unqualified_is_not_qualified_again() -> None:
    undone = lead(title="CTO", annual_revenue=Decimal(20_000_000), qualified_at=NOW - timedelta(days=2))

    update = plan_rescore(undone, [activity("demo_requested")], None, book(), now=NOW, half_life_days=None)

    assert update is not None and not update.qualified
    assert update.lead.lead_status is LeadStatus.NEW and update.lead.score == 90


def test_a_rule_on_the_status_counts_in_the_score_stored_with_the_qualification() -> None:
    on_status = StoredRule(
        id="status-qualified",
        name="Qualified",
        category="demographic",
        field="lead_status",
        operator="equals",
        value="qualified",
        points=5,
        created_at=NOW,
        updated_at=NOW,
    )
    hot = lead(title="CTO", annual_revenue=Decimal(20_000_000))

    update = plan_rescore(
        hot, [activity("demo_requested")], None, book([on_status]), now=NOW, half_life_days=None
    )

    assert update is not None and update.qualified and update.lead.score == 95


def test_decay_halves_behavioural_points_every_half_life() -> None:
    update = plan_rescore(
        lead(), [activity("demo_requested", days_ago=30)], None, book(), now=NOW, half_life_days=30
    )

    assert update is not None
    demo = next(e for e in update.breakdown.entries if e.rule_id == "seed-activity-demo-requested")
    assert (demo.points, demo.raw_points) == (10, 20)
    assert update.lead.score == 60


def test_only_behavioural_points_that_still_count_make_a_score_time_dependent() -> None:
    with_demo = plan_rescore(lead(), [activity("demo_requested")], None, book(), now=NOW, half_life_days=30)
    without = plan_rescore(lead(), [], None, book(), now=NOW, half_life_days=30)

    assert with_demo is not None and without is not None
    assert has_decaying_points(with_demo.breakdown)
    assert not has_decaying_points(without.breakdown)


def test_scores_change_with_time_only_with_decay_or_a_window() -> None:
    windowed = StoredRule(
        id="recent-visits",
        name="Recent visits",
        category="behavioural",
        field="activity.type",
        operator="equals",
        value="page_viewed",
        points=1,
        window_days=90,
        created_at=NOW,
        updated_at=NOW,
    )

    assert not book().time_dependent
    assert book(half_life=30).time_dependent
    assert book([windowed]).time_dependent
    assert book().reads_activities


# ---------------------------------------------------------------- stream records


def image(**attributes: Any) -> dict[str, Any]:
    return {"entity": "lead", "id": "L1", "version": Decimal(2), "title": "VP", **attributes}


def test_a_new_lead_is_scored() -> None:
    assert lead_to_rescore("INSERT", image(), {}) == "L1"


def test_a_change_of_a_field_a_rule_can_read_rescores() -> None:
    assert lead_to_rescore("MODIFY", image(title="CTO"), image()) == "L1"
    assert lead_to_rescore("MODIFY", image(custom_fields={"plan": "pro"}), image(custom_fields={})) == "L1"


def test_a_change_no_rule_can_read_does_not() -> None:
    new = image(version=Decimal(3), updated_at="later", GSI1PK="OWNER#x")

    assert lead_to_rescore("MODIFY", new, image()) is None


def test_the_scoring_functions_own_score_write_is_ignored() -> None:
    own = image(version=Decimal(3), scored_version=Decimal(3), score=Decimal(50), lead_status="qualified")

    assert lead_to_rescore("MODIFY", own, image()) is None


def test_a_later_write_by_someone_else_is_seen_again() -> None:
    later = image(version=Decimal(4), scored_version=Decimal(3), title="CEO")

    assert lead_to_rescore("MODIFY", later, image(version=Decimal(3), scored_version=Decimal(3))) == "L1"


def test_new_activities_rescore_their_lead_except_the_ones_scoring_writes() -> None:
    visit = {"entity": "activity", "lead_id": "L1", "type": "page_viewed", "created_by": "user:tracker"}

    assert lead_to_rescore("INSERT", visit, {}) == "L1"
    assert lead_to_rescore("INSERT", visit | {"type": SCORE_CHANGED}, {}) is None
    assert lead_to_rescore("INSERT", visit | {"created_by": SCORING_ACTOR}, {}) is None
    assert lead_to_rescore("REMOVE", visit, {}) is None


def test_a_rule_change_names_its_revision_and_nothing_else_does() -> None:
    assert rule_set_revision("MODIFY", {"entity": "scoring_rules", "revision": Decimal(7)}) == 7
    assert rule_set_revision("MODIFY", {"entity": "score", "revision": Decimal(7)}) is None
    assert lead_to_rescore("MODIFY", {"entity": "score", "lead_id": "L1"}, {}) is None


def stream_record(event_name: str, new_image: dict[str, Any]) -> dict[str, Any]:
    """A record as Lambda's filter sees it (DynamoDB JSON)."""
    typed = {key: _serializer.serialize(value) for key, value in new_image.items()}
    return json.loads(json.dumps({"eventName": event_name, "dynamodb": {"NewImage": typed}}, default=str))


@pytest.fixture
def scoring_filters(template: Template) -> tuple[dict[str, Any], ...]:
    (mapping,) = [m for m in template.event_source_mappings if m.function_logical_id == "ScoringFunction"]
    assert mapping.report_batch_item_failures and mapping.bisect_on_error and mapping.on_failure_arn
    return mapping.filters


def test_the_stream_filter_passes_leads_activities_and_rule_changes(scoring_filters: Any) -> None:
    lead_insert = stream_record("INSERT", image(written_by="lead"))
    lead_change = stream_record("MODIFY", image(written_by="lead"))
    demo = stream_record("INSERT", {"entity": "activity", "type": "demo_requested", "created_by": "user:x"})
    rules = stream_record("MODIFY", {"entity": "scoring_rules", "revision": Decimal(2)})

    for record in (lead_insert, lead_change, demo, rules):
        assert matches_any(scoring_filters, record), record


def test_the_stream_filter_never_passes_the_scoring_functions_own_writes(scoring_filters: Any) -> None:
    score_write = stream_record("MODIFY", image(written_by="scoring", scored_version=Decimal(2)))
    score_item = stream_record("MODIFY", {"entity": "score", "lead_id": "L1"})
    changed = stream_record(
        "INSERT", {"entity": "activity", "type": SCORE_CHANGED, "created_by": SCORING_ACTOR}
    )
    qualified = stream_record(
        "INSERT", {"entity": "activity", "type": AUTO_QUALIFIED, "created_by": SCORING_ACTOR}
    )
    job = stream_record("MODIFY", {"entity": "rescore_job", "leads_done": Decimal(3)})

    for record in (score_write, score_item, changed, qualified, job):
        assert not matches_any(scoring_filters, record), record


# ---------------------------------------------------------------- jobs


def test_a_rule_change_job_covers_every_open_status_shard() -> None:
    partitions = status_partitions(4)

    assert len(partitions) == 16
    assert {p.key.split("#")[1] for p in partitions} == {"new", "contacted", "qualified", "unqualified"}


def test_job_ids_name_a_revision_or_a_day() -> None:
    assert rules_job_revision("rules-12") == 12
    assert decay_job_id(NOW) == "decay-2026-11-25"
    assert is_job_id("rules-3") and is_job_id("decay-2026-11-25")
    assert not is_job_id("rules-0") and not is_job_id("../etc")


def job(**counters: Any) -> RescoreJob:
    return RescoreJob(
        job_id="rules-2",
        reason=JobReason.RULES_CHANGED,
        state=JobState.RUNNING,
        started_at=NOW,
        started_by="rules revision 2",
        partitions=16,
        **counters,
    )


def test_progress_reads_how_many_of_how_many() -> None:
    listing = job(partitions_listed=10, leads_found=120, leads_done=40)
    listed = job(partitions_listed=16, leads_found=150, leads_done=90, leads_changed=12)
    done = job(partitions_listed=16, leads_found=150, leads_done=150, leads_changed=31)

    assert listing.progress().startswith("40 of 120 leads rescored so far")
    assert listed.progress() == "90 of 150 leads rescored (12 scores changed)"
    assert (listing.effective_state, listed.effective_state) == (JobState.RUNNING, JobState.RUNNING)
    assert done.effective_state is JobState.COMPLETED


# ---------------------------------------------------------------- inputs and settings


def test_behavioural_events_take_known_and_free_types_but_not_the_systems() -> None:
    assert RecordActivityRequest(type="webinar_attended").type == "webinar_attended"
    for bad in ("score_changed", "lead_captured", "Demo Requested", "x", "a" * 51, "1abc"):
        with pytest.raises(ValidationError) as error:
            RecordActivityRequest(type=bad)
        assert error.value.errors()[0]["loc"] == ("type",)


def test_event_ids_are_bounded_and_safe_for_a_key() -> None:
    assert RecordActivityRequest(type="email_opened", event_id="0100018c-ses@x").event_id
    for bad in ("a#b", "", "x" * 129, "with space"):
        with pytest.raises(ValidationError):
            RecordActivityRequest(type="email_opened", event_id=bad)


@pytest.mark.parametrize(("raw", "expected"), [("0", None), ("", None), ("30", 30.0), ("7.5", 7.5)])
def test_decay_is_off_unless_a_half_life_is_set(raw: str, expected: float | None) -> None:
    settings = Settings(table_name="t", score_half_life_days=raw)  # type: ignore[arg-type]

    assert settings.score_half_life_days == expected


def test_a_negative_half_life_is_refused() -> None:
    with pytest.raises(ValidationError):
        Settings(table_name="t", score_half_life_days="-1")  # type: ignore[arg-type]


def test_stream_images_read_typed_values_as_aws_writes_them() -> None:
    raw = {"id": {"S": "L1"}, "version": {"N": "3"}, "custom_fields": {"M": {}}, "tags": {"L": [{"S": "a"}]}}

    assert stream_image(raw) == {"id": "L1", "version": Decimal(3), "custom_fields": {}, "tags": ["a"]}
    assert stream_image(None) == {}
