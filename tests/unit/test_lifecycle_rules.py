"""The status lifecycle, lead edits, BANT qualification and reading the client's version: plain rules."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import product

import pytest
from crm.api.models.lifecycle import UpdateLeadRequest, expected_version
from crm.leads.model import Lead, LeadStatus
from crm.leads.tasks import TaskKind, TaskPriority
from crm.lifecycle.service import (
    BantAnswers,
    LeadChanges,
    can_transition,
    check_transition,
    plan_qualification,
    plan_update,
    update_activities,
)
from crm.platform.auth import Principal
from crm.platform.errors import InvalidInput, InvalidTransition, PreconditionRequired

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
REP = Principal("rep-1", None, frozenset({"rep"}))
MANAGER = Principal("manager-1", None, frozenset({"manager"}))

N, C, Q, U, X = (
    LeadStatus.NEW,
    LeadStatus.CONTACTED,
    LeadStatus.QUALIFIED,
    LeadStatus.UNQUALIFIED,
    LeadStatus.CONVERTED,
)
# The lifecycle as the product describes it, written out by hand (not derived from the code's table).
ALLOWED = {
    (N, C), (N, Q), (N, U),
    (C, Q), (C, U),
    (Q, U), (Q, X),
    (U, C), (U, Q),
}  # fmt: skip


def lead(status: LeadStatus = N, **changes: object) -> Lead:
    base = Lead(
        id="lead-1",
        first_name="Ada",
        last_name="Lovelace",
        email="ada@example.com",
        company="Analytical Engines",
        lead_source="website_form",
        lead_status=status,
        assigned_to="rep-1",
        created_at=NOW - timedelta(days=1),
        updated_at=NOW - timedelta(days=1),
        version=3,
    )
    return base.model_copy(update=changes)


@pytest.mark.parametrize(("current", "target"), list(product(LeadStatus, LeadStatus)))
def test_the_transition_table(current: LeadStatus, target: LeadStatus) -> None:
    expected = current == target or (current, target) in ALLOWED
    assert can_transition(current, target) is expected
    if expected:
        check_transition(current, target)
    else:
        with pytest.raises(InvalidTransition, match=f"cannot become {target.value}"):
            check_transition(current, target)


def test_converted_is_final_and_says_so() -> None:
    with pytest.raises(InvalidTransition, match="none: it is final"):
        check_transition(X, C)


def test_a_same_status_edit_is_a_no_op_not_an_error() -> None:
    for status in LeadStatus:
        plan = plan_update(lead(status), LeadChanges(status=status), NOW)
        assert not plan.changed
        assert plan.lead == lead(status)


def test_contacting_a_new_lead_changes_its_status_and_records_old_and_new() -> None:
    plan = plan_update(lead(N), LeadChanges(status=C), NOW)

    assert plan.lead.lead_status is C
    assert plan.lead.updated_at == NOW
    activities = update_activities(plan, REP.actor, NOW)
    assert [(a.type, a.data, a.created_by) for a in activities] == [
        ("status_changed", {"old": "new", "new": "contacted"}, "user:rep-1")
    ]


def test_reopening_an_unqualified_lead_makes_it_contacted_again() -> None:
    plan = plan_update(lead(U), LeadChanges(status=C), NOW)
    assert (plan.lead.lead_status, plan.lead.qualified) == (C, False)


def test_disqualifying_a_qualified_lead_clears_its_qualification() -> None:
    qualified = lead(Q, qualified=True, qualified_at=NOW - timedelta(hours=2))
    plan = plan_update(qualified, LeadChanges(status=U), NOW)
    assert (plan.lead.qualified, plan.lead.qualified_at) == (False, None)


@pytest.mark.parametrize(("target", "route"), [(Q, "qualify"), (X, "convert")])
def test_qualified_and_converted_have_their_own_routes(target: LeadStatus, route: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        plan_update(lead(C), LeadChanges(status=target), NOW)
    assert raised.value.problems[0].field == "lead_status"
    assert f"/leads/{{id}}/{route}" in raised.value.problems[0].message


def test_nothing_goes_back_to_new() -> None:
    with pytest.raises(InvalidTransition):
        plan_update(lead(C), LeadChanges(status=N), NOW)


def test_field_edits_record_each_old_and_new_value() -> None:
    plan = plan_update(
        lead(C),
        LeadChanges(fields={"phone": "+1 555 0100", "company": None, "annual_revenue": Decimal("1000.50")}),
        NOW,
    )

    assert plan.changes == {
        "phone": (None, "+1 555 0100"),
        "company": ("Analytical Engines", None),
        "annual_revenue": (None, Decimal("1000.50")),
    }
    assert plan.status_change is None
    (activity,) = update_activities(plan, REP.actor, NOW)
    assert activity.type == "lead_updated"
    assert activity.data["changes"]["company"] == {"old": "Analytical Engines", "new": None}
    assert plan.email_move is None


def test_an_unchanged_value_is_not_a_change() -> None:
    plan = plan_update(
        lead(C), LeadChanges(fields={"first_name": "Ada", "company": "Analytical Engines"}), NOW
    )
    assert not plan.changed


def test_a_new_email_is_an_email_move() -> None:
    plan = plan_update(lead(C), LeadChanges(fields={"email": "ada@engines.example"}), NOW)
    assert plan.email_move is not None
    assert (plan.email_move.old, plan.email_move.new) == ("ada@example.com", "ada@engines.example")


def test_a_rep_records_that_the_person_asked_for_no_email_and_can_undo_it() -> None:
    opted_out = plan_update(lead(C), LeadChanges(fields={"do_not_email": True}), NOW)
    assert opted_out.lead.do_not_email and opted_out.lead.do_not_email_reason == "requested"
    assert opted_out.lead.do_not_email_at == NOW
    (activity,) = update_activities(opted_out, REP.actor, NOW)
    assert activity.data["changes"]["do_not_email"] == {"old": False, "new": True}

    later = NOW + timedelta(days=3)
    opted_in = plan_update(opted_out.lead, LeadChanges(fields={"do_not_email": False}), later)
    assert not opted_in.lead.do_not_email
    assert (opted_in.lead.do_not_email_reason, opted_in.lead.do_not_email_at) == (None, None)
    with pytest.raises(ValueError, match="boolean"):
        UpdateLeadRequest.model_validate({"do_not_email": "yes"})


def test_required_fields_cannot_be_removed() -> None:
    with pytest.raises(InvalidInput, match="last_name"):
        plan_update(lead(C), LeadChanges(fields={"last_name": None}), NOW)


def test_the_patch_body_distinguishes_absent_from_null() -> None:
    request = UpdateLeadRequest.model_validate({"phone": None, "title": "CTO", "version": 3})
    changes = request.to_changes()
    assert changes.fields == {"phone": None, "title": "CTO"}
    assert changes.status is None


@pytest.mark.parametrize("field", ["first_name", "email", "lead_status", "do_not_email"])
def test_the_patch_body_refuses_null_for_required_fields(field: str) -> None:
    with pytest.raises(ValueError, match="cannot be null"):
        UpdateLeadRequest.model_validate({field: None})


# ---------------------------------------------------------------- BANT


@pytest.mark.parametrize(("budget", "authority", "need", "timeline"), list(product([True, False], repeat=4)))
def test_only_all_four_bant_answers_qualify(
    budget: bool, authority: bool, need: bool, timeline: bool
) -> None:
    answers = BantAnswers(budget, authority, need, timeline)

    plan = plan_qualification(lead(C), answers, REP, NOW)

    everything = budget and authority and need and timeline
    assert plan.lead.lead_status is (Q if everything else U)
    assert plan.lead.qualified is everything
    assert plan.lead.qualified_at == (NOW if everything else None)
    assert plan.lead.custom_fields["bant"] | {"answered_at": None} == {
        "has_budget": budget,
        "has_authority": authority,
        "has_need": need,
        "has_timeline": timeline,
        "notes": None,
        "answered_by": "user:rep-1",
        "answered_at": None,
    }
    assert (plan.task is not None) is everything
    missing = [
        n
        for n, v in zip(("budget", "authority", "need", "timeline"), answers_of(answers), strict=True)
        if not v
    ]
    assert answers.missing == missing


def answers_of(answers: BantAnswers) -> tuple[bool, bool, bool, bool]:
    return answers.has_budget, answers.has_authority, answers.has_need, answers.has_timeline


def test_qualifying_makes_a_high_priority_discovery_call_for_the_leads_rep_due_in_a_day() -> None:
    plan = plan_qualification(
        lead(C, assigned_to="rep-7"), BantAnswers(True, True, True, True, "ok"), MANAGER, NOW
    )

    task = plan.task
    assert task is not None
    assert (task.title, task.priority, task.kind) == (
        "Schedule discovery call",
        TaskPriority.HIGH,
        TaskKind.DISCOVERY_CALL.value,
    )
    assert task.due_at == NOW + timedelta(hours=24)
    assert (task.owner, task.lead_id, task.created_by) == ("rep-7", "lead-1", "user:manager-1")
    (activity,) = plan.activities
    assert activity.type == "lead_qualified"
    assert activity.data["task_id"] == task.id
    assert activity.data["status"] == {"old": "contacted", "new": "qualified"}


def test_an_unassigned_leads_discovery_call_goes_to_whoever_qualified_it() -> None:
    plan = plan_qualification(lead(N, assigned_to=None), BantAnswers(True, True, True, True), MANAGER, NOW)
    assert plan.task is not None and plan.task.owner == "manager-1"


def test_qualifying_a_qualified_lead_again_keeps_its_date_and_makes_no_second_task() -> None:
    earlier = NOW - timedelta(hours=5)
    plan = plan_qualification(
        lead(Q, qualified=True, qualified_at=earlier), BantAnswers(True, True, True, True), REP, NOW
    )
    assert plan.task is None
    assert plan.lead.qualified_at == earlier


def test_a_converted_lead_cannot_be_qualified_again() -> None:
    with pytest.raises(InvalidTransition):
        plan_qualification(lead(X, converted=True), BantAnswers(True, True, True, True), REP, NOW)


def test_a_failed_qualification_says_what_was_missing() -> None:
    plan = plan_qualification(lead(C), BantAnswers(True, False, True, False), REP, NOW)
    (activity,) = plan.activities
    assert activity.type == "lead_unqualified"
    assert activity.description == "Not qualified: no authority, no timeline"


# ---------------------------------------------------------------- If-Match / version


@pytest.mark.parametrize("header", ['"3"', "3", 'W/"3"', ' "3" '])
def test_if_match_accepts_the_usual_spellings(header: str) -> None:
    assert expected_version({"If-Match": header}, None) == 3


def test_the_version_may_come_in_the_body_or_in_both_when_they_agree() -> None:
    assert expected_version({}, 4) == 4
    assert expected_version({"if-match": '"4"'}, 4) == 4


def test_a_header_and_body_that_disagree_are_refused_naming_version() -> None:
    with pytest.raises(InvalidInput) as raised:
        expected_version({"If-Match": '"4"'}, 5)
    assert raised.value.problems[0].field == "version"


@pytest.mark.parametrize("header", ["*", '"abc"', "W/", '"0"', "3, 4"])
def test_an_unreadable_if_match_is_refused_naming_it(header: str) -> None:
    with pytest.raises(InvalidInput) as raised:
        expected_version({"If-Match": header}, None)
    assert raised.value.problems[0].field == "If-Match"


def test_no_version_at_all_is_a_precondition_required_naming_version() -> None:
    with pytest.raises(PreconditionRequired) as raised:
        expected_version({"Content-Type": "application/json"}, None)
    assert [p.field for p in raised.value.problems] == ["version", "If-Match"]
