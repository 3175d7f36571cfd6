"""The public capture routes' captcha check, on a local stack of its own started with a `CaptchaSecret`:
the stack's stand-in provider (devstack/captcha.py) accepts Cloudflare's test token only."""

import uuid

import pytest

from devstack.captcha import PASSING_TOKEN
from devstack.stack import LocalStack

from .conftest import Client
from .test_assignment_over_http import bearer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def captcha_stack(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("devstack-captcha")
    stack = LocalStack(
        port=0,
        data_dir=data_dir,
        tables_in_memory=True,
        parameter_overrides={"CaptchaSecret": "local-captcha-secret"},
        workers_per_function=1,
        log=lambda _line: None,
    )
    with stack:
        yield stack


def person() -> dict[str, str]:
    return {"first_name": "Cap", "last_name": "Tcha", "email": f"cap-{uuid.uuid4().hex[:8]}@example.com"}


def activity_types(stack: LocalStack, lead_id: str) -> list[str]:
    lead = Client(stack.url).request("GET", f"/leads/{lead_id}", headers=bearer(stack, "admin"))
    assert lead.status == 200, lead.body
    return [activity["type"] for activity in lead.json()["activities"]]


@pytest.mark.parametrize("field", ["cf-turnstile-response", "g-recaptcha-response", "captcha_token"])
def test_a_solved_captcha_lets_the_form_through_and_the_token_is_not_kept(
    captcha_stack: LocalStack, field: str
) -> None:
    client = Client(captcha_stack.url)
    sent = person()
    response = client.request("POST", "/capture/form", data={**sent, field: PASSING_TOKEN})

    assert response.status == 201, response.body
    lead = client.request("GET", f"/leads/{response.json()['id']}", headers=bearer(captcha_stack, "admin"))
    assert lead.json()["custom_fields"] == {}


@pytest.mark.parametrize("token", [None, "", "forged-token"])
def test_a_missing_or_rejected_captcha_is_422_naming_it_and_stores_nothing(
    captcha_stack: LocalStack, token: str | None
) -> None:
    client = Client(captcha_stack.url)
    sent = person()
    form = sent if token is None else {**sent, "cf-turnstile-response": token}
    chat = {**sent, "transcript": "hi"} | ({} if token is None else {"captcha_token": token})

    for response in (
        client.request("POST", "/capture/form", data=form),
        client.request("POST", "/capture/chat", json_body=chat),
    ):
        assert response.status == 422, response.body
        assert [f["field"] for f in response.json()["fields"]] == ["captcha_token"]
    # Solved now: a brand-new lead, so the refused submissions stored nothing.
    solved = client.request("POST", "/capture/form", data={**sent, "captcha_token": PASSING_TOKEN})
    assert solved.status == 201
    assert "submission_merged" not in activity_types(captcha_stack, solved.json()["id"])


def test_the_chat_route_checks_the_captcha_too(captcha_stack: LocalStack) -> None:
    client = Client(captcha_stack.url)
    response = client.request(
        "POST", "/capture/chat", json_body={**person(), "transcript": "hi", "captcha_token": PASSING_TOKEN}
    )
    assert response.status == 201, response.body
