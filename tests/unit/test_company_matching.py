"""Company matching and the conversion rules: normalised names, email domains, what a conversion plans."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from crm.conversion.model import (
    Company,
    Contact,
    ConversionOptions,
    Lookup,
    check_convertible,
    company_domain,
    company_keys,
    default_deal_name,
    matched_company,
    normalise_company_name,
    plan_conversion,
)
from crm.leads.model import Lead, LeadStatus
from crm.platform.auth import Principal
from crm.platform.errors import Forbidden, InvalidInput, InvalidTransition, NotQualified

NOW = datetime(2026, 11, 25, 9, 30, tzinfo=UTC)
REP = Principal("rep-1", None, frozenset({"rep"}))
MANAGER = Principal("manager-1", None, frozenset({"manager"}))
ADMIN = Principal("admin-1", None, frozenset({"admin"}))


@pytest.mark.parametrize(
    ("name", "normalised"),
    [
        ("Acme Widgets", "acme widgets"),
        ("ACME Widgets, Inc.", "acme widgets"),
        ("Acme-Widgets Ltd", "acme widgets"),
        ("The Acme Widgets Company", "acme widgets"),
        ("Acme Widgets L.L.C.", "acme widgets"),
        ("Acme Widgets GmbH & Co. KG", "acme widgets"),
        ("  acme   widgets  limited ", "acme widgets"),
        ("Société Générale S.A.", "societe generale"),
        ("Procter & Gamble", "procter and gamble"),
        ("Limited", "limited"),  # a name that is only a suffix stays itself
        ("The", "the"),
        ("Inc Ltd", "inc"),
        ("!!!", None),
        ("", None),
        (None, None),
    ],
)
def test_company_names_are_normalised_for_matching(name: str | None, normalised: str | None) -> None:
    assert normalise_company_name(name) == normalised


@pytest.mark.parametrize(
    ("email", "domain"),
    [
        ("ada@Acme.COM", "acme.com"),
        ("ada@eu.acme.com", "eu.acme.com"),
        ("ada@gmail.com", None),
        ("ada@outlook.com", None),
        ("ada@yahoo.com", None),
        ("ada@hotmail.com", None),
        ("ada@icloud.com", None),
        ("ada@proton.me", None),
        ("not-an-email", None),
        (None, None),
    ],
)
def test_the_company_domain_comes_from_the_email_and_never_from_free_mail(
    email: str | None, domain: str | None
) -> None:
    assert company_domain(email) == domain


def test_keys_are_domain_first_then_name() -> None:
    assert company_keys("Acme Widgets, Inc.", "ada@acme.com") == ["domain:acme.com", "name:acme widgets"]
    assert company_keys("Acme Widgets, Inc.", "ada@gmail.com") == ["name:acme widgets"]
    assert company_keys(None, "ada@acme.com") == ["domain:acme.com"]


def test_the_domain_match_wins_over_the_name_match() -> None:
    keys = ["domain:acme.com", "name:acme widgets"]
    assert matched_company(keys, {"name:acme widgets": "by-name", "domain:acme.com": "by-domain"}) == (
        "by-domain",
        "domain:acme.com",
    )
    assert matched_company(keys, {"name:acme widgets": "by-name"}) == ("by-name", "name:acme widgets")
    assert matched_company(keys, {}) == (None, None)


# ---------------------------------------------------------------- what a conversion plans


def lead(status: LeadStatus = LeadStatus.QUALIFIED, **changes: object) -> Lead:
    base = Lead(
        id="lead-1",
        first_name="Grace",
        last_name="Hopper",
        email="grace@acme.com",
        phone="+1 555 0100",
        title="Rear Admiral",
        company="ACME Widgets, Inc.",
        industry="Technology",
        employee_count=250,
        annual_revenue=Decimal("5000000"),
        lead_source="api",
        lead_status=status,
        qualified=status is LeadStatus.QUALIFIED,
        assigned_to="rep-1",
        team="sales",
        created_at=NOW,
        updated_at=NOW,
        version=4,
    )
    return base.model_copy(update=changes)


def test_a_new_company_is_created_and_claims_both_keys() -> None:
    plan = plan_conversion(lead(), ConversionOptions(), Lookup(key_owners={}), REP, now=NOW, forced=False)

    assert plan.company is not None
    assert (plan.company.name, plan.company.domain) == ("ACME Widgets, Inc.", "acme.com")
    assert plan.company_keys_to_claim == ("domain:acme.com", "name:acme widgets")
    assert plan.lead.company_id == plan.company.id
    assert plan.existing_company_id is None


def test_an_existing_company_is_attached_and_its_missing_key_claimed() -> None:
    lookup = Lookup(key_owners={"name:acme widgets": "company-9"})

    plan = plan_conversion(lead(), ConversionOptions(), lookup, REP, now=NOW, forced=False)

    assert plan.company is None
    assert plan.existing_company_id == "company-9"
    assert plan.company_keys_to_claim == ("domain:acme.com",)
    assert plan.contact is not None and plan.contact.company_id == "company-9"
    assert plan.deal is not None and plan.deal.company_id == "company-9"
    assert plan.activity.data["company"] == "matched by name:acme widgets"


def test_the_contact_and_deal_come_from_the_lead_and_belong_to_its_rep() -> None:
    plan = plan_conversion(
        lead(), ConversionOptions(amount=Decimal("1200.50")), Lookup({}), MANAGER, now=NOW, forced=False
    )

    contact, deal = plan.contact, plan.deal
    assert contact is not None and deal is not None
    assert (contact.first_name, contact.last_name, contact.email, contact.phone, contact.title) == (
        "Grace",
        "Hopper",
        "grace@acme.com",
        "+1 555 0100",
        "Rear Admiral",
    )
    assert (contact.owner, deal.owner, contact.team) == ("rep-1", "rep-1", "sales")
    assert (deal.name, deal.stage.value, deal.amount) == (
        "ACME Widgets, Inc. - Opportunity",
        "qualification",
        Decimal("1200.50"),
    )
    converted = plan.lead
    assert (converted.lead_status, converted.converted, converted.converted_at) == (
        LeadStatus.CONVERTED,
        True,
        NOW,
    )
    assert (converted.contact_id, converted.deal_id) == (contact.id, deal.id)
    assert plan.expected_version == 4


def test_the_deal_is_named_after_the_last_name_without_a_company() -> None:
    assert default_deal_name(None, "Hopper") == "Hopper - Opportunity"
    plan = plan_conversion(lead(company=None), ConversionOptions(), Lookup({}), REP, now=NOW, forced=False)
    assert plan.company is None and plan.lead.company_id is None
    assert plan.deal is not None and plan.deal.name == "Hopper - Opportunity"


def test_no_opportunity_means_no_deal() -> None:
    plan = plan_conversion(
        lead(), ConversionOptions(create_opportunity=False), Lookup({}), REP, now=NOW, forced=False
    )
    assert plan.deal is None and plan.lead.deal_id is None


def test_an_unassigned_leads_records_belong_to_whoever_converts_it() -> None:
    plan = plan_conversion(
        lead(assigned_to=None), ConversionOptions(), Lookup({}), MANAGER, now=NOW, forced=True
    )
    assert plan.contact is not None and plan.contact.owner == "manager-1"
    assert plan.activity.data["forced"] is True


def test_attaching_to_a_given_company_and_contact_creates_neither() -> None:
    company = Company(id="c-1", name="Acme", created_by="x", created_at=NOW, updated_at=NOW)
    contact = Contact(
        id="p-1", first_name="G", last_name="H", email="g@h.co", owner="rep-1", created_by="x",
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    options = ConversionOptions(company_id="c-1", contact_id="p-1")

    plan = plan_conversion(lead(), options, Lookup({}, company, contact), REP, now=NOW, forced=False)

    assert (plan.company, plan.contact) == (None, None)
    assert (plan.existing_company_id, plan.existing_contact_id) == ("c-1", "p-1")
    assert plan.company_keys_to_claim == ()
    assert (plan.lead.company_id, plan.lead.contact_id) == ("c-1", "p-1")


def test_a_missing_or_foreign_record_to_attach_to_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput, match="company_id"):
        plan_conversion(lead(), ConversionOptions(company_id="nope"), Lookup({}), REP, now=NOW, forced=False)
    someone_elses = Contact(
        id="p-2", first_name="G", last_name="H", email="g@h.co", owner="rep-2", created_by="x",
        created_at=NOW, updated_at=NOW,
    )  # fmt: skip
    with pytest.raises(InvalidInput, match="contact_id"):
        plan_conversion(
            lead(),
            ConversionOptions(contact_id="p-2"),
            Lookup({}, None, someone_elses),
            REP,
            now=NOW,
            forced=False,
        )


# ---------------------------------------------------------------- who may convert what


@pytest.mark.parametrize(
    ("status", "force", "principal", "require", "outcome"),
    [
        (LeadStatus.QUALIFIED, False, REP, True, False),
        (LeadStatus.QUALIFIED, True, REP, True, False),  # force is moot for a qualified lead
        (LeadStatus.CONTACTED, False, REP, True, NotQualified),
        (LeadStatus.CONTACTED, True, REP, True, Forbidden),
        (LeadStatus.CONTACTED, False, MANAGER, True, NotQualified),
        (LeadStatus.CONTACTED, True, MANAGER, True, True),
        (LeadStatus.UNQUALIFIED, True, ADMIN, True, True),
        (LeadStatus.NEW, True, ADMIN, True, True),
        (LeadStatus.UNQUALIFIED, False, REP, False, False),  # the rule switched off
        (LeadStatus.CONVERTED, True, ADMIN, True, InvalidTransition),
    ],
)
def test_who_may_convert_a_lead_in_each_status(
    status: LeadStatus, force: bool, principal: Principal, require: bool, outcome: object
) -> None:
    options = ConversionOptions(force=force)
    if isinstance(outcome, type):
        with pytest.raises(outcome):
            check_convertible(lead(status), options, principal, require)
    else:
        assert check_convertible(lead(status), options, principal, require) is outcome


def test_the_refusal_names_force() -> None:
    with pytest.raises(NotQualified, match="`force: true`"):
        check_convertible(lead(LeadStatus.CONTACTED), ConversionOptions(), REP, True)
    with pytest.raises(Forbidden, match="`force`"):
        check_convertible(lead(LeadStatus.CONTACTED), ConversionOptions(force=True), REP, True)
