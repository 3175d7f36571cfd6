"""A broken unsubscribe link clicked in a browser gets a small HTML page, not JSON: the real handler, with
the sample event (a browser's `Accept`). API clients still get the JSON error naming `token`."""

from collections.abc import Iterator
from typing import Any

import pytest

from tests.nurture_support import UNSUBSCRIBE_KEY, tokens
from tests.support import event, response_json

BROWSER = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"


@pytest.fixture
def unsubscribe_key(moto_stack: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("UNSUBSCRIBE_SIGNING_KEY", UNSUBSCRIBE_KEY)
    yield


def link(token: str | None, accept: str | None) -> dict[str, Any]:
    sample = event("unsubscribe_link.json", queryStringParameters=None if token is None else {"token": token})
    sample["headers"].pop("accept", None)
    if accept is not None:
        sample["headers"]["accept"] = accept
    return sample


FORGED = tokens("guessed-key").token_for("6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10")


@pytest.mark.usefixtures("unsubscribe_key")
@pytest.mark.parametrize("token", [None, "not-a-token", FORGED], ids=["missing", "malformed", "forged"])
@pytest.mark.parametrize("accept", [BROWSER, "text/html"])
def test_a_browser_gets_a_page_saying_the_link_is_not_valid(
    invoke: Any, token: str | None, accept: str
) -> None:
    response = invoke("UnsubscribeFunction", link(token, accept))

    assert response["statusCode"] == 400
    headers = response["headers"]
    assert headers["Content-Type"].startswith("text/html")
    assert "This unsubscribe link is not valid" in response["body"]
    assert "token" not in response["body"] and "signature" not in response["body"].lower()
    success = invoke(
        "UnsubscribeFunction", link(tokens().token_for("6f1c1b8e-2a52-4a53-9d8e-3f6f4a1c2b10"), accept)
    )
    assert success["statusCode"] == 200
    for name in ("Cache-Control", "Referrer-Policy", "Content-Security-Policy"):
        assert headers[name] == success["headers"][name], name


@pytest.mark.usefixtures("unsubscribe_key")
@pytest.mark.parametrize("accept", [None, "application/json", "*/*", "application/json, text/html;q=0.5"])
def test_an_api_client_gets_the_json_error_naming_token(invoke: Any, accept: str | None) -> None:
    response = invoke("UnsubscribeFunction", link("not-a-token", accept))

    assert response["statusCode"] == 400
    assert response["headers"]["Content-Type"].startswith("application/json")
    body = response_json(response)
    assert body["error"] == "bad_query" and [f["field"] for f in body["fields"]] == ["token"]


@pytest.mark.usefixtures("unsubscribe_key")
def test_a_one_click_post_with_a_bad_token_stays_json(invoke: Any) -> None:
    sample = event("unsubscribe_one_click.json", queryStringParameters={"token": "not-a-token"})
    sample["headers"]["accept"] = BROWSER

    response = invoke("UnsubscribeFunction", sample)

    assert response["statusCode"] == 400
    assert [f["field"] for f in response_json(response)["fields"]] == ["token"]
