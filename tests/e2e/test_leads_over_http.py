"""Capture a lead and read it back through the local stack's HTTP API, as a client would."""

import uuid

import pytest

from devstack.stack import LocalStack

from .conftest import Client

pytestmark = pytest.mark.e2e


def capture(client, email):
    return client.request(
        "POST", "/capture/form", data={"first_name": "Ada", "last_name": "Lovelace", "email": email}
    )


def test_a_form_capture_creates_a_lead_that_a_manager_can_read(client, local_stack):
    email = f"ada-{uuid.uuid4().hex[:8]}@example.com"

    created = capture(client, email)

    assert created.status == 201
    lead_id = created.json()["id"]
    token = local_stack.token("manager")
    lead = client.request("GET", f"/leads/{lead_id}", headers={"Authorization": f"Bearer {token}"})
    assert lead.status == 200
    body = lead.json()
    assert body["email"] == email
    assert body["lead_source"] == "website_form"
    assert body["lead_status"] == "new"


def test_reading_a_lead_needs_a_valid_token(client, local_stack):
    lead_id = capture(client, f"grace-{uuid.uuid4().hex[:8]}@example.com").json()["id"]

    anonymous = client.request("GET", f"/leads/{lead_id}")
    forged = client.request(
        "GET", f"/leads/{lead_id}", headers={"Authorization": "Bearer " + forge_token(local_stack)}
    )

    assert (anonymous.status, anonymous.json()) == (401, {"message": "Unauthorized"})
    assert (forged.status, forged.json()) == (401, {"message": "Unauthorized"})


def forge_token(local_stack):
    """A token with the right claims signed by a key that is not the stack's."""
    import jwt
    from cryptography.hazmat.primitives.asymmetric import rsa

    real = jwt.decode(local_stack.token("admin"), options={"verify_signature": False})
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return jwt.encode(real, other_key, algorithm="RS256")


def test_preflight_from_an_allowed_origin_gets_cors_headers_and_others_do_not(client):
    allowed = client.request(
        "OPTIONS",
        "/leads/123",
        headers={
            "Origin": "http://localhost:8000",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    other = client.request(
        "OPTIONS",
        "/leads/123",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )

    assert allowed.status == 204
    assert allowed.headers["access-control-allow-origin"] == "http://localhost:8000"
    assert "GET" in allowed.headers["access-control-allow-methods"]
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    assert allowed.headers["access-control-max-age"] == "600"
    assert other.headers.get("access-control-allow-origin") is None


def test_unknown_routes_answer_like_api_gateway(client):
    response = client.request("GET", "/no/such/route")

    assert (response.status, response.json()) == (404, {"message": "Not Found"})


def test_a_lead_captured_before_a_restart_is_still_there_after_it(tmp_path):
    email = f"restart-{uuid.uuid4().hex[:8]}@example.com"
    with LocalStack(port=0, data_dir=tmp_path, log=lambda _line: None, prewarm=False) as first:
        lead_id = capture(Client(first.url), email).json()["id"]

    with LocalStack(port=0, data_dir=tmp_path, log=lambda _line: None, prewarm=False) as second:
        token = second.token("admin")
        lead = Client(second.url).request(
            "GET", f"/leads/{lead_id}", headers={"Authorization": f"Bearer {token}"}
        )

    assert lead.status == 200
    assert lead.json()["email"] == email
