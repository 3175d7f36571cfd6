"""The capture and leads functions, called in-process with the sample events, against moto."""

import json
import time
from typing import Any

import pytest
from crm.capture.webhooks import sign

from tests.integration.conftest import count_items
from tests.support import PARTNER_SECRET, body_bytes, event, response_json

pytestmark = pytest.mark.usefixtures("moto_stack")


def leads_in(stack: dict[str, Any]) -> int:
    return count_items(stack["dynamodb"], stack["table"], "LEAD#") - count_activities(stack)


def count_activities(stack: dict[str, Any]) -> int:
    items = stack["dynamodb"].scan(TableName=stack["table"])["Items"]
    return sum(1 for item in items if item.get("entity", {}).get("S") == "activity")


def get_lead(invoke: Any, lead_id: str) -> dict[str, Any]:
    response = invoke(
        "LeadsApiFunction",
        event("get_lead.json", rawPath=f"/leads/{lead_id}", pathParameters={"id": lead_id}),
    )
    assert response["statusCode"] == 200, response
    return response_json(response)


def signed_webhook(body: dict[str, Any] | bytes, secret: str = PARTNER_SECRET, **changes: Any) -> dict:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    timestamp = changes.pop("timestamp", int(time.time()))
    header = f"t={timestamp},v1={sign(secret, timestamp, raw)}"
    return event("partner_webhook.json", body=raw.decode(), headers={"X-Signature": header}, **changes)


def test_a_plain_html_form_creates_a_new_website_lead(invoke: Any, moto_stack: dict) -> None:
    response = invoke("CaptureFunction", event("capture_form_urlencoded.json"))

    assert response["statusCode"] == 201
    lead = get_lead(invoke, response_json(response)["id"])
    assert lead["email"] == "ada.lovelace@example.com"
    assert (lead["lead_source"], lead["lead_status"]) == ("website_form", "new")
    assert lead["custom_fields"] == {"utm_source": "newsletter"}
    # A website form is a form submission (scored): recorded with the capture.
    assert sorted(a["type"] for a in lead["activities"]) == ["form_submitted", "lead_captured"]
    assert lead["created_at"].endswith("Z")


def test_a_repeat_submission_merges_into_the_first_lead(invoke: Any, moto_stack: dict) -> None:
    first = invoke("CaptureFunction", event("capture_form_urlencoded.json"))
    again = invoke(
        "CaptureFunction",
        event(
            "capture_form_json.json",
            body={
                "first_name": "Ada",
                "last_name": "Lovelace",
                "email": "ADA.LOVELACE@example.com ",
                "company": "Somewhere Else",
                "phone": "+44 20 7946 0000",
            },
        ),
    )

    # The public answer is the same for a new and a known email: nobody learns who is a lead.
    assert (first["statusCode"], again["statusCode"]) == (201, 201)
    assert response_json(first) == response_json(again) == {"id": response_json(first)["id"]}
    lead = get_lead(invoke, response_json(first)["id"])
    assert lead["company"] == "Analytical Engines"  # never overwritten
    assert lead["phone"] == "+44 20 7946 0000"  # filled
    assert lead["version"] == 2
    (merged,) = [a for a in lead["activities"] if a["type"] == "submission_merged"]
    assert merged["data"]["kept"]["company"] == {
        "existing": "Analytical Engines",
        "submitted": "Somewhere Else",
    }
    assert leads_in(moto_stack) == 1


def test_a_form_redirects_the_browser_to_an_allowed_thank_you_page(invoke: Any, moto_stack: dict) -> None:
    form = (
        b"first_name=Ada&last_name=L&email=ada%40example.com&redirect=http%3A%2F%2Flocalhost%3A8000%2Fthanks"
    )
    response = invoke(
        "CaptureFunction",
        event("capture_form_urlencoded.json", body=form),
    )
    assert response["statusCode"] == 303
    assert response["headers"]["Location"] == "http://localhost:8000/thanks"
    assert leads_in(moto_stack) == 1


def test_a_redirect_to_a_foreign_origin_is_refused_and_nothing_is_stored(
    invoke: Any, moto_stack: dict
) -> None:
    form = b"first_name=Ada&last_name=L&email=ada%40example.com&redirect=https%3A%2F%2Fevil.example%2F"
    response = invoke("CaptureFunction", event("capture_form_urlencoded.json", body=form))
    assert response["statusCode"] == 422
    assert [f["field"] for f in response_json(response)["fields"]] == ["redirect"]
    assert leads_in(moto_stack) == 0


def test_a_filled_honeypot_looks_like_success_but_stores_nothing(invoke: Any, moto_stack: dict) -> None:
    form = b"first_name=Bot&last_name=Bot&email=bot%40spam.example&_gotcha=http%3A%2F%2Fspam"
    response = invoke("CaptureFunction", event("capture_form_urlencoded.json", body=form))
    assert response["statusCode"] == 201
    assert "id" in response_json(response)
    assert count_items(moto_stack["dynamodb"], moto_stack["table"], "") == 0


def test_a_chat_lead_is_contacted_and_keeps_its_transcript(invoke: Any) -> None:
    response = invoke("CaptureFunction", event("capture_chat.json"))

    assert response["statusCode"] == 201
    lead = get_lead(invoke, response_json(response)["id"])
    assert (lead["lead_source"], lead["lead_status"]) == ("live_chat", "contacted")
    transcript = next(a for a in lead["activities"] if a["type"] == "chat_transcript")
    assert transcript["data"]["messages"][0] == {"author": "visitor", "text": "Hi, can I get a demo?"}


def test_a_signed_partner_webhook_creates_a_lead_sourced_to_the_partner(invoke: Any) -> None:
    payload = json.loads(body_bytes(event("partner_webhook.json")))
    response = invoke("CaptureFunction", signed_webhook(payload))

    assert response["statusCode"] == 201, response
    lead = get_lead(invoke, response_json(response)["id"])
    assert lead["lead_source"] == "acme"
    assert lead["custom_fields"] == {"referral_id": "acme-991"}


def test_the_payload_may_name_its_own_source(invoke: Any) -> None:
    payload = {"first_name": "K", "last_name": "J", "email": "kj@example.com", "lead_source": "acme_events"}
    response = invoke("CaptureFunction", signed_webhook(payload))
    assert get_lead(invoke, response_json(response)["id"])["lead_source"] == "acme_events"


@pytest.mark.parametrize(
    "changes",
    [
        {"headers": {"X-Signature": ""}},
        {"headers": {"X-Signature": "t=1,v1=zz"}},
        {"headers": {"X-Signature": f"t={'9' * 400},v1={'0' * 64}"}},
        {"timestamp": int(time.time()) - 600},
        {"secret": "not-the-secret"},
        {"pathParameters": {"partner": "nobody"}, "rawPath": "/webhooks/nobody"},
        {"pathParameters": {"partner": "../x"}, "rawPath": "/webhooks/..%2Fx"},
    ],
    ids=["missing", "malformed", "huge-timestamp", "stale", "wrong-secret", "unknown-partner", "bad-name"],
)
def test_bad_webhook_signatures_get_one_401_and_store_nothing(
    invoke: Any, moto_stack: dict, changes: dict
) -> None:
    # An unknown partner gets the very answer a bad signature gets: nobody can list the partners.
    payload = {"first_name": "K", "last_name": "J", "email": "kj@example.com"}
    secret = changes.pop("secret", PARTNER_SECRET)
    headers = changes.pop("headers", None)
    request = signed_webhook(payload, secret=secret, **changes)
    if headers:
        request["headers"] = {**request["headers"], **{k.lower(): v for k, v in headers.items()}}

    response = invoke("CaptureFunction", request)

    assert response["statusCode"] == 401
    assert response_json(response) == {"error": "unauthorized", "message": "Missing or invalid signature"}
    assert leads_in(moto_stack) == 0


def test_the_system_api_creates_a_lead_and_returns_it(invoke: Any) -> None:
    response = invoke("LeadsApiFunction", event("create_lead.json"))

    assert response["statusCode"] == 201
    lead = response_json(response)
    assert lead["annual_revenue"] == 25000000  # a JSON number
    assert lead["lead_source"] == "trade_show"
    assert response["headers"]["Location"] == f"/leads/{lead['id']}"
    stored = get_lead(invoke, lead["id"])
    assert stored["activities"][0]["created_by"] == "user:11111111-1111-4111-8111-000000000002"


def test_an_unknown_lead_is_404(invoke: Any) -> None:
    response = invoke(
        "LeadsApiFunction",
        event("get_lead.json", rawPath="/leads/6f1c1b8e-2a52-4a53-9d8e-000000000000"),
    )
    assert response["statusCode"] == 404


BAD_INPUT = [
    ("capture_form_json.json", {"body": "{not json"}, 400, None),
    ("capture_form_json.json", {"body": '{"first_name": NaN}'}, 400, None),
    ("capture_form_json.json", {"body": "[1, 2]"}, 400, None),
    ("capture_form_json.json", {"body": ""}, 400, None),
    ("capture_form_json.json", {"headers": {"content-type": "text/xml"}}, 415, None),
    ("capture_chat.json", {"headers": {"content-type": "application/x-www-form-urlencoded"}}, 415, None),
    ("capture_form_json.json", {"body": json.dumps({"first_name": "x" * 10_000_000})}, 413, None),
    ("capture_form_json.json", {"body": {"last_name": "L", "email": "a@b.co"}}, 422, "first_name"),
    (
        "capture_form_json.json",
        {"body": {"first_name": "A", "last_name": "L", "email": "nope"}},
        422,
        "email",
    ),
    (
        "capture_form_json.json",
        {"body": {"first_name": "A", "last_name": "L", "email": "a@b.co", "employee_count": -1}},
        422,
        "employee_count",
    ),
    (
        "capture_form_json.json",
        {"body": {"first_name": "A\u0007", "last_name": "L", "email": "a@b.co"}},
        422,
        "first_name",
    ),
    (
        "create_lead.json",
        {"body": {"first_name": "A", "last_name": "L", "email": "a@b.co", "x": 1}},
        422,
        "x",
    ),
    (
        "create_lead.json",
        {"body": {"first_name": "A", "last_name": "L", "email": "a@b.co", "annual_revenue": -1}},
        422,
        "annual_revenue",
    ),
]


@pytest.mark.parametrize(("sample", "changes", "status", "field"), BAD_INPUT)
def test_bad_input_gets_a_clear_4xx_and_nothing_is_written(
    invoke: Any, moto_stack: dict, sample: str, changes: dict, status: int, field: str | None
) -> None:
    function = "LeadsApiFunction" if sample == "create_lead.json" else "CaptureFunction"
    response = invoke(function, event(sample, **changes))

    assert response["statusCode"] == status, response
    body = response_json(response)
    assert body["message"]
    if field:
        assert field in [problem["field"] for problem in body["fields"]]
    assert count_items(moto_stack["dynamodb"], moto_stack["table"], "") == 0


def test_an_idempotency_key_replays_the_first_answer(invoke: Any, moto_stack: dict) -> None:
    request = event("capture_form_json.json", headers={"Idempotency-Key": "order-123"})
    first = invoke("CaptureFunction", request)
    replay = invoke("CaptureFunction", request)

    assert first["statusCode"] == replay["statusCode"] == 201
    assert response_json(first) == response_json(replay)
    assert leads_in(moto_stack) == 1
    assert count_activities(moto_stack) == 2  # captured and form_submitted: the replay did not even merge


def test_an_idempotency_key_reused_with_another_body_is_refused(invoke: Any, moto_stack: dict) -> None:
    invoke("CaptureFunction", event("capture_form_json.json", headers={"Idempotency-Key": "k-1"}))
    other = event(
        "capture_form_json.json",
        headers={"Idempotency-Key": "k-1"},
        body={"first_name": "Other", "last_name": "Person", "email": "other@example.com"},
    )
    response = invoke("CaptureFunction", other)
    assert response["statusCode"] == 422
    assert response_json(response)["fields"][0]["field"] == "Idempotency-Key"
    assert leads_in(moto_stack) == 1


def test_a_public_chat_with_a_known_email_leaves_the_lead_status_alone(invoke: Any) -> None:
    form = invoke("CaptureFunction", event("capture_form_json.json"))
    lead_id = response_json(form)["id"]
    chat = json.loads(event("capture_chat.json")["body"])
    chat["email"] = get_lead(invoke, lead_id)["email"]
    again = invoke("CaptureFunction", event("capture_chat.json", body=chat))

    assert (form["statusCode"], again["statusCode"]) == (201, 201)
    assert response_json(again) == response_json(form)
    lead = get_lead(invoke, lead_id)
    assert lead["lead_status"] == "new"  # its speed-to-lead clock still runs
    assert {a["type"] for a in lead["activities"]} >= {"submission_merged", "chat_transcript"}


def test_marketing_consent_is_recorded_with_when_and_through_which_route(invoke: Any) -> None:
    form = b"first_name=Ada&last_name=L&email=consent%40example.com&marketing_consent=on"
    response = invoke("CaptureFunction", event("capture_form_urlencoded.json", body=form))
    lead = get_lead(invoke, response_json(response)["id"])
    consent = lead["marketing_consent"]
    assert (consent["given"], consent["channel"], consent["recorded_by"]) == (
        True,
        "website_form",
        "website_form",
    )
    assert consent["at"].endswith("Z")

    silent = invoke(
        "CaptureFunction",
        event("capture_form_urlencoded.json", body=form.replace(b"&marketing_consent=on", b"")),
    )
    assert get_lead(invoke, response_json(silent)["id"])["marketing_consent"]["given"] is True


def test_a_consent_that_is_not_a_yes_or_no_is_refused_naming_the_field(invoke: Any, moto_stack: dict) -> None:
    form = b"first_name=Ada&last_name=L&email=ada%40example.com&marketing_consent=maybe"
    response = invoke("CaptureFunction", event("capture_form_urlencoded.json", body=form))
    assert response["statusCode"] == 422
    assert [f["field"] for f in response_json(response)["fields"]] == ["marketing_consent"]
    assert leads_in(moto_stack) == 0


def test_a_replayed_delivery_gets_the_first_answer_and_changes_nothing(invoke: Any, moto_stack: dict) -> None:
    delivery = signed_webhook({"first_name": "K", "last_name": "J", "email": "replay@example.com"})

    first = invoke("CaptureFunction", delivery)
    replay = invoke("CaptureFunction", delivery)

    assert first["statusCode"] == replay["statusCode"] == 201
    assert response_json(first) == response_json(replay)
    assert leads_in(moto_stack) == 1
    assert count_activities(moto_stack) == 1  # the replay did not even merge


def test_an_unknown_partner_is_looked_up_once_a_minute_at_most(
    invoke: Any, moto_stack: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    from crm.capture import partner_secrets

    lookups: list[str] = []
    real = partner_secrets.parameters.get_parameter

    def counting(name: str, **options: Any) -> Any:
        lookups.append(name)
        return real(name, **options)

    monkeypatch.setattr(partner_secrets.parameters, "get_parameter", counting)
    monkeypatch.setattr(partner_secrets, "_unknown_until", {})
    request = signed_webhook(
        {"first_name": "K", "last_name": "J", "email": "kj@example.com"},
        pathParameters={"partner": "nobody"},
        rawPath="/webhooks/nobody",
    )
    answers = [invoke("CaptureFunction", request)["statusCode"] for _ in range(5)]

    assert answers == [401] * 5
    assert len(lookups) == 1


def test_a_demo_request_form_is_also_a_demo_request_and_a_repeat_is_another_submission(invoke: Any) -> None:
    form = b"first_name=Ada&last_name=L&email=demo%40example.com&form_type=Demo_Request"
    first = invoke("CaptureFunction", event("capture_form_urlencoded.json", body=form))
    invoke(
        "CaptureFunction",
        event("capture_form_urlencoded.json", body=form.replace(b"&form_type=Demo_Request", b"")),
    )

    lead = get_lead(invoke, response_json(first)["id"])
    types = sorted(a["type"] for a in lead["activities"])
    assert types == [
        "demo_requested",
        "form_submitted",
        "form_submitted",
        "lead_captured",
        "submission_merged",
    ]
    assert lead["custom_fields"] == {"form_type": "Demo_Request"}


@pytest.mark.parametrize("custom_fields", ["a string", 42, ["a", "list"], True])
def test_custom_fields_that_are_not_an_object_are_422_naming_the_field(
    invoke: Any, moto_stack: dict, custom_fields: Any
) -> None:
    body = {"first_name": "Ada", "last_name": "L", "email": "ada@example.com", "custom_fields": custom_fields}
    for sample in ("capture_form_json.json", "create_lead.json", "capture_chat.json"):
        response = invoke(
            "CaptureFunction" if sample.startswith("capture") else "LeadsApiFunction",
            event(sample, body=body),
        )
        assert response["statusCode"] == 422, (sample, response["body"])
        assert [f["field"] for f in response_json(response)["fields"]] == ["custom_fields"]
    assert leads_in(moto_stack) == 0


def test_a_changed_consent_is_merged_and_its_change_is_on_the_timeline(invoke: Any) -> None:
    form = b"first_name=Ada&last_name=L&email=changes%40example.com&marketing_consent=true"
    first = invoke("CaptureFunction", event("capture_form_urlencoded.json", body=form))
    again = invoke(
        "CaptureFunction", event("capture_form_urlencoded.json", body=form.replace(b"=true", b"=false"))
    )

    assert (first["statusCode"], again["statusCode"]) == (201, 201)
    lead = get_lead(invoke, response_json(first)["id"])
    assert lead["marketing_consent"]["given"] is False
    (merged,) = [a for a in lead["activities"] if a["type"] == "submission_merged"]
    change = merged["data"]["changes"]["marketing_consent"]
    assert (change["old"]["given"], change["new"]["given"]) == (True, False)
