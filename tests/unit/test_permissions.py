from datetime import UTC, datetime

import pytest
from crm.leads.model import Lead
from crm.leads.permissions import can_change, can_view, changeable_lead, require_role, visible_lead
from crm.platform.auth import Principal, Role
from crm.platform.errors import Forbidden, NotFound

NOW = datetime(2026, 11, 25, tzinfo=UTC)
ADMIN = Principal("admin", None, frozenset({"admin"}))
MANAGER = Principal("manager", None, frozenset({"manager"}), frozenset({"sales"}))
OTHER_MANAGER = Principal("manager-2", None, frozenset({"manager"}), frozenset({"partners"}))
REP = Principal("rep-1", None, frozenset({"rep"}), frozenset({"sales"}))
OTHER_REP = Principal("rep-2", None, frozenset({"rep"}), frozenset({"sales"}))
OUTSIDER = Principal("rep-9", None, frozenset({"rep"}), frozenset({"partners"}))
NOBODY = Principal("x", None, frozenset())


def lead(assigned_to: str | None = None, team: str | None = "sales") -> Lead:
    return Lead(
        id="l-1",
        first_name="A",
        last_name="B",
        email="a@b.co",
        lead_source="api",
        assigned_to=assigned_to,
        team=team,
        created_at=NOW,
        updated_at=NOW,
    )


@pytest.mark.parametrize(
    ("principal", "subject", "view", "change"),
    [
        (ADMIN, lead("rep-1"), True, True),
        (MANAGER, lead("rep-1"), True, True),
        (OTHER_MANAGER, lead("rep-1"), False, False),
        (REP, lead("rep-1"), True, True),
        (OTHER_REP, lead("rep-1"), False, False),
        (REP, lead(None), True, False),  # the team's unassigned queue is read-only
        (OUTSIDER, lead(None), False, False),
        (OTHER_MANAGER, lead(None, team=None), True, True),  # not yet routed: every manager sees it
        (NOBODY, lead("rep-1"), False, False),
    ],
)
def test_the_permission_matrix(principal: Principal, subject: Lead, view: bool, change: bool) -> None:
    assert (can_view(principal, subject), can_change(principal, subject)) == (view, change)


def test_a_lead_the_caller_may_not_see_does_not_exist_for_them() -> None:
    with pytest.raises(NotFound):
        visible_lead(OTHER_REP, lead("rep-1"), "l-1")
    with pytest.raises(NotFound):
        changeable_lead(OTHER_REP, lead("rep-1"), "l-1")


def test_a_read_only_lead_is_forbidden_to_change() -> None:
    with pytest.raises(Forbidden):
        changeable_lead(REP, lead(None), "l-1")


def test_roles_are_required_by_name() -> None:
    require_role(MANAGER, Role.MANAGER, Role.ADMIN)
    with pytest.raises(Forbidden, match="manager or admin"):
        require_role(REP, Role.MANAGER, Role.ADMIN)
