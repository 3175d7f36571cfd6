"""Converting a lead into a contact, a company and a deal: the records and the plan, as plain Python.

Everything a conversion writes goes in one `TransactWriteItems` (crm.conversion.repository): the lead
(conditional on the version read and on not being converted yet), the new contact, the new company and
its uniqueness keys (conditional on not existing), the deal and an activity. Either all of it exists
afterwards or none of it does. A lead already converted answers with what its first conversion made.

Companies are shared: a lead's company is matched first by its email domain (free-mail domains never
match), then by its normalised name, through key items `COMPANYKEY#domain:<d>` / `COMPANYKEY#name:<n>`
that a new company claims in the same transaction. Two conversions racing to create one company: one
claim wins, the other transaction is cancelled, re-reads the keys and attaches to the winner.
"""

import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel

from crm.leads.model import Activity, Lead, LeadStatus, UtcDatetime, new_activity
from crm.lifecycle.service import FORCIBLE_INTO_CONVERSION, check_transition
from crm.platform.auth import Principal, Role
from crm.platform.errors import (
    Forbidden,
    InvalidInput,
    InvalidTransition,
    NotQualified,
)
from crm.platform.ids import new_id

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com",
        "googlemail.com",
        "outlook.com",
        "hotmail.com",
        "hotmail.co.uk",
        "live.com",
        "msn.com",
        "yahoo.com",
        "yahoo.co.uk",
        "ymail.com",
        "icloud.com",
        "me.com",
        "mac.com",
        "aol.com",
        "proton.me",
        "protonmail.com",
        "pm.me",
        "gmx.com",
        "gmx.de",
        "gmx.net",
        "web.de",
        "mail.com",
        "zoho.com",
        "yandex.com",
        "yandex.ru",
        "qq.com",
        "163.com",
        "fastmail.com",
        "hey.com",
        "tutanota.com",
    }
)

# Legal-form words dropped from the end of a company name before matching ("Acme Widgets, Inc.").
LEGAL_SUFFIXES = frozenset(
    {
        "inc",
        "incorporated",
        "ltd",
        "limited",
        "llc",
        "llp",
        "lp",
        "plc",
        "gmbh",
        "ag",
        "kg",
        "ug",
        "corp",
        "corporation",
        "co",
        "company",
        "sa",
        "sas",
        "sarl",
        "srl",
        "spa",
        "bv",
        "nv",
        "oy",
        "ab",
        "as",
        "aps",
        "pty",
        "pte",
        "kk",
    }
)
_NOT_WORD = re.compile(r"[^0-9a-z]+")


def normalise_company_name(name: str | None) -> str | None:
    """Lower-case, accents and punctuation gone, legal suffixes (inc, ltd, llc, gmbh, ...) and a leading
    "the" dropped: "The ACME Widgets, Inc." and "Acme-Widgets Ltd" are both "acme widgets"."""
    if not name:
        return None
    folded = unicodedata.normalize("NFKD", name.replace("&", " and ")).encode("ascii", "ignore").decode()
    # "L.L.C." and "G.m.b.H." are one word each once their dots are gone.
    tokens = _NOT_WORD.sub(" ", folded.lower().replace(".", "")).split()
    if not tokens:
        return None
    kept = list(tokens)
    stripped = False  # "GmbH & Co. KG": an "and" between two legal words goes with them
    while len(kept) > 1 and (kept[-1] in LEGAL_SUFFIXES or (stripped and kept[-1] == "and")):
        kept.pop()
        stripped = True
    if len(kept) > 1 and kept[0] == "the":
        kept.pop(0)
    return " ".join(kept)


def company_domain(email: str | None) -> str | None:
    """The company's domain from a person's email, or None for free-mail providers."""
    if not email or "@" not in email:
        return None
    domain = email.rsplit("@", 1)[1].strip().lower().rstrip(".")
    if not domain or domain in FREE_MAIL_DOMAINS:
        return None
    return domain


def company_keys(company_name: str | None, email: str | None) -> list[str]:
    """The uniqueness keys a lead's company is matched by, strongest first: email domain, then name."""
    keys: list[str] = []
    domain = company_domain(email)
    if domain:
        keys.append(f"domain:{domain}")
    name = normalise_company_name(company_name)
    if name:
        keys.append(f"name:{name}")
    return keys


def matched_company(keys: list[str], owners: dict[str, str]) -> tuple[str | None, str | None]:
    """(company id, the key that matched it) for the first key that already belongs to a company."""
    for key in keys:
        if key in owners:
            return owners[key], key
    return None, None


# ---------------------------------------------------------------- models


class DealStage(StrEnum):
    QUALIFICATION = "qualification"
    PROPOSAL = "proposal"
    NEGOTIATION = "negotiation"
    CLOSED_WON = "closed_won"
    CLOSED_LOST = "closed_lost"


class Contact(BaseModel):
    id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None = None
    title: str | None = None
    company_id: str | None = None
    owner: str
    team: str | None = None
    lead_id: str | None = None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = 1


class Company(BaseModel):
    id: str
    name: str
    domain: str | None = None
    industry: str | None = None
    employee_count: int | None = None
    annual_revenue: Decimal | None = None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = 1


class Deal(BaseModel):
    id: str
    name: str
    stage: DealStage = DealStage.QUALIFICATION
    amount: Decimal | None = None
    contact_id: str
    company_id: str | None = None
    lead_id: str | None = None
    owner: str
    team: str | None = None
    created_by: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    version: int = 1


@dataclass(frozen=True)
class ConversionOptions:
    create_opportunity: bool = True
    deal_name: str | None = None
    amount: Decimal | None = None
    company_id: str | None = None
    contact_id: str | None = None
    force: bool = False


# ---------------------------------------------------------------- rules


def _keys_to_match(lead: Lead, options: ConversionOptions) -> list[str]:
    """A lead with a company is matched by its keys, unless the caller named the company to attach to."""
    if options.company_id is not None or not lead.company:
        return []
    return company_keys(lead.company, lead.email)


def may_force(principal: Principal) -> bool:
    return bool(principal.roles & {Role.MANAGER, Role.ADMIN})


def check_convertible(
    lead: Lead, options: ConversionOptions, principal: Principal, require_qualified: bool
) -> bool:
    """Whether this conversion is forced; raises when the lead may not be converted by this caller.

    A qualified lead converts. Any other open lead converts only with `force: true` from a manager or an
    admin while `require_qualified` is on; with it off, any open lead converts.
    """
    current = lead.lead_status
    if current is LeadStatus.QUALIFIED:
        check_transition(current, LeadStatus.CONVERTED)
        return False
    if current not in FORCIBLE_INTO_CONVERSION:
        raise InvalidTransition(f"A {current.value} lead cannot be converted: {current.value} is final")
    if not require_qualified:
        return False
    if not options.force:
        raise NotQualified(
            f"The lead is {current.value}, not qualified: qualify it first (POST /leads/{{id}}/qualify), "
            "or a manager or admin may convert it anyway with `force: true`"
        )
    if not may_force(principal):
        raise Forbidden("Only a manager or admin may convert a lead that is not qualified (`force`)")
    return True


def default_deal_name(company_name: str | None, last_name: str) -> str:
    return f"{company_name or last_name} - Opportunity"


def can_view_record(principal: Principal, owner: str, team: str | None) -> bool:
    """Contacts and deals, like leads: admins all; managers those of their teams (or of no team yet);
    reps their own."""
    roles = principal.roles
    if Role.ADMIN in roles:
        return True
    if Role.MANAGER in roles and (team is None or team in principal.teams):
        return True
    return Role.REP in roles and owner == principal.subject


@dataclass(frozen=True)
class Lookup:
    """What the reads before a conversion found: company key owners, and the records asked to attach."""

    key_owners: dict[str, str]
    company: Company | None = None
    contact: Contact | None = None


@dataclass(frozen=True)
class ConversionPlan:
    lead: Lead  # converted, not yet stored
    expected_version: int
    activity: Activity
    contact: Contact | None = None  # new; None when attaching to an existing one
    company: Company | None = None  # new; None when matched, attached or absent
    company_keys_to_claim: tuple[str, ...] = ()  # keys claimed for lead.company_id, in this transaction
    existing_company_id: str | None = None
    existing_contact_id: str | None = None
    deal: Deal | None = None


def plan_conversion(
    lead: Lead,
    options: ConversionOptions,
    lookup: Lookup,
    principal: Principal,
    *,
    now: datetime,
    forced: bool,
) -> ConversionPlan:
    owner = lead.assigned_to or principal.subject
    keys = _keys_to_match(lead, options)

    company: Company | None = None
    company_id: str | None = None
    existing_company_id: str | None = None
    how: str | None = None
    company_name = lead.company
    if options.company_id is not None:
        if lookup.company is None:
            raise InvalidInput.single("company_id", "no company with this id")
        company_id = existing_company_id = lookup.company.id
        company_name = company_name or lookup.company.name
        how = "given"
    elif keys:
        company_id, matched_by = matched_company(keys, lookup.key_owners)
        if company_id is not None:
            existing_company_id, how = company_id, f"matched by {matched_by}"
        else:
            company = Company(
                id=new_id(),
                name=str(lead.company),
                domain=company_domain(lead.email),
                industry=lead.industry,
                employee_count=lead.employee_count,
                annual_revenue=lead.annual_revenue,
                created_by=principal.actor,
                created_at=now,
                updated_at=now,
            )
            company_id, how = company.id, "created"
    to_claim = tuple(key for key in keys if key not in lookup.key_owners)

    contact: Contact | None = None
    if options.contact_id is not None:
        found = lookup.contact
        if found is None or not can_view_record(principal, found.owner, found.team):
            raise InvalidInput.single("contact_id", "no contact with this id")
        contact_id = found.id
    else:
        contact = Contact(
            id=new_id(),
            first_name=lead.first_name,
            last_name=lead.last_name,
            email=lead.email,
            phone=lead.phone,
            title=lead.title,
            company_id=company_id,
            owner=owner,
            team=lead.team,
            lead_id=lead.id,
            created_by=principal.actor,
            created_at=now,
            updated_at=now,
        )
        contact_id = contact.id

    deal: Deal | None = None
    if options.create_opportunity:
        deal = Deal(
            id=new_id(),
            name=options.deal_name or default_deal_name(company_name, lead.last_name),
            amount=options.amount,
            contact_id=contact_id,
            company_id=company_id,
            lead_id=lead.id,
            owner=owner,
            team=lead.team,
            created_by=principal.actor,
            created_at=now,
            updated_at=now,
        )

    converted = lead.model_copy(
        update={
            "lead_status": LeadStatus.CONVERTED,
            "converted": True,
            "converted_at": now,
            "contact_id": contact_id,
            "company_id": company_id,
            "deal_id": deal.id if deal else None,
            "updated_at": now,
        }
    )
    activity = new_activity(
        lead.id,
        "lead_converted",
        "Converted" + (" (forced: the lead was not qualified)" if forced else ""),
        principal.actor,
        now,
        status={"old": lead.lead_status.value, "new": LeadStatus.CONVERTED.value},
        contact_id=contact_id,
        contact_created=contact is not None,
        company_id=company_id,
        company=how,
        deal_id=deal.id if deal else None,
        forced=forced or None,
    )
    return ConversionPlan(
        lead=converted,
        expected_version=lead.version,
        activity=activity,
        contact=contact,
        company=company,
        company_keys_to_claim=to_claim if company_id is not None else (),
        existing_company_id=existing_company_id,
        existing_contact_id=contact_id if contact is None else None,
        deal=deal,
    )


# ---------------------------------------------------------------- the service


@dataclass(frozen=True)
class ConversionResult:
    lead: Lead
    created: bool  # False: the lead was converted before, this is that first conversion's result

    @property
    def converted_at(self) -> datetime | None:
        return self.lead.converted_at


class LeadAlreadyChanged(Exception):
    """The lead's condition failed in the conversion transaction; carries the lead as it is now."""

    def __init__(self, current: Lead | None) -> None:
        super().__init__("The lead changed during the conversion")
        self.current = current


class CompanyKeyTaken(Exception):
    """Another conversion just claimed one of the company's keys: re-read them and attach."""
