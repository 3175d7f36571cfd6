"""Nurture sequences as rules: validation, which sequence takes a lead, step planning, what stops a lead."""

import time
from datetime import timedelta
from typing import Any

import pytest
from crm.nurture.sequences import (
    CompiledSequences,
    EnrollmentState,
    NurtureSequenceInput,
    StopReason,
    advance,
    default_nurture_sequence,
    enroll,
    parse_step_event_id,
    step_event_id,
    stop,
    stop_reason,
)
from crm.nurture.service import NurtureSequenceService, field_name, invalid_sequence
from crm.platform.auth import Principal
from crm.platform.errors import InvalidInput
from pydantic import ValidationError

from devstack.template import Template
from tests.assignment_support import lead_model
from tests.nurture_support import NOW, InMemoryTemplates, sequence, simple_template

MANAGER = Principal(subject="m-1", email=None, groups=frozenset({"manager"}))
REP = Principal(subject="r-1", email=None, groups=frozenset({"rep"}))


def problems(body: dict[str, Any]) -> dict[str, str]:
    try:
        NurtureSequenceInput.model_validate(body)
    except ValidationError as exc:
        return {p.field: p.message for p in invalid_sequence(exc).problems}
    return {}


VALID = {"name": "Webinar", "steps": [{"delay_hours": 0, "template": "welcome"}]}


# ---------------------------------------------------------------- validation


def test_a_valid_sequence_has_no_problems_and_defaults_to_active_priority_100() -> None:
    definition = NurtureSequenceInput.model_validate(VALID)

    assert problems(VALID) == {}
    assert definition.active is True and definition.priority == 100 and definition.conditions == []


def test_a_sequence_needs_at_least_one_step() -> None:
    assert set(problems({**VALID, "steps": []})) == {"steps"}
    assert set(problems({"name": "No steps"})) == {"steps"}


def test_step_fields_are_named_with_their_index() -> None:
    found = problems(
        {
            "name": "Bad steps",
            "steps": [
                {"delay_hours": 1, "template": "ok"},
                {"delay_hours": -1, "template": "bad name!"},
                {"delay_hours": 1, "template": "ok", "subject": "extra"},
            ],
        }
    )

    assert set(found) == {"steps[1].delay_hours", "steps[1].template", "steps[2].subject"}
    assert found["steps[2].subject"] == "unknown field"


def test_delays_are_bounded_to_a_year_and_conditions_use_rule_operators() -> None:
    found = problems(
        {
            **VALID,
            "steps": [{"delay_hours": 24 * 366, "template": "welcome"}],
            "conditions": [{"field": "favourite_colour", "operator": "equals", "value": "red"}],
        }
    )

    assert set(found) == {"steps[0].delay_hours", "conditions[0].field"}


def test_field_names_turn_list_indexes_into_brackets() -> None:
    assert field_name("steps.0.template") == "steps[0].template"
    assert field_name("conditions.12.value") == "conditions[12].value"
    assert field_name("name") == "name"


def test_saving_a_sequence_whose_template_ses_does_not_have_names_that_step() -> None:
    service = NurtureSequenceService(nurture=None, templates=InMemoryTemplates(simple_template("welcome")))  # type: ignore[arg-type]
    definition = NurtureSequenceInput.model_validate(
        {
            "name": "Two steps",
            "steps": [
                {"delay_hours": 1, "template": "welcome"},
                {"delay_hours": 24, "template": "no-such-template"},
            ],
        }
    )

    with pytest.raises(InvalidInput) as raised:
        service.create(definition, MANAGER)

    assert [(p.field, p.message) for p in raised.value.problems] == [
        ("steps[1].template", "no SES email template is named no-such-template")
    ]


def test_a_template_using_handlebars_helpers_is_refused_when_the_sequence_is_saved() -> None:
    broken = simple_template("helpers")
    broken = broken.__class__(broken.name, "Hi {{#if company}}x{{/if}}", broken.html, broken.text)
    service = NurtureSequenceService(nurture=None, templates=InMemoryTemplates(broken))  # type: ignore[arg-type]

    with pytest.raises(InvalidInput) as raised:
        service.create(
            NurtureSequenceInput.model_validate(
                {**VALID, "steps": [{"delay_hours": 1, "template": "helpers"}]}
            ),
            MANAGER,
        )

    (problem,) = raised.value.problems
    assert problem.field == "steps[0].template" and "Handlebars" in problem.message


def test_only_managers_and_admins_change_sequences() -> None:
    from crm.platform.errors import Forbidden

    service = NurtureSequenceService(nurture=None, templates=InMemoryTemplates())  # type: ignore[arg-type]

    with pytest.raises(Forbidden):
        service.create(NurtureSequenceInput.model_validate(VALID), REP)


# ---------------------------------------------------------------- which sequence takes a lead


def test_the_first_active_matching_sequence_by_priority_takes_the_lead() -> None:
    webinar = sequence(
        priority=5, conditions=[{"field": "lead_source", "operator": "equals", "value": "webinar"}]
    )
    inactive = sequence(priority=1, active=False)
    everyone = sequence(priority=1000)
    tech = sequence(
        priority=10, conditions=[{"field": "industry", "operator": "equals", "value": "Technology"}]
    )
    compiled = CompiledSequences([everyone, inactive, tech, webinar])

    assert compiled.first_match(lead_model(lead_source="webinar")) == webinar
    assert compiled.first_match(lead_model(lead_source="website_form")) == tech
    assert compiled.first_match(lead_model(industry="Retail")) == everyone


def test_no_sequence_matches_when_none_is_active_or_every_condition_fails() -> None:
    only = sequence(conditions=[{"field": "custom_fields.plan", "operator": "equals", "value": "pro"}])

    assert CompiledSequences([only]).first_match(lead_model(custom_fields={"plan": "free"})) is None
    assert CompiledSequences([only]).first_match(lead_model(custom_fields={"plan": "pro"})) == only
    assert CompiledSequences([sequence(active=False)]).first_match(lead_model()) is None


# ---------------------------------------------------------------- planning


def test_step_one_is_due_its_delay_after_enrollment_and_each_next_after_the_previous_send() -> None:
    three = sequence((1, "welcome"), (72, "resources"), (168, "check-in"))

    enrollment = enroll("lead-1", three, NOW)
    assert enrollment.state is EnrollmentState.ACTIVE and enrollment.next_step == 0
    assert enrollment.next_due_at == NOW + timedelta(hours=1)
    assert enrollment.pending is not None and enrollment.pending.template == "welcome"

    sent_late = NOW + timedelta(hours=5)  # the first step went out late: the second counts from then
    second = advance(enrollment, sent_late)
    assert second.next_step == 1 and second.next_due_at == sent_late + timedelta(hours=72)
    assert second.last_sent_at == sent_late

    third = advance(second, sent_late + timedelta(hours=72))
    finished = advance(third, sent_late + timedelta(hours=240))
    assert third.next_step == 2 and third.pending is not None and third.pending.template == "check-in"
    assert finished.state is EnrollmentState.FINISHED and finished.next_due_at is None
    assert finished.pending is None and finished.next_step == 3


def test_an_enrollment_keeps_the_steps_it_was_enrolled_with() -> None:
    original = sequence((1, "welcome"), (24, "resources"))
    enrollment = enroll("lead-1", original, NOW)

    original.steps[1].delay_hours = 999  # an edit of the sequence afterwards

    assert enrollment.steps[1].delay_hours == 24
    assert enrollment.sequence_version == original.version


def test_stopping_clears_the_due_time_and_keeps_the_reason() -> None:
    stopped = stop(enroll("lead-1", sequence(), NOW), StopReason.UNSUBSCRIBED, NOW)

    assert stopped.state is EnrollmentState.STOPPED and stopped.stop_reason is StopReason.UNSUBSCRIBED
    assert stopped.next_due_at is None and stopped.pending is None and stopped.ended_at == NOW


def test_step_event_ids_name_the_enrollment_and_the_step() -> None:
    enrollment_id = "0b5e8f2a-3c4d-4e6f-8a9b-1c2d3e4f5a6b"

    assert parse_step_event_id(step_event_id(enrollment_id, 2)) == (enrollment_id, 2)
    for bad in ("assigned:x:y", f"nurture:{enrollment_id}", f"nurture:{enrollment_id}:-1", "nurture:abc:1"):
        with pytest.raises(ValueError):
            parse_step_event_id(bad)


# ---------------------------------------------------------------- what stops a lead


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        ({}, None),
        ({"converted": True}, StopReason.CONVERTED),
        ({"assigned_to": "rep-1"}, StopReason.ASSIGNED),
        ({"do_not_email": True, "do_not_email_reason": "unsubscribed"}, StopReason.UNSUBSCRIBED),
        ({"do_not_email": True, "do_not_email_reason": "bounced"}, StopReason.BOUNCED),
        ({"do_not_email": True, "do_not_email_reason": "complained"}, StopReason.COMPLAINED),
        ({"do_not_email": True}, StopReason.DO_NOT_EMAIL),
        ({"score": 70, "grade": "B"}, StopReason.SALES_READY),
        ({"score": 69, "grade": "C"}, None),
        ({"score": 90, "grade": None}, None),  # not scored yet: no grade
        ({"converted": True, "do_not_email": True}, StopReason.CONVERTED),
    ],
)
def test_what_takes_a_lead_out_of_nurture(fields: dict[str, Any], reason: StopReason | None) -> None:
    lead = lead_model(score=fields.pop("score", 20), grade=fields.pop("grade", "F"), **fields)

    assert stop_reason(lead.model_dump(), sales_threshold=70) == reason


def test_an_empty_stream_image_has_no_stop_reason() -> None:
    assert stop_reason({}, 70) is None


@pytest.mark.parametrize(
    ("consent", "reason"),
    [
        (None, StopReason.NO_CONSENT),  # never asked
        (
            {"given": False, "at": "2026-12-01T00:00:00Z", "channel": "api", "recorded_by": "x"},
            StopReason.NO_CONSENT,
        ),
        ({"given": True, "at": "2026-12-01T00:00:00Z", "channel": "api", "recorded_by": "x"}, None),
    ],
)
def test_when_consent_is_required_only_people_who_gave_it_are_nurtured(
    consent: dict[str, Any] | None, reason: StopReason | None
) -> None:
    lead = lead_model(score=20, grade="F", marketing_consent=consent).model_dump()
    assert stop_reason(lead, 70, requires_consent=True) == reason
    assert stop_reason(lead, 70, requires_consent=False) is None
    # A stream image holds the consent as a map too.
    image = {**lead, "marketing_consent": consent}
    assert stop_reason(image, 70, requires_consent=True) == reason


# ---------------------------------------------------------------- the default sequence


def test_the_default_sequence_uses_the_templates_template_yaml_declares(template: Template) -> None:
    default = default_nurture_sequence(NOW, "dev")
    declared = {t.name: t for t in template.email_templates}

    assert [step.delay_hours for step in default.steps] == [1, 72, 168]
    assert default.active and default.conditions == []
    for step in default.steps:
        assert step.template in declared, step.template
        assert "{{unsubscribe_url}}" in declared[step.template].html
        assert "{{unsubscribe_url}}" in declared[step.template].text


@pytest.mark.parametrize("pattern", [r"(a|a)*b", r"(a|aa)*b", r"\w*\w*\w*\w*\w*\w*x"])
def test_a_regex_condition_that_backtracks_elsewhere_is_matched_in_milliseconds(pattern: str) -> None:
    only = sequence(conditions=[{"field": "custom_fields.notes", "operator": "regex", "value": pattern}])
    NurtureSequenceInput.model_validate(
        {"name": "n", "steps": [{"delay_hours": 1, "template": "welcome"}], "conditions": only.conditions}
    )

    started = time.perf_counter()
    chosen = CompiledSequences([only]).first_match(lead_model(custom_fields={"notes": "a" * 254 + "!"}))
    elapsed = time.perf_counter() - started

    assert chosen is None
    assert elapsed < 0.05
