import pytest
from crm.platform.auth import Role, principal_from_event
from crm.platform.errors import Forbidden, Unauthorized


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


@pytest.mark.parametrize("groups", [None, "[]", [], "[visitors]", ["Admin"]])
def test_a_signed_in_user_without_a_role_is_forbidden(groups: object) -> None:
    claims = {"sub": "u-1"} if groups is None else {"sub": "u-1", "cognito:groups": groups}
    with pytest.raises(Forbidden, match="no role"):
        principal_from_event(event(claims))
