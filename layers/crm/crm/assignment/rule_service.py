"""Managing assignment rules (managers and admins): validated as a whole, stored with optimistic locking."""

import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from crm.assignment.repository import AssignmentRepository
from crm.assignment.rules import AssignmentRule, AssignmentRuleInput
from crm.leads.permissions import require_role
from crm.platform import clock
from crm.platform.audit import audit_entry
from crm.platform.auth import Principal, Role
from crm.platform.errors import NotFound, VersionConflict
from crm.platform.http import invalid_input_from
from crm.platform.observability import logger

RULE_EDITORS = (Role.MANAGER, Role.ADMIN)
AUDIT_SUBJECT = "assignment_rules"


class AssignmentRuleService:
    def __init__(self, assignments: AssignmentRepository, now: Callable[[], datetime] = clock.now) -> None:
        self.assignments = assignments
        self.now = now

    def list(self, by: Principal) -> list[AssignmentRule]:
        require_role(by, *RULE_EDITORS)
        return self.assignments.list_rules()

    def get(self, rule_id: str, by: Principal) -> AssignmentRule:
        require_role(by, *RULE_EDITORS)
        rule = self.assignments.get_rule(rule_id)
        if rule is None:
            raise NotFound(f"No assignment rule with id {rule_id}")
        return rule

    def create(self, definition: AssignmentRuleInput, by: Principal) -> AssignmentRule:
        require_role(by, *RULE_EDITORS)
        now = self.now()
        rule = AssignmentRule(
            id=str(uuid.uuid4()),
            created_at=now,
            updated_at=now,
            updated_by=by.actor,
            **definition.model_dump(),
        )
        audit = audit_entry(
            AUDIT_SUBJECT, rule.id, "created", actor=by.actor, at=now, new=rule.model_dump(mode="json")
        )
        stored = self.assignments.put_rule(rule, expected_version=None, audit=audit)
        logger.info("Assignment rule created", extra={"rule_id": rule.id, "by": by.subject})
        return stored

    def update(
        self,
        rule_id: str,
        merge: Callable[[AssignmentRule], dict[str, Any]],
        version: int,
        by: Principal,
    ) -> AssignmentRule:
        rule = self.get(rule_id, by)
        if rule.version != version:
            raise VersionConflict("The rule was changed by someone else", current_version=rule.version)
        try:
            definition = AssignmentRuleInput.model_validate(merge(rule))
        except ValidationError as exc:
            raise invalid_input_from(exc) from None
        now = self.now()
        changed = AssignmentRule.model_validate(
            {**rule.model_dump(), **definition.model_dump(), "updated_at": now, "updated_by": by.actor}
        )
        audit = audit_entry(
            AUDIT_SUBJECT,
            rule.id,
            "updated",
            actor=by.actor,
            at=now,
            old=rule.definition() | {"updated_by": rule.updated_by},
            new=changed.definition() | {"updated_by": changed.updated_by},
        )
        stored = self.assignments.put_rule(changed, expected_version=version, audit=audit)
        logger.info("Assignment rule changed", extra={"rule_id": rule.id, "by": by.subject})
        return stored

    def delete(self, rule_id: str, by: Principal) -> None:
        require_role(by, *RULE_EDITORS)
        audit = audit_entry(AUDIT_SUBJECT, rule_id, "deleted", actor=by.actor, at=self.now())
        self.assignments.delete_rule(rule_id, audit=audit)
        logger.info("Assignment rule deleted", extra={"rule_id": rule_id, "by": by.subject})
