"""The list planner: every plan holds exactly the leads the caller may see and asked for, in its keys."""

from datetime import UTC, datetime, timedelta
from typing import get_args

import pytest
from crm.api.models.queries import Grade, LeadListParams
from crm.leads.index import Sort, Stage, stage_of, stages_matching
from crm.leads.model import Lead, LeadStatus
from crm.leads.permissions import can_view
from crm.leads.repository import LeadItem
from crm.lifecycle.service import TRANSITIONS, with_status
from crm.platform.auth import Principal
from crm.platform.errors import BadQuery, Forbidden
from crm.queries.lists import (
    GRADES,
    CreatedRange,
    LeadListQuery,
    ListPlan,
    Order,
    grade_band,
    matches,
    plan_list,
)

from tests.lead_data import ADMIN, MANAGER, OTHER_REP, PRINCIPALS, REP, lead, varied_leads

SHARDS = 4
DAY = datetime(2031, 3, 1, tzinfo=UTC)
LEADS = varied_leads(600, DAY, days=10)
START, END = DAY + timedelta(days=2), DAY + timedelta(days=5)

QUERIES = {
    "everything": LeadListQuery(),
    "hottest first": LeadListQuery(sort=Sort.SCORE),
    "oldest first": LeadListQuery(order=Order.ASC),
    "new": LeadListQuery(status=LeadStatus.NEW),
    "converted status": LeadListQuery(status=LeadStatus.CONVERTED),
    "qualified": LeadListQuery(qualified=True),
    "not qualified": LeadListQuery(qualified=False),
    "converted": LeadListQuery(converted=True),
    "open": LeadListQuery(converted=False),
    "forced conversions": LeadListQuery(status=LeadStatus.CONVERTED, qualified=False),
    "new and qualified (nothing)": LeadListQuery(status=LeadStatus.NEW, qualified=True),
    "mine": LeadListQuery(owner="me"),
    "mine by score": LeadListQuery(owner="me", sort=Sort.SCORE),
    "unassigned": LeadListQuery(owner="unassigned"),
    "unassigned by score": LeadListQuery(owner="unassigned", sort=Sort.SCORE),
    "rep-1's": LeadListQuery(owner="rep-1"),
    "rep-2's": LeadListQuery(owner="rep-2"),
    "mine, contacted": LeadListQuery(owner="me", status=LeadStatus.CONTACTED),
    "unassigned, new": LeadListQuery(owner="unassigned", status=LeadStatus.NEW),
    "rep-1's, qualified": LeadListQuery(owner="rep-1", qualified=True),
    "source": LeadListQuery(source="ACME"),
    "grade B": LeadListQuery(grade="B"),
    "grade F": LeadListQuery(grade="F"),
    "grade A+": LeadListQuery(grade="A+"),
    "score 50-90": LeadListQuery(min_score=50, max_score=90),
    "grade A, at least 85": LeadListQuery(grade="A", min_score=85),
    "new, grade C": LeadListQuery(status=LeadStatus.NEW, grade="C"),
    "created range": LeadListQuery(created=CreatedRange(START, END)),
    "created from": LeadListQuery(created=CreatedRange(START, None), order=Order.ASC),
    "contacted in range": LeadListQuery(status=LeadStatus.CONTACTED, created=CreatedRange(None, END)),
}


def wanted(principal: Principal, query: LeadListQuery, subject: Lead) -> bool:
    """The filters' meaning, written out independently of the planner."""
    owner = principal.subject if query.owner == "me" else query.owner
    checks = [
        can_view(principal, subject),
        query.status is None or subject.lead_status == query.status,
        query.qualified is None or subject.qualified == query.qualified,
        query.converted is None or subject.converted == query.converted,
        owner is None
        or (subject.assigned_to is None if owner == "unassigned" else subject.assigned_to == owner),
        query.source is None or subject.lead_source.lower() == query.source.lower(),
        query.grade is None or subject.grade == query.grade,
        query.min_score is None or subject.score >= query.min_score,
        query.max_score is None or subject.score <= query.max_score,
        query.created.start is None or subject.created_at >= query.created.start,
        query.created.end is None or subject.created_at < query.created.end,
    ]
    return all(checks)


def in_plan(plan: ListPlan, subject: Lead) -> bool:
    item = LeadItem.from_lead(subject, SHARDS).model_dump()
    key, sort_key = item.get(plan.index.pk), item.get(plan.index.sk)
    if key not in plan.partitions or sort_key is None:
        return False
    return (plan.lower is None or sort_key >= plan.lower) and (plan.upper is None or sort_key <= plan.upper)


@pytest.mark.parametrize("who", sorted(PRINCIPALS))
@pytest.mark.parametrize("name", sorted(QUERIES))
def test_a_plan_holds_exactly_the_visible_matching_leads(who: str, name: str) -> None:
    principal, query = PRINCIPALS[who], QUERIES[name]
    try:
        plan = plan_list(principal, query, SHARDS)
    except BadQuery as refused:
        assert refused.problems, "a refusal names the parameters"
        return
    listed = {subject.id for subject in LEADS if in_plan(plan, subject)}
    expected = {subject.id for subject in LEADS if wanted(principal, query, subject)}
    assert listed == expected
    assert all(matches(query, subject, principal) for subject in LEADS if subject.id in listed)


def test_the_catalogue_serves_the_everyday_lists_of_every_role() -> None:
    everyday = [
        "everything",
        "hottest first",
        "new",
        "qualified",
        "converted",
        "mine",
        "unassigned",
        "grade B",
    ]
    for principal in (ADMIN, MANAGER, REP):
        for name in everyday:
            plan_list(principal, QUERIES[name], SHARDS)  # none refused


@pytest.mark.parametrize(
    ("principal", "query", "named"),
    [
        (ADMIN, LeadListQuery(source="acme", status=LeadStatus.NEW), {"source", "status"}),
        (MANAGER, LeadListQuery(source="acme"), {"source"}),
        (REP, LeadListQuery(status=LeadStatus.NEW, sort=Sort.SCORE), {"status", "sort"}),
        (ADMIN, LeadListQuery(grade="A", sort=Sort.CREATED_AT), {"grade"}),
        (ADMIN, LeadListQuery(min_score=10, max_score=20, sort=Sort.CREATED_AT), {"min_score", "max_score"}),
        (ADMIN, LeadListQuery(grade="A", created=CreatedRange(START, None)), {"created_from"}),
        (ADMIN, LeadListQuery(owner="unassigned", converted=False), {"converted"}),
        (MANAGER, LeadListQuery(owner="rep-1", status=LeadStatus.NEW), {"status"}),
        (MANAGER, LeadListQuery(owner="rep-1", sort=Sort.SCORE), {"owner", "sort"}),
    ],
)
def test_a_combination_no_index_serves_is_refused_naming_its_parameters(
    principal: Principal, query: LeadListQuery, named: set[str]
) -> None:
    with pytest.raises(BadQuery) as refused:
        plan_list(principal, query, SHARDS)
    assert {problem.field for problem in refused.value.problems} == named


def test_a_rep_asking_for_another_reps_leads_gets_an_empty_list_not_their_leads() -> None:
    plan = plan_list(REP, LeadListQuery(owner="rep-2"), SHARDS)
    assert plan.partitions == ()
    assert not [s for s in LEADS if s.assigned_to == "rep-2" and in_plan(plan, s)]
    assert plan_list(OTHER_REP, LeadListQuery(owner="me"), SHARDS).partitions == ("OWNER#rep-2",)


def test_someone_without_a_role_lists_nothing() -> None:
    with pytest.raises(Forbidden):
        plan_list(Principal("x", None, frozenset()), LeadListQuery(), SHARDS)


def test_every_state_the_lifecycle_reaches_has_a_listed_stage() -> None:
    """Stages assume `qualified` moves with the status: check it against the lifecycle's own rule."""
    start = lead(DAY)
    seen, frontier = {stage_of(start)}, [start]
    while frontier:
        current = frontier.pop()
        for target in TRANSITIONS[current.lead_status]:
            moved = with_status(current, target, DAY)
            if target is LeadStatus.CONVERTED:
                moved = moved.model_copy(update={"converted": True})
            if stage_of(moved) not in seen:
                seen.add(stage_of(moved))
                frontier.append(moved)
    forced = with_status(lead(DAY), LeadStatus.CONVERTED, DAY).model_copy(update={"converted": True})
    seen.add(stage_of(forced))
    assert seen == {stage.value for stage in Stage}


def test_flags_that_disagree_with_the_status_get_an_anomaly_key_never_a_listed_stage() -> None:
    odd = lead(DAY, status=LeadStatus.CONTACTED, qualified=True)
    assert stage_of(odd) == "contacted~q1c0"
    assert stage_of(odd) not in {stage.value for stage in stages_matching(None, None, None)}


def test_grade_bands_follow_the_scoring_thresholds_and_the_api_knows_every_grade() -> None:
    assert grade_band("A+") == (90, None)
    assert grade_band("A") == (80, 89)
    assert grade_band("F") == (0, 49)
    assert set(get_args(Grade)) == set(GRADES)


def test_an_unscored_lead_never_has_a_grade_but_counts_for_a_score_range() -> None:
    unscored = lead(DAY, graded=False, assigned_to="rep-1", team="sales")
    assert not in_plan(plan_list(REP, LeadListQuery(grade="F"), SHARDS), unscored)
    assert in_plan(plan_list(REP, LeadListQuery(min_score=0, max_score=10), SHARDS), unscored)


def test_query_parameters_read_as_a_client_sends_them() -> None:
    params = LeadListParams.model_validate(
        {
            "created_from": "2031-03-02",
            "created_to": "2031-03-02T12:00:00",
            "qualified": "false",
            "limit": "7",
        }
    )
    query = params.to_query()
    assert query.created == CreatedRange(
        datetime(2031, 3, 2, tzinfo=UTC), datetime(2031, 3, 2, 12, 0, 0, 1, tzinfo=UTC)
    )
    assert (query.qualified, query.limit, query.effective_sort()) == (False, 7, Sort.CREATED_AT)
    whole_day = LeadListParams.model_validate({"created_to": "2031-03-02"}).to_query()
    assert whole_day.created.end == datetime(2031, 3, 3, tzinfo=UTC)
    assert LeadListParams.model_validate({"grade": "A"}).to_query().effective_sort() is Sort.SCORE
    assert LeadListParams.model_validate({"q": "ada", "status": "new"}).list_parameters_sent() == ["status"]
