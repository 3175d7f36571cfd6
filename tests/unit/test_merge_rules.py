import json
from datetime import UTC, datetime
from decimal import Decimal

from crm.leads.model import Channel, LeadStatus, LeadSubmission, new_lead, plan_merge
from crm.platform.fields import CUSTOM_FIELDS_MAX_BYTES

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


def submission(**overrides: object) -> LeadSubmission:
    values: dict = {
        "channel": Channel.WEBSITE_FORM,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "lead_source": "website_form",
        "submitted_by": "website_form",
    }
    values.update(overrides)
    return LeadSubmission(**values)


def test_empty_fields_are_filled_from_a_repeat_submission() -> None:
    lead = new_lead(submission(), NOW)
    plan = plan_merge(lead, submission(company="Analytical Engines", employee_count=12), NOW)
    assert plan.changes == {"company": (None, "Analytical Engines"), "employee_count": (None, 12)}


def test_a_value_is_never_overwritten_and_the_difference_is_kept_for_the_timeline() -> None:
    lead = new_lead(submission(company="Analytical Engines", phone="+44 1"), NOW)
    plan = plan_merge(lead, submission(company="Babbage Ltd", phone=None), NOW)
    assert plan.changes == {}
    assert plan.kept == {"company": ("Analytical Engines", "Babbage Ltd")}


def test_an_empty_value_never_blanks_a_field() -> None:
    lead = new_lead(submission(title="Countess"), NOW)
    assert plan_merge(lead, submission(title="   "), NOW).changes == {}


def test_the_first_source_is_kept() -> None:
    lead = new_lead(submission(lead_source="website_form"), NOW)
    plan = plan_merge(lead, submission(channel=Channel.PARTNER_WEBHOOK, lead_source="acme"), NOW)
    assert "lead_source" not in plan.changes


def test_custom_fields_gain_new_keys_only() -> None:
    lead = new_lead(submission(custom_fields={"utm_source": "ads"}), NOW)
    plan = plan_merge(lead, submission(custom_fields={"utm_source": "mail", "plan": "pro"}), NOW)
    assert plan.changes["custom_fields"][1] == {"utm_source": "ads", "plan": "pro"}
    assert plan.kept == {"custom_fields.utm_source": ("ads", "mail")}


def test_a_repeat_submission_never_changes_the_status_whatever_the_channel() -> None:
    # A chat started with someone else's address must not move their lead on (that would stop its
    # speed-to-lead clock).
    fresh = new_lead(submission(), NOW)
    for channel in Channel:
        assert "lead_status" not in plan_merge(fresh, submission(channel=channel), NOW).changes


def test_new_custom_fields_are_added_only_while_the_whole_fits() -> None:
    lead = new_lead(submission(custom_fields={"utm_source": "ads"}), NOW)
    for round_ in range(100):
        sent = {f"field_{round_}_{n}": "x" * 150 for n in range(5)}
        plan = plan_merge(lead, submission(custom_fields=sent), NOW)
        if "custom_fields" in plan.changes:
            lead = lead.model_copy(update={"custom_fields": plan.changes["custom_fields"][1]})
    size = len(json.dumps(lead.custom_fields).encode())
    assert CUSTOM_FIELDS_MAX_BYTES - 200 < size <= CUSTOM_FIELDS_MAX_BYTES
    assert lead.custom_fields["utm_source"] == "ads"
    full = plan_merge(lead, submission(custom_fields={"one_more": "x" * 300, "utm_source": "mail"}), NOW)
    assert "custom_fields" not in full.changes
    assert full.dropped_custom_fields == ("one_more",)
    assert full.kept == {"custom_fields.utm_source": ("ads", "mail")}


def test_a_small_new_field_still_fits_after_a_large_one_is_dropped() -> None:
    lead = new_lead(submission(custom_fields={"notes": "y" * (CUSTOM_FIELDS_MAX_BYTES - 100)}), NOW)
    plan = plan_merge(lead, submission(custom_fields={"big": "z" * 500, "plan": "pro"}), NOW)
    assert plan.dropped_custom_fields == ("big",)
    assert plan.changes["custom_fields"][1]["plan"] == "pro"


def test_the_latest_stated_marketing_consent_counts_and_silence_changes_nothing() -> None:
    lead = new_lead(submission(marketing_consent=True), NOW)
    assert lead.marketing_consent is not None
    assert (lead.marketing_consent.given, lead.marketing_consent.channel) == (True, "website_form")
    assert lead.marketing_consent.recorded_by == "website_form"
    assert "marketing_consent" not in plan_merge(lead, submission(), NOW).changes
    assert "marketing_consent" not in plan_merge(lead, submission(marketing_consent=True), NOW).changes
    withdrawn = plan_merge(lead, submission(channel=Channel.LIVE_CHAT, marketing_consent=False), NOW)
    old, new = withdrawn.changes["marketing_consent"]
    assert (old.given, new.given, new.channel) == (True, False, "live_chat")
    assert new_lead(submission(), NOW).marketing_consent is None


def test_new_leads_start_by_channel() -> None:
    assert new_lead(submission(), NOW).lead_status is LeadStatus.NEW
    assert new_lead(submission(channel=Channel.LIVE_CHAT), NOW).lead_status is LeadStatus.CONTACTED
    assert new_lead(submission(annual_revenue=Decimal("10.50")), NOW).annual_revenue == Decimal("10.50")
