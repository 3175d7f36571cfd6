"""Nurture through the real local stack with its clock moved forward, as the lead sees it: a low-score lead
gets step 1 of the default sequence with a one-click unsubscribe link, unsubscribes with it, and gets nothing
more.

These tests move the stack's clock by days, so they run on a stack of their own (`clock_stack`).
"""

import time
import uuid
from typing import Any
from urllib.parse import urlsplit

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_assignment_over_http import bearer, eventually

pytestmark = pytest.mark.e2e

HOUR = 3600
SETTLE_SECONDS = 3.0  # long enough for a queued job to reach the outbox (they take well under a second)


def emails_to(stack: LocalStack, address: str) -> list[dict[str, Any]]:
    return [m for m in stack.outbox() if address in m["to"]]


def lead(http: Client, stack: LocalStack, lead_id: str) -> dict[str, Any]:
    response = http.request("GET", f"/leads/{lead_id}", headers=bearer(stack, "admin"))
    assert response.status == 200
    body: dict[str, Any] = response.json()
    return body


def activity_types(body: dict[str, Any]) -> list[str]:
    return [a["type"] for a in body["activities"]]


def test_the_default_sequence_is_there_out_of_the_box(http: Client, clock_stack: LocalStack) -> None:
    response = http.request("GET", "/nurture-sequences", headers=bearer(clock_stack, "rep"))

    assert response.status == 200
    (default,) = [s for s in response.json()["sequences"] if s["id"] == "seed-default-nurture"]
    assert default["active"] and default["conditions"] == []
    assert [(s["delay_hours"], s["template"]) for s in default["steps"]] == [
        (1, "leadflow-dev-nurture-welcome"),
        (72, "leadflow-dev-nurture-resources"),
        (168, "leadflow-dev-nurture-check-in"),
    ]


def test_a_nurture_lead_gets_step_one_then_unsubscribes_in_one_click_and_gets_nothing_more(
    http: Client, clock_stack: LocalStack
) -> None:
    address = f"ada-{uuid.uuid4().hex[:8]}@example.com"
    captured = http.request(
        "POST",
        "/capture/form",
        data={
            "first_name": "Ada",
            "last_name": "Nurture",
            "email": address,
            "company": "Acme & Co",
            "marketing_consent": "on",  # the form's "email me" checkbox
        },
    )
    assert captured.status == 201
    lead_id = captured.json()["id"]
    # Scored low (nothing the seed rules reward), so marked nurture and enrolled in the default sequence.
    enrolled = eventually(
        lambda: (b := lead(http, clock_stack, lead_id)) and "nurture_enrolled" in activity_types(b) and b
    )
    assert (
        enrolled["nurture"] is True and enrolled["assigned_to"] is None and enrolled["do_not_email"] is False
    )
    clock_stack.run_schedule("FollowUpsFunction")
    time.sleep(SETTLE_SECONDS)
    assert emails_to(clock_stack, address) == []  # step 1 is due an hour after enrollment

    clock_stack.advance_clock(HOUR + 120)  # fires the due schedules, FollowUpsFunction among them
    clock_stack.run_schedule("FollowUpsFunction")  # and an overlapping run: nothing is sent twice
    (email,) = eventually(lambda: emails_to(clock_stack, address))
    time.sleep(SETTLE_SECONDS)
    assert len(emails_to(clock_stack, address)) == 1

    assert email["subject"] == "Thanks for your interest, Ada"
    assert email["headers"]["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    link = email["headers"]["List-Unsubscribe"].strip("<>")
    assert link.startswith(f"{clock_stack.url}/unsubscribe?token={lead_id}.")
    assert "on behalf of Acme &amp; Co" in email["html"] and f'href="{link}"' in email["html"]
    assert link in email["text"]

    # A mail scanner (or the person) opening the link changes nothing: the page asks to confirm.
    target = urlsplit(link)
    opened = http.request("GET", f"{target.path}?{target.query}")
    assert opened.status == 200 and opened.headers["Content-Type"].startswith("text/html")
    assert b"Unsubscribe from our marketing email?" in opened.body and b'method="post"' in opened.body
    time.sleep(SETTLE_SECONDS)
    assert lead(http, clock_stack, lead_id)["do_not_email"] is False

    # The mail client's one-click button: POST the header's URL with List-Unsubscribe=One-Click.
    clicked = http.request("POST", f"{target.path}?{target.query}", data={"List-Unsubscribe": "One-Click"})
    assert clicked.status == 200 and clicked.json()["unsubscribed"] is True
    stopped = eventually(
        lambda: (b := lead(http, clock_stack, lead_id)) and "nurture_stopped" in activity_types(b) and b
    )
    assert stopped["do_not_email"] is True and stopped["do_not_email_reason"] == "unsubscribed"
    assert stopped["marketing_consent"]["given"] is False  # unsubscribing withdraws the consent
    assert stopped["marketing_consent"]["channel"] == "unsubscribe"
    (reason,) = [a["data"]["reason"] for a in stopped["activities"] if a["type"] == "nurture_stopped"]
    assert reason == "unsubscribed"
    # The confirmation page's button posts the form; a browser gets a page back.
    confirmed = http.request(
        "POST",
        f"{target.path}?{target.query}",
        data={"token": target.query[len("token=") :]},
        headers={"Accept": "text/html"},
    )
    assert confirmed.status == 200 and b"You are unsubscribed" in confirmed.body

    clock_stack.advance_clock(72 * HOUR + 120)  # past step 2
    clock_stack.run_schedule("FollowUpsFunction")
    time.sleep(SETTLE_SECONDS)

    assert len(emails_to(clock_stack, address)) == 1
    sent = [a for a in lead(http, clock_stack, lead_id)["activities"] if a["type"] == "nurture_email_sent"]
    assert len(sent) == 1 and int(sent[0]["data"]["step"]) == 1


def test_a_forged_or_missing_token_is_refused_and_changes_nothing(
    http: Client, clock_stack: LocalStack
) -> None:
    lead_id = http.request(
        "POST",
        "/capture/form",
        data={
            "first_name": "Grace",
            "last_name": "Link",
            "email": f"grace-{uuid.uuid4().hex[:8]}@example.com",
        },
    ).json()["id"]
    forged = http.request("GET", f"/unsubscribe?token={lead_id}.not-the-signature")
    missing = http.request("POST", "/unsubscribe", data={"List-Unsubscribe": "One-Click"})

    assert forged.status == 400 and [f["field"] for f in forged.json()["fields"]] == ["token"]
    assert missing.status == 400 and [f["field"] for f in missing.json()["fields"]] == ["token"]
    assert lead(http, clock_stack, lead_id)["do_not_email"] is False


def test_a_lead_who_did_not_agree_to_marketing_email_is_not_nurtured(
    http: Client, clock_stack: LocalStack
) -> None:
    address = f"quiet-{uuid.uuid4().hex[:8]}@example.com"
    lead_id = http.request(
        "POST", "/capture/form", data={"first_name": "Quiet", "last_name": "Lead", "email": address}
    ).json()["id"]
    scored = eventually(lambda: (b := lead(http, clock_stack, lead_id)) and b["nurture"] and b)
    assert scored["marketing_consent"] is None
    clock_stack.advance_clock(HOUR + 120)
    clock_stack.run_schedule("FollowUpsFunction")
    time.sleep(SETTLE_SECONDS)

    assert emails_to(clock_stack, address) == []
    assert "nurture_enrolled" not in activity_types(lead(http, clock_stack, lead_id))
