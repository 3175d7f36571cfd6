"""Outbound webhooks over the local stack: an admin subscribes a receiver on 127.0.0.1, which gets signed
deliveries of a lead's lead.captured and lead.converted once each, even when the bus delivers them again; a
receiver that answers 500 twice gets the event on the third attempt; the test ping; the SSRF guard."""

import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_lifecycle_over_http import assign_directly, patch_status

pytestmark = pytest.mark.e2e
LOG: list[str] = []


class Receiver:
    """A webhook receiver on 127.0.0.1: records every POST; answers the codes queued in `answers` first."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.answers: dict[str, list[int]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with receiver.lock:
                    queued = receiver.answers.get(self.path) or []
                    status = queued.pop(0) if queued else 200
                    receiver.requests.append(
                        {"path": self.path, "headers": dict(self.headers), "body": body, "status": status}
                    )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{path}"

    def received(self, path: str, lead_id: str | None = None) -> list[dict[str, Any]]:
        with self.lock:
            found = [r for r in self.requests if r["path"] == path]
        if lead_id is not None:
            found = [r for r in found if json.loads(r["body"])["detail"].get("lead_id") == lead_id]
        return found


@pytest.fixture(scope="module")
def webhook_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """A stack of this module's own whose retries wait about a second, not thirty."""
    stack = LocalStack(
        port=0,
        data_dir=tmp_path_factory.mktemp("devstack-webhooks"),
        tables_in_memory=True,
        workers_per_function=1,
        parameter_overrides={"WebhookRetryBaseSeconds": "1"},
        log=LOG.append,
    )
    with stack:
        yield stack


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    server.thread.start()
    yield server
    server.server.shutdown()


def admin(stack: LocalStack) -> dict[str, str]:
    return {"Authorization": f"Bearer {stack.token('admin')}"}


def verify(request: dict[str, Any], secret: str) -> None:
    """What a subscriber does: the HMAC-SHA256 of "{t}.{body}" with the secret must be the v1 signature."""
    parts = dict(part.split("=", 1) for part in request["headers"]["X-Signature"].split(","))
    expected = hmac.new(
        secret.encode(), f"{parts['t']}.".encode() + request["body"], hashlib.sha256
    ).hexdigest()
    assert hmac.compare_digest(parts["v1"], expected)
    assert abs(int(parts["t"]) - time.time()) < 300
    assert request["headers"]["X-Event-Id"] == json.loads(request["body"])["detail"]["id"]


def wait_until(condition: Any, timeout: float = 40.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "not delivered in time"
        time.sleep(0.3)


def capture(client: Client, tag: str) -> str:
    response = client.request(
        "POST",
        "/capture/form",
        data={
            "first_name": "Ada",
            "last_name": "Byron",
            "email": f"ada-{tag}@engine-{tag}.example",
            "company": f"Engine {tag}",
        },
    )
    assert response.status == 201, response.body
    return str(response.json()["id"])


def subscribe(client: Client, stack: LocalStack, url: str, events: list[str]) -> dict[str, Any]:
    response = client.request(
        "POST",
        "/webhook-subscriptions",
        json_body={"url": url, "events": events, "description": "test"},
        headers=admin(stack),
    )
    assert response.status == 201, (response.body, [line for line in LOG if "Webhooks" in line][-30:])
    return dict(response.json())


def test_signed_deliveries_once_each_even_when_the_bus_delivers_again(
    webhook_stack: LocalStack, receiver: Receiver
) -> None:
    client = Client(webhook_stack.url)
    subscription = subscribe(client, webhook_stack, receiver.url("/crm"), ["lead.captured", "lead.converted"])
    assert subscription["secret"].startswith("whsec_") and subscription["state"] == "active"
    shown = client.request(
        "GET", f"/webhook-subscriptions/{subscription['id']}", headers=admin(webhook_stack)
    )
    assert shown.status == 200 and "secret" not in shown.json()  # shown once, at creation

    lead_id = capture(client, uuid.uuid4().hex[:8])
    assign_directly(webhook_stack, lead_id, "rep1")
    rep1 = {"Authorization": f"Bearer {webhook_stack.token(user='rep1')}"}
    assert patch_status(client, lead_id, "contacted", rep1).status == 200
    qualified = client.request(
        "POST",
        f"/leads/{lead_id}/qualify",
        json_body={"has_budget": True, "has_authority": True, "has_need": True, "has_timeline": True},
        headers=rep1,
    )
    assert qualified.status == 200, qualified.body
    assert client.request("POST", f"/leads/{lead_id}/convert", json_body={}, headers=rep1).status == 201

    wait_until(lambda: len(receiver.received("/crm", lead_id)) >= 2)
    # Forced redelivery: the bus delivers the same events again (EventBridge is at least once).
    published = [
        e
        for e in client.request("GET", "/_local/events?last=500").json()
        if e["detail"].get("lead_id") == lead_id and e["detail-type"] in ("lead.captured", "lead.converted")
    ]
    assert len(published) == 2
    assert webhook_stack.template is not None
    bus = webhook_stack.template.event_buses[0]
    webhook_stack.clients.events.put_events(
        Entries=[
            {
                "Source": e["source"],
                "DetailType": e["detail-type"],
                "Detail": json.dumps(e["detail"]),
                "EventBusName": bus,
            }
            for e in published
        ]
    )
    time.sleep(5)

    got = receiver.received("/crm", lead_id)
    assert [json.loads(r["body"])["detail-type"] for r in got] == ["lead.captured", "lead.converted"]
    for request in got:
        verify(request, subscription["secret"])
    converted = json.loads(got[1]["body"])["detail"]
    assert converted["contact_id"] and converted["deal_id"] and converted["company_id"]
    deliveries = client.request(
        "GET", f"/webhook-subscriptions/{subscription['id']}/deliveries", headers=admin(webhook_stack)
    ).json()["items"]
    mine = {d["event_id"] for d in deliveries if d["state"] == "delivered"}
    assert {json.loads(r["body"])["detail"]["id"] for r in got} <= mine


def test_a_receiver_answering_500_twice_gets_the_event_on_the_third_attempt(
    webhook_stack: LocalStack, receiver: Receiver
) -> None:
    client = Client(webhook_stack.url)
    subscription = subscribe(client, webhook_stack, receiver.url("/flaky"), ["lead.captured"])
    receiver.answers["/flaky"] = [500, 500]

    lead_id = capture(client, uuid.uuid4().hex[:8])

    wait_until(lambda: any(r["status"] == 200 for r in receiver.received("/flaky", lead_id)))
    got = receiver.received("/flaky", lead_id)
    assert [r["status"] for r in got] == [500, 500, 200]
    assert len({r["headers"]["X-Event-Id"] for r in got}) == 1  # the same event, three times
    for request in got:
        verify(request, subscription["secret"])
    attempts = client.request(
        "GET", f"/webhook-subscriptions/{subscription['id']}/deliveries", headers=admin(webhook_stack)
    ).json()["items"]
    assert sorted((a["attempt"], a["status_code"]) for a in attempts) == [(1, 500), (2, 500), (3, 200)]
    assert all(a["latency_ms"] >= 0 and a["state"] == "delivered" for a in attempts)


def test_ping_pause_resume_delete_and_the_ssrf_guard(webhook_stack: LocalStack, receiver: Receiver) -> None:
    client = Client(webhook_stack.url)
    subscription = subscribe(client, webhook_stack, receiver.url("/ping"), ["lead.converted"])
    path = f"/webhook-subscriptions/{subscription['id']}"

    ping = client.request("POST", f"{path}/test", headers=admin(webhook_stack))
    assert ping.status == 200, ping.body
    assert ping.json()["delivered"] is True and ping.json()["status_code"] == 200
    [received] = receiver.received("/ping")
    assert json.loads(received["body"])["detail-type"] == "ping"
    verify(received, subscription["secret"])

    paused = client.request("PATCH", path, json_body={"state": "paused"}, headers=admin(webhook_stack))
    assert (paused.status, paused.json()["state"]) == (200, "paused")
    resumed = client.request(
        "PATCH",
        path,
        json_body={"state": "active", "events": ["lead.captured"]},
        headers=admin(webhook_stack),
    )
    assert (resumed.json()["state"], resumed.json()["events"]) == ("active", ["lead.captured"])
    listed = client.request("GET", "/webhook-subscriptions", headers=admin(webhook_stack)).json()["items"]
    assert subscription["id"] in {s["id"] for s in listed}

    for url, field in (
        ("http://example.com/hook", "url"),
        ("https://10.0.0.7/hook", "url"),
        ("https://169.254.169.254/latest/meta-data", "url"),
    ):
        refused = client.request(
            "POST",
            "/webhook-subscriptions",
            json_body={"url": url, "events": ["lead.captured"]},
            headers=admin(webhook_stack),
        )
        assert refused.status == 422, (url, refused.body)
        assert field in refused.body.decode()
    unknown = client.request(
        "POST",
        "/webhook-subscriptions",
        json_body={"url": "https://example.com/h", "events": ["lead.nope"]},
        headers=admin(webhook_stack),
    )
    assert unknown.status == 422 and "events" in unknown.body.decode()
    as_manager = client.request(
        "POST",
        "/webhook-subscriptions",
        json_body={"url": "https://example.com/h", "events": ["lead.captured"]},
        headers={"Authorization": f"Bearer {webhook_stack.token('manager')}"},
    )
    assert as_manager.status == 403

    assert client.request("DELETE", path, headers=admin(webhook_stack)).status == 204
    assert client.request("GET", path, headers=admin(webhook_stack)).status == 404
