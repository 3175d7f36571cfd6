"""A refused status change says which statuses an edit may set, and where the others are reached: qualified
and converted only through their own routes (a PATCH asking for them is a 422)."""

import pytest
from crm.leads.model import LeadStatus
from crm.lifecycle.service import check_transition
from crm.platform.errors import InvalidTransition

S = LeadStatus


@pytest.mark.parametrize(
    ("current", "target", "message"),
    [
        (
            S.CONTACTED,
            S.NEW,
            "A contacted lead cannot become new (allowed from contacted: unqualified; "
            "qualified through POST /leads/{id}/qualify)",
        ),
        (
            S.NEW,
            S.CONVERTED,
            "A new lead cannot become converted (allowed from new: contacted, unqualified; "
            "qualified through POST /leads/{id}/qualify)",
        ),
        (
            S.QUALIFIED,
            S.CONTACTED,
            "A qualified lead cannot become contacted (allowed from qualified: unqualified; "
            "converted through POST /leads/{id}/convert)",
        ),
        (
            S.UNQUALIFIED,
            S.NEW,
            "An unqualified lead cannot become new (allowed from unqualified: contacted; "
            "qualified through POST /leads/{id}/qualify)",
        ),
        (
            S.CONVERTED,
            S.CONTACTED,
            "A converted lead cannot become contacted (allowed from converted: none: it is final)",
        ),
    ],
)
def test_the_refusal_names_the_edits_allowed_and_the_routes_for_the_rest(
    current: LeadStatus, target: LeadStatus, message: str
) -> None:
    with pytest.raises(InvalidTransition) as refused:
        check_transition(current, target)

    assert refused.value.message == message
