"""The rule preview service: a proposed rule change (and sales threshold) tried over the open leads.

Reads the stored rules and the open leads, scores each lead under the current and the proposed rules
through the engine, and writes nothing.
"""

import random
from collections.abc import Callable
from datetime import datetime

from crm.leads.model import LeadStatus
from crm.leads.permissions import can_view
from crm.platform import clock
from crm.platform.auth import Principal
from crm.scoring.preview import Preview, PreviewTally, RuleChange, apply_changes, uniform_sample
from crm.scoring.preview_repository import PreviewRepository
from crm.scoring.rescoring import RuleBook
from crm.scoring.rule_repository import ScoringRuleRepository

# Above this many open leads the preview scores a uniform sample of this many (one API call's worth).
MAX_PREVIEW_LEADS = 10_000


class RulePreviewService:
    def __init__(
        self,
        rules: ScoringRuleRepository,
        leads: PreviewRepository,
        sales_threshold: Callable[[], int],
        *,
        half_life_days: float | None = None,
        max_leads: int = MAX_PREVIEW_LEADS,
        now: Callable[[], datetime] = clock.now,
        rng: random.Random | None = None,
    ) -> None:
        self.rules = rules
        self.leads = leads
        self.sales_threshold = sales_threshold
        self.half_life_days = half_life_days
        self.max_leads = max_leads
        self.now = now
        self.rng = rng

    def preview(self, principal: Principal, changes: list[RuleChange], threshold: int | None) -> Preview:
        """What the open leads would score with `changes` applied (and `threshold`, None: the current one),
        beside what they score now, both computed at the same moment with the same reads."""
        now = self.now()
        rule_set = self.rules.rule_set(self.now)
        proposed = apply_changes(rule_set, changes, now)
        current_threshold = self.sales_threshold()
        tally = PreviewTally(
            RuleBook.build(rule_set, self.half_life_days),
            RuleBook.build(proposed, self.half_life_days),
            now=now,
            half_life_days=self.half_life_days,
            current_threshold=current_threshold,
            proposed_threshold=current_threshold if threshold is None else threshold,
            may_see=lambda lead: can_view(principal, lead),
        )
        open_ids = self.leads.open_lead_ids()
        chosen = uniform_sample(open_ids, self.max_leads, self.rng)
        read = self.leads.leads_with_activities if tally.reads_activities else self.leads.leads
        for lead, activities in read(chosen):
            if lead.lead_status is not LeadStatus.CONVERTED:  # converted since it was listed
                tally.add(lead, activities)
        return tally.result(len(open_ids))
