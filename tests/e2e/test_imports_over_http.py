"""A CSV import through the local stack, as a manager's browser would do it: `POST /imports`, a plain HTTP
`PUT` of tests/data/leads_1000.csv to the presigned `upload_url` (S3 on the stack's own port), the upload's
S3 event starts the import, `GET /imports/{id}` until it completes with created 970, merged 20, rejected 10;
the rejects file names each row's field; the imported leads are found by search and in the list."""

import csv
import io
import json
import re
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import LocalStack

from .conftest import Client

pytestmark = pytest.mark.e2e

DATA = Path(__file__).resolve().parents[1] / "data" / "leads_1000.csv"
# Rows of the file that break a rule, and the field each one's reason names (tests/data/make_leads_csv.py).
INVALID = {
    50: "email",
    150: "email",
    250: "first_name",
    350: "last_name",
    450: "first_name",
    550: "phone",
    650: "employee_count",
    750: "annual_revenue",
    850: "lead_source",
    950: "marketing_consent",
}


def eventually(check: Any, timeout: float = 900.0, interval: float = 1.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def raw(method: str, url: str, body: bytes | None = None) -> tuple[int, bytes]:
    """Plain HTTP to a presigned URL: no signature of ours, no token."""
    request = urllib.request.Request(url, data=body, method=method)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A stack of this module's own: a thousand imported leads keep a pipeline busy for minutes, which would
    hold up the tests that share the session's stack (their leads wait behind the import's)."""
    data_dir = tmp_path_factory.mktemp("devstack-imports")
    with LocalStack(port=0, data_dir=data_dir, log=lambda _line: None, tables_in_memory=True) as stack:
        yield stack


@pytest.fixture(scope="module")
def client(local_stack: LocalStack) -> Client:
    return Client(local_stack.url)


def test_a_manager_imports_a_thousand_rows_and_reads_the_rejected_ones(
    client: Client, local_stack: Any
) -> None:
    domain = f"imp{uuid.uuid4().hex[:8]}.example"  # a fresh domain: the file's people are new to this stack
    data = re.sub(rb"(?i)import-test\.example", domain.encode(), DATA.read_bytes())  # repeats are upper case
    manager = local_stack.token("manager")

    created = client.request(
        "POST",
        "/imports",
        json_body={"filename": "leads_1000.csv", "default_source": "spreadsheet"},
        headers=auth(manager),
    )
    assert created.status == 201, created.body
    started = created.json()
    assert started["state"] == "waiting_for_upload" and started["expires_at"]
    assert started["upload_url"].startswith(local_stack.url + "/_s3/")
    assert created.headers["Location"] == f"/imports/{started['id']}"

    status, _ = raw("PUT", started["upload_url"], data)
    assert status == 200

    def finished() -> dict[str, Any] | None:
        job = client.request("GET", f"/imports/{started['id']}", headers=auth(manager)).json()
        return job if job["state"] in ("completed", "failed") else None

    job = eventually(finished)  # minutes on a loaded machine: 1,000 leads are scored and routed meanwhile
    assert job is not None, "the import did not finish"
    assert job["state"] == "completed", job
    assert (job["created"], job["merged"], job["rejected"]) == (970, 20, 10)
    assert job["rows_read"] == job["rows_total"] == 1000 and job["bytes_read"] == job["bytes_total"] == len(
        data
    )
    assert job["requested_by"].startswith("user:") and job["started_at"] and job["finished_at"]

    status, body = raw("GET", job["rejects_url"])
    assert status == 200
    rejects = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    reasons = {int(row["row_number"]): row["reason"] for row in rejects}
    assert sorted(reasons) == sorted(INVALID)
    for row, field in INVALID.items():
        assert reasons[row].startswith(f"{field}:"), (row, reasons[row])
    assert rejects[0]["First Name"] == "Ada50" and rejects[0]["Email"] == "not-an-email"

    listed = client.request("GET", "/imports?limit=5", headers=auth(manager)).json()
    assert started["id"] in {item["id"] for item in listed["items"]} and "next_cursor" in listed

    # The leads went through capture: searchable, listed with their source, repeats merged into one lead.
    hits = eventually(
        lambda: client.request("GET", f"/leads?q=person0010@{domain}", headers=auth(manager)).json()["items"],
        timeout=60,
    )
    assert [(hit["email"], hit["lead_source"]) for hit in hits] == [(f"person0010@{domain}", "trade show")]
    repeated = eventually(
        lambda: client.request("GET", f"/leads?q=person0066@{domain}", headers=auth(manager)).json()["items"],
        timeout=60,
    )
    assert len(repeated) == 1
    lead = client.request("GET", f"/leads/{repeated[0]['id']}", headers=auth(manager)).json()
    assert lead["title"] == "Head of Engines"  # row 66 had no title: the repeat (row 102) filled it in
    assert lead["custom_fields"]["Favourite Colour"] == "red"
    assert "submission_merged" in {activity["type"] for activity in lead["activities"]}


def test_reps_may_not_import_and_bad_input_names_the_field(client: Client, local_stack: Any) -> None:
    rep, manager = local_stack.token("rep"), local_stack.token("manager")
    refused = client.request("POST", "/imports", json_body={"filename": "a.csv"}, headers=auth(rep))
    assert refused.status == 403
    assert client.request("GET", "/imports", headers=auth(rep)).status == 403

    for body, field in (
        ({"filename": "leads.xlsx"}, "filename"),
        ({}, "filename"),
        ({"filename": "a.csv", "default_source": "<b>"}, "default_source"),
        ({"filename": "a.csv", "extra": 1}, "extra"),
    ):
        answer = client.request("POST", "/imports", json_body=body, headers=auth(manager))
        assert answer.status == 422, (body, answer.body)
        assert field in json.dumps(answer.json()), answer.body
    other = client.request("GET", f"/imports/{uuid.uuid4()}", headers=auth(manager))
    assert other.status == 404
