"""The reading functions' real handlers, called with the sample events from events/, on moto."""

import copy
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm import bootstrap
from crm.analytics.reactions import count_for_analytics
from crm.leads.changes import LeadChange
from crm.leads.repository import LeadItem

from tests.lead_data import lead, store_leads
from tests.support import event, response_json

pytestmark = pytest.mark.usefixtures("moto_stack")

MANAGER = {"sub": "11111111-1111-4111-8111-000000000002", "groups": "[manager]"}
REP = {"sub": "11111111-1111-4111-8111-000000000011", "groups": "[rep]"}
ADMIN = {"sub": "11111111-1111-4111-8111-000000000001", "groups": "[admin]"}


@pytest.fixture(autouse=True)
def cursor_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The cursor key given directly (reading it from its secret is tested in test_signing_keys.py)."""
    monkeypatch.setenv("CURSOR_SIGNING_KEY", "handler-test-key")


def as_user(sample: str, who: dict[str, str], query: dict[str, str] | None = None, **changes: Any) -> dict:
    data = copy.deepcopy(event(sample, **changes))
    claims = data["requestContext"]["authorizer"]["jwt"]["claims"]
    claims.update({"sub": who["sub"], "cognito:groups": who["groups"]})
    if query is not None:
        data["queryStringParameters"] = query
        data["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    return data


def captured(invoke: Any, email: str) -> str:
    response = invoke(
        "CaptureFunction",
        event("capture_form_json.json", body={"first_name": "Ada", "last_name": "Lovelace", "email": email}),
    )
    return str(response_json(response)["id"])


def test_a_manager_lists_new_leads_a_page_at_a_time(invoke: Any) -> None:
    ids = {captured(invoke, f"ada{index}@example.com") for index in range(3)}

    first = invoke(
        "LeadQueriesFunction", as_user("list_leads.json", MANAGER, {"status": "new", "limit": "2"})
    )
    body = response_json(first)
    assert first["statusCode"] == 200
    assert len(body["items"]) == 2 and body["next_cursor"]
    second = invoke(
        "LeadQueriesFunction",
        as_user("list_leads.json", MANAGER, {"status": "new", "limit": "2", "cursor": body["next_cursor"]}),
    )
    rest = response_json(second)
    assert rest["next_cursor"] is None
    assert {item["id"] for item in body["items"] + rest["items"]} == ids


@pytest.mark.parametrize(
    ("query", "status", "fields"),
    [
        ({"status": "bogus"}, 422, {"status"}),
        ({"limit": "101"}, 422, {"limit"}),
        ({"colour": "red"}, 422, {"colour"}),
        ({"created_from": "yesterday"}, 422, {"created_from"}),
        ({"min_score": "90", "max_score": "10"}, 422, {"min_score"}),
        ({"q": "a"}, 422, {"q"}),
        ({"source": "acme", "status": "new"}, 400, {"source", "status"}),
        ({"grade": "A", "sort": "created_at"}, 400, {"grade"}),
        ({"q": "ada", "status": "new"}, 400, {"status"}),
        ({"cursor": "forged.cursor"}, 400, {"cursor"}),
    ],
)
def test_bad_list_parameters_get_a_4xx_naming_them(
    invoke: Any, query: dict[str, str], status: int, fields: set[str]
) -> None:
    response = invoke("LeadQueriesFunction", as_user("list_leads.json", ADMIN, query))

    assert response["statusCode"] == status
    assert {problem["field"] for problem in response_json(response)["fields"]} == fields


def test_the_timeline_is_paged_and_hidden_from_a_rep_who_does_not_hold_the_lead(invoke: Any) -> None:
    lead_id = captured(invoke, "grace@example.com")
    path = {"pathParameters": {"id": lead_id}, "rawPath": f"/leads/{lead_id}/activities"}

    manager = invoke("LeadQueriesFunction", as_user("lead_activities.json", MANAGER, {"limit": "5"}, **path))
    unknown = invoke(
        "LeadQueriesFunction",
        as_user("lead_activities.json", MANAGER, {}, pathParameters={"id": "not-a-lead"}),
    )

    assert manager["statusCode"] == 200
    assert sorted(item["type"] for item in response_json(manager)["items"]) == [
        "form_submitted",
        "lead_captured",
    ]
    assert unknown["statusCode"] == 404


def test_analytics_answer_managers_and_refuse_reps(invoke: Any, moto_stack: dict[str, Any]) -> None:
    today = datetime.now(UTC).replace(microsecond=0)
    subject = lead(today - timedelta(hours=1), source="acme")
    item = LeadItem.from_lead(subject, 4).model_dump()
    count_for_analytics(LeadChange("INSERT", subject.id, item, {}, "seq-1"), bootstrap.analytics_service())
    day = subject.created_at.date().isoformat()  # its cohort (yesterday for a run just after midnight UTC)

    funnel = invoke(
        "AnalyticsFunction",
        as_user("analytics_funnel.json", MANAGER, {"from": day, "to": day, "group_by": "source"}),
    )
    sources = invoke("AnalyticsFunction", as_user("analytics_sources.json", ADMIN, {}))
    speed = invoke("AnalyticsFunction", as_user("analytics_speed_to_lead.json", MANAGER, {}))
    refused = invoke("AnalyticsFunction", as_user("analytics_funnel.json", REP, {}))
    backwards = invoke(
        "AnalyticsFunction", as_user("analytics_funnel.json", MANAGER, {"from": day, "to": "2020-01-01"})
    )

    body = response_json(funnel)
    assert funnel["statusCode"] == 200
    assert (body["from"], body["to"], body["group_by"]) == (day, day, "source")
    assert body["total"]["leads"] == 1 and body["total"]["by_status"]["new"] == 1
    assert [group["key"] for group in body["groups"]] == ["acme"]
    assert response_json(sources)["sources"][0] == {
        "source": "acme",
        "leads": 1,
        "qualified": 0,
        "converted": 0,
        "conversion_rate": 0.0,
    }
    assert response_json(speed)["overall"]["contacted"] == 0
    assert refused["statusCode"] == 403
    assert backwards["statusCode"] == 422
    assert response_json(backwards)["fields"][0]["field"] == "from"


def test_the_nightly_reconciliation_runs_from_its_schedule(invoke: Any, moto_stack: dict[str, Any]) -> None:
    yesterday = datetime.now(UTC) - timedelta(days=1)
    store_leads(moto_stack["dynamodb"], moto_stack["table"], [lead(yesterday)], 4)

    result = invoke("AnalyticsReconcileFunction", event("analytics_reconcile_schedule.json"))

    # Stored without the stream, so nothing was counted: leads and s_new differ in each of 4 dimensions.
    assert result == {"days": [{"day": yesterday.date().isoformat(), "leads": 1, "drift": 8}]}
