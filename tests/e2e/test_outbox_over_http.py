"""The local outbox over HTTP: the mail a captured lead causes (the rep's assignment email) carries when it
was sent, and the whole outbox reads newest first across every kind of mail."""

import uuid

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_assignment_over_http import eventually, qualifying_lead

pytestmark = pytest.mark.e2e


def test_sent_mail_has_a_time_and_the_outbox_is_newest_first(client: Client, local_stack: LocalStack) -> None:
    email = f"outbox-{uuid.uuid4().hex[:8]}@navy-research.com"
    captured = client.request("POST", "/capture/form", json_body=qualifying_lead(email))
    assert captured.status == 201, captured.body
    lead_id = captured.json()["id"]

    def outbox() -> list[dict]:
        response = client.request("GET", "/_local/outbox.json")
        assert response.status == 200
        return list(response.json())

    mine = eventually(lambda: [m for m in outbox() if lead_id in (m.get("html") or m.get("text") or "")])
    assert all(m["sent_at"] for m in mine)
    everything = outbox()
    stamped = [m["sent_at"] for m in everything]
    assert all(stamped) and stamped == sorted(stamped, reverse=True)
