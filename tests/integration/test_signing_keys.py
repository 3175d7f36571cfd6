"""The signing keys as deployed: Secrets Manager secrets that the stack generates (template.yaml
`CursorSigningKey`, `UnsubscribeSigningKey`), read by the real handlers through crm.platform.signing_keys.

moto holds the template's secrets under the very ARNs the functions are given (devstack's provisioning, in
the template's local account), so the handlers run as in the local stack. Every invocation is a cold start
(the `invoke` fixture clears cached settings and parameters), so a rotation shows at the next call."""

import copy
from typing import Any

import boto3
import pytest
from crm.leads.repository import LeadRepository

from devstack.provision import create_secrets
from devstack.seed import load_seed
from devstack.template import LOCAL_ACCOUNT_ID, Template
from tests.nurture_support import tokens
from tests.support import event, response_json

ADMIN = {"sub": "11111111-1111-4111-8111-000000000001", "cognito:groups": "[admin]"}
NEW_KEY = "rotated-in-key-0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRST"


@pytest.fixture
def local_account(monkeypatch: pytest.MonkeyPatch) -> None:
    """moto in the template's local account (before moto_stack makes the table), so secret ARNs match."""
    monkeypatch.setenv("MOTO_ACCOUNT_ID", LOCAL_ACCOUNT_ID)


@pytest.fixture
def secretsmanager(local_account: None, moto_stack: dict[str, Any]) -> Any:
    return boto3.client("secretsmanager", region_name="us-east-1")


def capture_leads(invoke: Any, count: int) -> list[str]:
    ids = []
    for index in range(count):
        body = {"first_name": "Page", "last_name": f"Turner{index}", "email": f"page{index}@example.com"}
        response = invoke("CaptureFunction", event("capture_form_json.json", body=body))
        assert response["statusCode"] == 201
        ids.append(str(response_json(response)["id"]))
    return ids


def list_page(invoke: Any, cursor: str | None = None) -> dict[str, Any]:
    """GET /leads?limit=1 (and the cursor) as an admin."""
    query = {"limit": "1", **({"cursor": cursor} if cursor else {})}
    sample = copy.deepcopy(event("list_leads.json"))
    sample["requestContext"]["authorizer"]["jwt"]["claims"].update(ADMIN)
    sample["queryStringParameters"] = query
    sample["rawQueryString"] = "&".join(f"{k}={v}" for k, v in query.items())
    response: dict[str, Any] = invoke("LeadQueriesFunction", sample)
    return response


def test_the_template_secrets_are_what_the_functions_read(
    secretsmanager: Any, template: Template, invoke: Any
) -> None:
    arns = create_secrets(secretsmanager, template, load_seed())

    assert (
        template.function("LeadQueriesFunction").environment["CURSOR_KEY_SECRET"] == arns["CursorSigningKey"]
    )
    for name in ("NotificationFunction", "UnsubscribeFunction"):
        assert template.function(name).environment["UNSUBSCRIBE_KEY_SECRET"] == arns["UnsubscribeSigningKey"]
    capture_leads(invoke, 2)
    first = list_page(invoke)
    second = list_page(invoke, response_json(first)["next_cursor"])
    assert (first["statusCode"], second["statusCode"]) == (200, 200)
    assert response_json(first)["items"][0]["id"] != response_json(second)["items"][0]["id"]


def test_new_cursors_are_signed_with_the_first_line_and_every_line_verifies(
    secretsmanager: Any, template: Template, invoke: Any
) -> None:
    secret = create_secrets(secretsmanager, template, load_seed())["CursorSigningKey"]
    generated = secretsmanager.get_secret_value(SecretId=secret)["SecretString"]
    capture_leads(invoke, 3)
    old_cursor = response_json(list_page(invoke))["next_cursor"]

    # A rotation: the new key on the first line, the generated one on the second.
    secretsmanager.put_secret_value(SecretId=secret, SecretString=f"{NEW_KEY}\n{generated}\n")
    new_cursor = response_json(list_page(invoke))["next_cursor"]
    with_old = list_page(invoke, old_cursor)
    with_new = list_page(invoke, new_cursor)

    assert new_cursor != old_cursor  # same query and position: only the key differs
    assert (with_old["statusCode"], with_new["statusCode"]) == (200, 200)
    assert response_json(with_old)["items"] == response_json(with_new)["items"]

    # The rotation ends: only the new key is left.
    secretsmanager.put_secret_value(SecretId=secret, SecretString=NEW_KEY)
    refused = list_page(invoke, old_cursor)
    still_good = list_page(invoke, new_cursor)

    assert refused["statusCode"] == 400
    assert [problem["field"] for problem in response_json(refused)["fields"]] == ["cursor"]
    assert still_good["statusCode"] == 200


def test_unsubscribe_links_verify_with_every_line_of_the_secret(
    secretsmanager: Any, template: Template, invoke: Any
) -> None:
    # The local stack's fixed key (devstack/seed.json), which the sample event's token is signed with.
    secret = create_secrets(secretsmanager, template, load_seed())["UnsubscribeSigningKey"]
    assert invoke("UnsubscribeFunction", event("unsubscribe_one_click.json"))["statusCode"] == 200

    secretsmanager.put_secret_value(SecretId=secret, SecretString=f"{NEW_KEY}\nlocal-unsubscribe-signing-key")
    kept = invoke("UnsubscribeFunction", event("unsubscribe_one_click.json"))
    secretsmanager.put_secret_value(SecretId=secret, SecretString=NEW_KEY)
    dropped = invoke("UnsubscribeFunction", event("unsubscribe_one_click.json"))

    assert kept["statusCode"] == 200 and response_json(kept)["unsubscribed"] is True
    assert dropped["statusCode"] == 400
    assert [problem["field"] for problem in response_json(dropped)["fields"]] == ["token"]


@pytest.mark.parametrize("state", ["missing", "blank"])
def test_a_missing_or_blank_secret_answers_503_and_nothing_is_changed(
    secretsmanager: Any, template: Template, invoke: Any, moto_stack: dict[str, Any], state: str
) -> None:
    if state == "blank":
        for secret in create_secrets(secretsmanager, template, load_seed()).values():
            secretsmanager.put_secret_value(SecretId=secret, SecretString=" \n \n")
    lead_id = capture_leads(invoke, 2)[0]
    # A genuine link (signed with the local stack's key) that cannot be checked without the secret.
    link = event("unsubscribe_one_click.json", queryStringParameters={"token": tokens().token_for(lead_id)})

    page = list_page(invoke)
    unsubscribed = invoke("UnsubscribeFunction", link)

    for response in (page, unsubscribed):
        assert response["statusCode"] == 503, response["body"]
        assert response_json(response)["error"] == "temporarily_unavailable"
        assert response["headers"]["Retry-After"] == "1"
    stored = LeadRepository(moto_stack["table"], client=moto_stack["dynamodb"]).get(lead_id)
    assert stored is not None and not stored.do_not_email
