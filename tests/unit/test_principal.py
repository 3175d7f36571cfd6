import pytest
from crm.platform.auth import Role, principal_from_event
from crm.platform.errors import Unauthorized


def event(claims: dict | None) -> dict:
    return {"requestContext": {"authorizer": {"jwt": {"claims": claims}}}} if claims is not None else {}


@pytest.mark.parametrize("groups", ["[manager rep]", "[manager, rep]", ["manager", "rep"]])
def test_groups_are_read_however_api_gateway_flattens_them(groups: object) -> None:
    principal = principal_from_event(event({"sub": "u-1", "cognito:groups": groups}))
    assert principal.roles == {Role.MANAGER, Role.REP}
    assert principal.actor == "user:u-1"


def test_no_claims_means_no_principal() -> None:
    with pytest.raises(Unauthorized):
        principal_from_event(event(None))
