"""The caller's teams come from the token's `custom:team` claim when there is one."""

from crm.platform.auth import principal_from_event


def claims_event(**claims: str) -> dict:
    return {"requestContext": {"authorizer": {"jwt": {"claims": {"sub": "u-1", **claims}}}}}


def test_the_team_claim_gives_the_principal_its_teams() -> None:
    one = principal_from_event(claims_event(**{"cognito:groups": "[manager]", "custom:team": "sales"}))
    several = principal_from_event(claims_event(**{"cognito:groups": "[rep]", "custom:team": "sales,emea"}))
    none = principal_from_event(claims_event(**{"cognito:groups": "[rep]"}))

    assert one.teams == frozenset({"sales"})
    assert several.teams == frozenset({"sales", "emea"})
    assert none.teams == frozenset()
