"""The webhook subscriptions API and the delivery worker, in-process on moto: the API's answers and errors,
a delivery signed and sent to a receiver on 127.0.0.1, a retry re-queued with a delay, the dedupe."""

import json
from typing import Any

import boto3
import pytest

from tests.support import event, response_json

ADMIN = {"sub": "5f0b7c1e-0a11-4d2b-9a01-000000000001", "cognito:groups": "[admin]"}
REP = {"sub": "5f0b7c1e-0a11-4d2b-9a01-000000000011", "cognito:groups": "[rep]"}


def call(
    invoke: Any, method: str, path: str, body: Any = None, claims: dict[str, str] = ADMIN
) -> tuple[int, Any]:
    data = event("create_user.json")
    data["rawPath"] = data["requestContext"]["http"]["path"] = path
    data["requestContext"]["http"]["method"] = method
    data["routeKey"] = data["requestContext"]["routeKey"] = f"{method} {path}"
    data["requestContext"]["authorizer"]["jwt"]["claims"] = {"email": "admin@demo.leadflow.local", **claims}
    data["body"] = None if body is None else json.dumps(body)
    data["rawQueryString"] = ""
    data["queryStringParameters"] = None
    response = invoke("WebhooksApiFunction", data)
    return response["statusCode"], response_json(response) if response.get("body") else None


@pytest.fixture
def webhooks_aws(
    moto_stack: dict[str, Any], function_env: Any, monkeypatch: pytest.MonkeyPatch
) -> dict[str, Any]:
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="deliveries")["QueueUrl"]
    dead = sqs.create_queue(QueueName="dead")["QueueUrl"]
    function_env.pin(
        WEBHOOK_QUEUE_URL=queue, WEBHOOK_DEAD_LETTER_QUEUE_URL=dead, WEBHOOK_ALLOW_LOOPBACK="true"
    )
    return {**moto_stack, "sqs": sqs, "queue": queue, "dead": dead}


def test_an_admin_manages_subscriptions_and_others_are_refused(
    webhooks_aws: dict[str, Any], invoke: Any
) -> None:
    status, created = call(
        invoke,
        "POST",
        "/webhook-subscriptions",
        {"url": "https://hooks.example.com/leadflow", "events": ["lead.converted", "lead.captured"]},
    )
    assert status == 201, created
    assert created["secret"].startswith("whsec_") and created["events"] == ["lead.captured", "lead.converted"]

    status, shown = call(invoke, "GET", f"/webhook-subscriptions/{created['id']}")
    assert status == 200 and "secret" not in shown
    status, paused = call(invoke, "PATCH", f"/webhook-subscriptions/{created['id']}", {"state": "paused"})
    assert (status, paused["state"], paused["version"]) == (200, "paused", 2)
    assert call(invoke, "GET", "/webhook-subscriptions", claims=REP)[0] == 403
    assert call(invoke, "POST", "/webhook-subscriptions", {"url": "x"}, claims=REP)[0] == 403
    status, body = call(invoke, "PATCH", f"/webhook-subscriptions/{created['id']}", {"state": "sleeping"})
    assert status == 422 and "state" in json.dumps(body)
    status, body = call(
        invoke, "POST", "/webhook-subscriptions", {"url": "https://127.0.0.1/x", "events": ["lead.captured"]}
    )
    assert status == 422 and body["fields"][0]["field"] == "url"
    assert call(invoke, "DELETE", f"/webhook-subscriptions/{created['id']}")[0] == 204
    assert call(invoke, "DELETE", f"/webhook-subscriptions/{created['id']}")[0] == 404


def test_a_bus_event_is_fanned_out_and_delivered_signed_from_the_sample_events(
    webhooks_aws: dict[str, Any], invoke: Any
) -> None:
    import hashlib
    import hmac
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    received: list[tuple[dict[str, str], bytes]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            received.append((dict(self.headers), self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            return

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        # Given a subscription (the sample request, pointed at a receiver on this machine)
        request = event("create_webhook_subscription.json")
        body = json.loads(request["body"])
        request["body"] = json.dumps({**body, "url": f"http://127.0.0.1:{server.server_address[1]}/hook"})
        created = invoke("WebhooksApiFunction", request)
        assert created["statusCode"] == 201, created["body"]
        secret = response_json(created)["secret"]

        # When the bus's rule delivers lead.converted, and then the queued delivery is processed
        assert invoke("WebhooksFunction", event("webhook_lead_event.json")) == {"deliveries": 1}
        [message] = webhooks_aws["sqs"].receive_message(QueueUrl=webhooks_aws["queue"]).get("Messages", [])
        batch = event("rescore_page.json")
        batch["Records"] = [{**batch["Records"][0], "body": message["Body"]}]
        assert invoke("WebhooksFunction", batch) == {"batchItemFailures": []}
    finally:
        server.shutdown()

    # Then the receiver got it once, signed with the subscription's secret
    [(headers, raw)] = received
    parts = dict(part.split("=", 1) for part in headers["X-Signature"].split(","))
    expected = hmac.new(secret.encode(), parts["t"].encode() + b"." + raw, hashlib.sha256).hexdigest()
    assert parts["v1"] == expected
    delivered = json.loads(raw)
    assert (delivered["detail-type"], delivered["detail"]["deal_id"]) == ("lead.converted", "D-1")
    assert headers["X-Event-Id"] == delivered["detail"]["id"]
    assert set(delivered) == {"source", "detail-type", "detail"}
