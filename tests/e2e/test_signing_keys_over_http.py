"""The signing keys exist as soon as the local stack is up, as after a plain `sam deploy`: the template's
secrets are in moto under the ARNs the functions are given, and a list page's cursor round-trips over HTTP.
(The unsubscribe key's round trip, signed by NotificationFunction and checked by UnsubscribeFunction, is
test_nurture_over_http.py's.)"""

import re
import uuid
from typing import Any

import pytest

from .conftest import Client

pytestmark = pytest.mark.e2e


def get(client: Client, path: str, token: str) -> Any:
    return client.request("GET", path, headers={"Authorization": f"Bearer {token}"})


def test_the_template_secrets_exist_with_generated_or_seeded_values(local_stack: Any) -> None:
    secrets = local_stack.clients.secretsmanager
    cursor_arn = local_stack.template.function("LeadQueriesFunction").environment["CURSOR_KEY_SECRET"]
    unsubscribe_arn = local_stack.template.function("UnsubscribeFunction").environment[
        "UNSUBSCRIBE_KEY_SECRET"
    ]

    assert secrets.describe_secret(SecretId=cursor_arn)["Name"] == "leadflow/dev/cursor-signing-key"
    assert re.fullmatch(r"[A-Za-z0-9]{64}", secrets.get_secret_value(SecretId=cursor_arn)["SecretString"])
    assert (
        secrets.get_secret_value(SecretId=unsubscribe_arn)["SecretString"] == "local-unsubscribe-signing-key"
    )


def test_a_page_cursor_signed_by_the_stack_brings_the_next_page(client: Client, local_stack: Any) -> None:
    admin = local_stack.token("admin")
    tag = uuid.uuid4().hex[:8]
    for index in range(3):
        created = client.request(
            "POST",
            "/capture/form",
            data={"first_name": "Cursor", "last_name": f"Keys{index}", "email": f"k{index}.{tag}@x.example"},
        )
        assert created.status == 201

    first = get(client, "/leads?limit=1", admin)
    second = get(client, f"/leads?limit=1&cursor={first.json()['next_cursor']}", admin)

    assert first.status == 200 and first.json()["next_cursor"]
    assert second.status == 200, second.body
    assert second.json()["items"][0]["id"] != first.json()["items"][0]["id"]
