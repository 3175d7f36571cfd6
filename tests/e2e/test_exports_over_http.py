"""CSV exports through the local stack's HTTP API, as a manager's or admin's browser would: capture leads,
ask for an export of them (`POST /exports` with the list's filters), follow the job until it completes, then
download the file from its presigned `download_url` with plain HTTP (S3 served on the stack's own port) and
read it back with `csv`. Reps are refused."""

import csv
import io
import time
import urllib.request
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from crm.exports.csv_rows import COLUMNS

from devstack.stack import LocalStack

from .conftest import Client
from .test_lifecycle_over_http import bearer

pytestmark = pytest.mark.e2e


def follow(client: Client, headers: dict[str, str], export_id: str, timeout: float = 90.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = client.request("GET", f"/exports/{export_id}", headers=headers)
        assert answer.status == 200, answer.body
        job: dict[str, Any] = answer.json()
        if job["state"] in ("completed", "failed") or time.monotonic() > deadline:
            return job
        time.sleep(0.5)


def test_an_admin_exports_captured_leads_and_downloads_the_csv(
    client: Client, local_stack: LocalStack
) -> None:
    tag = uuid.uuid4().hex[:8]
    since = (datetime.now(UTC) - timedelta(seconds=2)).strftime("%Y-%m-%dT%H:%M:%SZ")
    people = [
        {"first_name": "Zoë", "last_name": f"Ångström{tag}", "company": "Café Müller"},
        {"first_name": "Grace", "last_name": f"Hopper{tag}", "company": '=HYPERLINK("http://evil")'},
        {"first_name": "Ada", "last_name": f"Lovelace{tag}", "company": "Analytical Engines, Ltd."},
    ]
    ids: dict[str, dict[str, str]] = {}
    for index, person in enumerate(people):
        answer = client.request(
            "POST",
            "/capture/form",
            json_body={**person, "email": f"export-{tag}-{index}@example.com", "utm_source": f"u{tag}"},
        )
        assert answer.status == 201, answer.body
        ids[answer.json()["id"]] = person
    admin = bearer(local_stack, "admin")

    asked = client.request("POST", "/exports", json_body={"created_from": since}, headers=admin)
    assert asked.status == 202, asked.body
    accepted = asked.json()
    assert accepted["state"] == "queued"
    assert asked.headers["Location"] == f"/exports/{accepted['id']}"

    job = follow(client, admin, accepted["id"])
    assert job["state"] == "completed", job
    assert job["requested_by"].startswith("user:")
    assert job["download_url"].startswith(local_stack.url)  # through the stack's port, as from a browser
    assert job["expires_at"] > job["finished_at"]

    with urllib.request.urlopen(job["download_url"], timeout=30) as response:  # plain HTTP, no credentials
        data = response.read()
        assert response.headers["Content-Type"].startswith("text/csv")
    assert data.startswith(b"\xef\xbb\xbf")
    rows = list(csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline="")))
    assert rows and list(rows[0]) == list(COLUMNS)
    assert job["rows_written"] == len(rows)
    found = {row["id"]: row for row in rows if row["id"] in ids}
    assert set(found) == set(ids)  # every lead captured, each once
    assert len({row["id"] for row in rows}) == len(rows)
    for lead_id, person in ids.items():
        row = found[lead_id]
        assert (row["first_name"], row["last_name"]) == (person["first_name"], person["last_name"])
        assert row["status"] == "new" and row["lead_source"] == "website_form"
        assert f"u{tag}" in row["custom_fields"]
    companies = {found[i]["company"] for i in ids}
    assert companies == {"Café Müller", '\'=HYPERLINK("http://evil")', "Analytical Engines, Ltd."}

    listed = client.request("GET", "/exports?limit=100", headers=admin)
    assert listed.status == 200
    assert accepted["id"] in {item["id"] for item in listed.json()["items"]}


def test_reps_cannot_export_and_a_bad_filter_is_refused(client: Client, local_stack: LocalStack) -> None:
    rep = bearer(local_stack, "rep1")
    assert client.request("POST", "/exports", json_body={}, headers=rep).status == 403
    assert client.request("GET", "/exports", headers=rep).status == 403

    manager = bearer(local_stack, "manager")
    refused = client.request(
        "POST", "/exports", json_body={"grade": "A", "sort": "created_at"}, headers=manager
    )
    assert refused.status == 400
    assert {f["field"] for f in refused.json()["fields"]} == {"grade"}
    typed = client.request("POST", "/exports", json_body={"qualified": "yes"}, headers=manager)
    assert typed.status == 422
    assert typed.json()["fields"][0]["field"] == "qualified"

    mine = client.request("POST", "/exports", headers=manager)  # no body: every lead the manager may list
    assert mine.status == 202
    job = follow(client, manager, mine.json()["id"])
    assert job["state"] == "completed"
    # The admin sees the manager's export; a rep does not.
    assert client.request("GET", f"/exports/{job['id']}", headers=bearer(local_stack, "admin")).status == 200
    assert client.request("GET", f"/exports/{job['id']}", headers=rep).status == 403
