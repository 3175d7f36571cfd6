from datetime import UTC, datetime
from decimal import Decimal

from crm.leads.model import Channel, LeadStatus, LeadSubmission, new_lead, plan_merge

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
    plan = plan_merge(lead, submission(company="Analytical Engines", employee_count=12))
    assert plan.changes == {"company": (None, "Analytical Engines"), "employee_count": (None, 12)}


def test_a_value_is_never_overwritten_and_the_difference_is_kept_for_the_timeline() -> None:
    lead = new_lead(submission(company="Analytical Engines", phone="+44 1"), NOW)
    plan = plan_merge(lead, submission(company="Babbage Ltd", phone=None))
    assert plan.changes == {}
    assert plan.kept == {"company": ("Analytical Engines", "Babbage Ltd")}


def test_an_empty_value_never_blanks_a_field() -> None:
    lead = new_lead(submission(title="Countess"), NOW)
    assert plan_merge(lead, submission(title="   ")).changes == {}


def test_the_first_source_is_kept() -> None:
    lead = new_lead(submission(lead_source="website_form"), NOW)
    plan = plan_merge(lead, submission(channel=Channel.PARTNER_WEBHOOK, lead_source="acme"))
    assert "lead_source" not in plan.changes


def test_custom_fields_gain_new_keys_only() -> None:
    lead = new_lead(submission(custom_fields={"utm_source": "ads"}), NOW)
    plan = plan_merge(lead, submission(custom_fields={"utm_source": "mail", "plan": "pro"}))
    assert plan.changes["custom_fields"][1] == {"utm_source": "ads", "plan": "pro"}
    assert plan.kept == {"custom_fields.utm_source": ("ads", "mail")}


def test_a_chat_moves_a_new_lead_to_contacted_but_never_backwards() -> None:
    fresh = new_lead(submission(), NOW)
    assert plan_merge(fresh, submission(channel=Channel.LIVE_CHAT)).changes["lead_status"] == (
        LeadStatus.NEW,
        LeadStatus.CONTACTED,
    )
    qualified = fresh.model_copy(update={"lead_status": LeadStatus.QUALIFIED})
    assert "lead_status" not in plan_merge(qualified, submission(channel=Channel.LIVE_CHAT)).changes


def test_new_leads_start_by_channel() -> None:
    assert new_lead(submission(), NOW).lead_status is LeadStatus.NEW
    assert new_lead(submission(channel=Channel.LIVE_CHAT), NOW).lead_status is LeadStatus.CONTACTED
    assert new_lead(submission(annual_revenue=Decimal("10.50")), NOW).annual_revenue == Decimal("10.50")
