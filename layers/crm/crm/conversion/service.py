"""The conversion service: reads the lead, plans the conversion (`crm.conversion.model`) and commits it in
one transaction (`crm.conversion.repository`), re-planning when a concurrent conversion claimed the company.
"""

import random
import time
from collections.abc import Callable
from datetime import datetime

from crm.conversion.model import (
    Company,
    CompanyKeyTaken,
    Contact,
    ConversionOptions,
    ConversionResult,
    Deal,
    LeadAlreadyChanged,
    _keys_to_match,
    can_view_record,
    check_convertible,
    plan_conversion,
)
from crm.conversion.repository import ConversionRepository
from crm.leads.permissions import changeable_lead
from crm.leads.repository import LeadRepository
from crm.platform import clock
from crm.platform.auth import Principal
from crm.platform.errors import (
    NotFound,
    RetryableError,
)

# Bounded retries for a conversion that lost a race (another conversion, an edit, a company key).
MAX_ATTEMPTS = 12


class ConversionService:
    def __init__(
        self,
        leads: LeadRepository,
        records: ConversionRepository,
        require_qualified: bool = True,
        now: Callable[[], datetime] = clock.now,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.leads = leads
        self.records = records
        self.require_qualified = require_qualified
        self.now = now
        self.sleep = sleep

    def convert(self, lead_id: str, options: ConversionOptions, principal: Principal) -> ConversionResult:
        """Convert once: a lead converted before answers with its first result and writes nothing."""
        for attempt in range(MAX_ATTEMPTS):
            lead = changeable_lead(principal, self.leads.get(lead_id), lead_id)
            if lead.converted:
                return ConversionResult(lead=lead, created=False)
            forced = check_convertible(lead, options, principal, self.require_qualified)
            keys = _keys_to_match(lead, options)
            lookup = self.records.lookup(keys, options.company_id, options.contact_id)
            plan = plan_conversion(lead, options, lookup, principal, now=self.now(), forced=forced)
            try:
                self.records.commit(plan)
            except LeadAlreadyChanged as changed:
                if changed.current is not None and changed.current.converted:
                    return ConversionResult(lead=changed.current, created=False)
                self._back_off(attempt)
                continue
            except (CompanyKeyTaken, RetryableError):
                self._back_off(attempt)
                continue
            stored = plan.lead.model_copy(update={"version": lead.version + 1})
            return ConversionResult(lead=stored, created=True)
        raise RetryableError("The lead is being converted or changed by others right now; try again")

    def contact(self, contact_id: str, principal: Principal) -> Contact:
        contact = self.records.get_contact(contact_id)
        if contact is None or not can_view_record(principal, contact.owner, contact.team):
            raise NotFound(f"No contact with id {contact_id}")
        return contact

    def company(self, company_id: str, principal: Principal) -> Company:
        company = self.records.get_company(company_id)
        if company is None or not principal.roles:
            raise NotFound(f"No company with id {company_id}")
        return company

    def deal(self, deal_id: str, principal: Principal) -> Deal:
        deal = self.records.get_deal(deal_id)
        if deal is None or not can_view_record(principal, deal.owner, deal.team):
            raise NotFound(f"No deal with id {deal_id}")
        return deal

    def _back_off(self, attempt: int) -> None:
        # Full jitter: twenty callers converting one lead spread out instead of colliding again.
        self.sleep(random.uniform(0, min(0.2, 0.005 * 2**attempt)))  # noqa: S311
