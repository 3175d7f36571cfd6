"""Who may see and change what, from the caller's roles (JWT groups) and teams.

- admin: everything.
- manager: every lead of their teams (a lead's team is set when it is routed; a lead not yet routed
  to a team is visible to every manager).
- rep: the leads assigned to them (read and change); unassigned leads of their team's queue, read-only.

A caller who may not see a lead is told it does not exist (404), so ids leak nothing.
"""

from crm.leads.model import Lead
from crm.platform.auth import Principal, Role
from crm.platform.errors import Forbidden, NotFound


def _in_teams(principal: Principal, lead: Lead) -> bool:
    return lead.team is None or lead.team in principal.teams


def can_view(principal: Principal, lead: Lead) -> bool:
    roles = principal.roles
    if Role.ADMIN in roles:
        return True
    if Role.MANAGER in roles and _in_teams(principal, lead):
        return True
    if Role.REP in roles:
        queued_for_team = lead.assigned_to is None and _in_teams(principal, lead)
        return lead.assigned_to == principal.subject or queued_for_team
    return False


def can_change(principal: Principal, lead: Lead) -> bool:
    roles = principal.roles
    if Role.ADMIN in roles:
        return True
    if Role.MANAGER in roles and _in_teams(principal, lead):
        return True
    return Role.REP in roles and lead.assigned_to == principal.subject


def visible_lead(principal: Principal, lead: Lead | None, lead_id: str) -> Lead:
    """The lead if the caller may see it; otherwise NotFound, exactly as if it did not exist."""
    if lead is None or not can_view(principal, lead):
        raise NotFound(f"No lead with id {lead_id}")
    return lead


def changeable_lead(principal: Principal, lead: Lead | None, lead_id: str) -> Lead:
    """The lead if the caller may change it: 404 if they cannot even see it, 403 if read-only to them."""
    visible = visible_lead(principal, lead, lead_id)
    if not can_change(principal, visible):
        raise Forbidden("This lead is read-only for you: it is not assigned to you")
    return visible


def require_role(principal: Principal, *allowed: Role) -> None:
    if not principal.roles & set(allowed):
        names = " or ".join(role.value for role in allowed)
        raise Forbidden(f"Only {names} may do this")
