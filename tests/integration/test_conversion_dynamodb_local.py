"""Conversion, edits, qualification and tasks against Amazon's DynamoDB Local: real transactions, real races,
and injected failures."""

import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from botocore.exceptions import ClientError
from crm.conversion.model import ConversionOptions
from crm.conversion.repository import ConversionRepository
from crm.conversion.service import ConversionService
from crm.leads.model import Channel, Lead, LeadStatus, LeadSubmission, new_lead
from crm.leads.repository import LeadRepository
from crm.leads.task_repository import TaskRepository
from crm.leads.tasks import new_task
from crm.platform.auth import Principal
from crm.platform.errors import RetryableError

from devstack.template import Template
from tests.support import FakeLambdaContext, event, load_handler, response_json

pytestmark = pytest.mark.ddblocal

MANAGER = Principal("11111111-1111-4111-8111-000000000002", None, frozenset({"manager"}))
REP_SUB = "11111111-1111-4111-8111-000000000011"


def make_lead(
    stack: dict[str, Any],
    *,
    status: LeadStatus = LeadStatus.QUALIFIED,
    company: str | None = "Analytical Engines",
    email: str | None = None,
    assigned_to: str | None = REP_SUB,
) -> Lead:
    submission = LeadSubmission(
        channel=Channel.API,
        first_name="Ada",
        last_name="Lovelace",
        email=email or f"ada-{uuid.uuid4().hex[:10]}@engines-{uuid.uuid4().hex[:6]}.example",
        lead_source="api",
        submitted_by="test",
        company=company,
    )
    lead = new_lead(submission, datetime.now(UTC)).model_copy(
        update={
            "lead_status": status,
            "qualified": status is LeadStatus.QUALIFIED,
            "assigned_to": assigned_to,
        }
    )
    LeadRepository(stack["table"], client=stack["dynamodb"]).create(lead, [])
    return lead


def items(stack: dict[str, Any], entity: str, **attributes: str) -> list[dict[str, Any]]:
    """Stored items of one entity with the given attribute values (a Scan: test inspection only)."""
    names = {"#entity": "entity", **{f"#{k}": k for k in attributes}}
    values = {":entity": {"S": entity}, **{f":{k}": {"S": v} for k, v in attributes.items()}}
    condition = " AND ".join(["#entity = :entity", *(f"#{k} = :{k}" for k in attributes)])
    found: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {
        "TableName": stack["table"],
        "FilterExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": values,
        "ConsistentRead": True,
    }
    while True:
        page = stack["dynamodb"].scan(**kwargs)
        found += page["Items"]
        if "LastEvaluatedKey" not in page:
            return found
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def handlers(template: Template, logical_id: str, count: int) -> list[Any]:
    """One handler per concurrent caller, each in its own module copy (its own execution environment)."""
    function = template.function(logical_id)
    return [load_handler(function, copy=index) for index in range(count)]


def as_user(data: dict[str, Any], sub: str, group: str) -> dict[str, Any]:
    data["requestContext"]["authorizer"]["jwt"]["claims"] = {"sub": sub, "cognito:groups": f"[{group}]"}
    return data


def race(count: int, call: Callable[[int], dict[str, Any]]) -> list[dict[str, Any]]:
    start = threading.Barrier(count)

    def run(index: int) -> dict[str, Any]:
        start.wait()
        return call(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


# ---------------------------------------------------------------- conversion races


def test_twenty_concurrent_converts_of_one_lead_make_one_contact_and_one_deal(
    template: Template, local_aws: dict[str, Any]
) -> None:
    lead = make_lead(local_aws)
    environments = handlers(template, "ConversionFunction", 20)
    request = event("convert_lead.json", rawPath=f"/leads/{lead.id}/convert", pathParameters={"id": lead.id})

    responses = race(20, lambda i: environments[i](request, FakeLambdaContext("conversion")))

    statuses = sorted(r["statusCode"] for r in responses)
    assert statuses == [200] * 19 + [201], [response_json(r) for r in responses if r["statusCode"] >= 300]
    ids = {(b["contact_id"], b["company_id"], b["deal_id"]) for b in map(response_json, responses)}
    assert len(ids) == 1
    assert len(items(local_aws, "contact", lead_id=lead.id)) == 1
    assert len(items(local_aws, "deal", lead_id=lead.id)) == 1
    assert len(items(local_aws, "activity", lead_id=lead.id, type="lead_converted")) == 1
    stored = LeadRepository(local_aws["table"], client=local_aws["dynamodb"]).get(lead.id)
    assert stored is not None and stored.converted and stored.version == 2


def test_leads_from_one_company_converted_concurrently_make_one_company(
    template: Template, local_aws: dict[str, Any]
) -> None:
    tag = uuid.uuid4().hex[:8]
    domain = f"acme-{tag}.example"
    spellings = [
        f"ACME {tag} Rockets, Inc.",
        f"Acme {tag} Rockets LLC",
        f"acme-{tag} rockets",
        f"The Acme {tag} Rockets",
    ]
    leads = [make_lead(local_aws, company=spellings[i % 4], email=f"person{i}@{domain}") for i in range(8)]
    # Two more with free-mail addresses: they can only match by name.
    leads += [make_lead(local_aws, company=spellings[i], email=f"acme{tag}{i}@gmail.com") for i in range(2)]
    environments = handlers(template, "ConversionFunction", len(leads))

    def convert(index: int) -> dict[str, Any]:
        lead_id = leads[index].id
        request = event(
            "convert_lead.json", rawPath=f"/leads/{lead_id}/convert", pathParameters={"id": lead_id}
        )
        return environments[index](request, FakeLambdaContext("conversion"))

    responses = race(len(leads), convert)

    assert [r["statusCode"] for r in responses] == [201] * len(leads), [response_json(r) for r in responses]
    company_ids = {response_json(r)["company_id"] for r in responses}
    assert len(company_ids) == 1
    (company_id,) = company_ids
    companies = [item["id"]["S"] for item in items(local_aws, "company") if tag in item["name"]["S"]]
    assert companies == [company_id]
    keys = local_aws["dynamodb"].batch_get_item(
        RequestItems={
            local_aws["table"]: {
                "Keys": [
                    {"PK": {"S": f"COMPANYKEY#domain:{domain}"}, "SK": {"S": "COMPANYKEY"}},
                    {"PK": {"S": f"COMPANYKEY#name:acme {tag} rockets"}, "SK": {"S": "COMPANYKEY"}},
                ]
            }
        }
    )["Responses"][local_aws["table"]]
    assert {key["company_id"]["S"] for key in keys} == {company_id}
    assert len(keys) == 2


class InjectFault:
    """A DynamoDB client whose TransactWriteItems fails, `times` times: either another writer creates the
    deal's item just before the transaction runs (its condition fails), or the call itself errors."""

    def __init__(self, client: Any, kind: str, times: int) -> None:
        self.client, self.kind, self.left = client, kind, times
        self.blocked: list[dict[str, Any]] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.client, name)

    def transact_write_items(self, **kwargs: Any) -> Any:
        if self.left > 0:
            self.left -= 1
            if self.kind == "service_error":
                raise ClientError(
                    {"Error": {"Code": "InternalServerError", "Message": "injected"}}, "TransactWriteItems"
                )
            puts = [entry["Put"] for entry in kwargs["TransactItems"] if "Put" in entry]
            deal = next(put["Item"] for put in puts if put["Item"]["PK"]["S"].startswith("DEAL#"))
            key = {"PK": deal["PK"], "SK": deal["SK"]}
            self.client.put_item(TableName=puts[0]["TableName"], Item={**key, "entity": {"S": "blocker"}})
            self.blocked.append(key)
        return self.client.transact_write_items(**kwargs)


@pytest.mark.parametrize("kind", ["conflicting_item", "service_error"])
def test_a_conversion_whose_write_fails_leaves_nothing_behind(local_aws: dict[str, Any], kind: str) -> None:
    tag = uuid.uuid4().hex[:8]
    domain = f"atomic-{tag}.example"
    lead = make_lead(local_aws, company=f"Atomic {tag} Widgets", email=f"ada@{domain}")
    client = InjectFault(local_aws["dynamodb"], kind, times=1000)
    service = ConversionService(
        LeadRepository(local_aws["table"], client=local_aws["dynamodb"]),
        ConversionRepository(local_aws["table"], client=client),  # type: ignore[arg-type]
        sleep=lambda _seconds: None,
    )

    with pytest.raises(RetryableError):
        service.convert(lead.id, ConversionOptions(), MANAGER)

    stored = LeadRepository(local_aws["table"], client=local_aws["dynamodb"]).get(lead.id)
    assert stored == lead  # not converted, same version, nothing changed
    assert items(local_aws, "contact", lead_id=lead.id) == []
    assert items(local_aws, "deal", lead_id=lead.id) == []
    assert items(local_aws, "company", domain=domain) == []
    for key in (f"domain:{domain}", f"name:atomic {tag} widgets"):
        claim = local_aws["dynamodb"].get_item(
            TableName=local_aws["table"], Key={"PK": {"S": f"COMPANYKEY#{key}"}, "SK": {"S": "COMPANYKEY"}}
        )
        assert "Item" not in claim, key
    assert items(local_aws, "activity", lead_id=lead.id) == []
    if kind == "conflicting_item":
        assert len(client.blocked) > 1  # every attempt failed on its deal item, and retried afresh


def test_a_conversion_retries_after_a_failed_write_and_then_makes_exactly_one_of_each(
    local_aws: dict[str, Any],
) -> None:
    domain = f"retry-{uuid.uuid4().hex[:8]}.example"
    lead = make_lead(local_aws, company="Retry Widgets", email=f"ada@{domain}")
    client = InjectFault(local_aws["dynamodb"], "conflicting_item", times=1)
    service = ConversionService(
        LeadRepository(local_aws["table"], client=local_aws["dynamodb"]),
        ConversionRepository(local_aws["table"], client=client),  # type: ignore[arg-type]
        sleep=lambda _seconds: None,
    )

    result = service.convert(lead.id, ConversionOptions(), MANAGER)

    assert result.created
    assert [i["id"]["S"] for i in items(local_aws, "contact", lead_id=lead.id)] == [result.lead.contact_id]
    assert [i["id"]["S"] for i in items(local_aws, "deal", lead_id=lead.id)] == [result.lead.deal_id]
    assert [i["id"]["S"] for i in items(local_aws, "company", domain=domain)] == [result.lead.company_id]
    assert client.blocked[0]["PK"]["S"] != f"DEAL#{result.lead.deal_id}"


# ---------------------------------------------------------------- edits, qualification, tasks


def test_concurrent_edits_from_one_version_one_wins_the_others_get_409_with_the_current_version(
    template: Template, local_aws: dict[str, Any]
) -> None:
    lead = make_lead(local_aws, status=LeadStatus.NEW)
    environments = handlers(template, "LeadsApiFunction", 10)

    def patch(index: int) -> dict[str, Any]:
        request = event(
            "update_lead.json",
            rawPath=f"/leads/{lead.id}",
            pathParameters={"id": lead.id},
            body={"title": f"Title {index}"},
            headers={"If-Match": '"1"'},
        )
        return environments[index](request, FakeLambdaContext("leads"))

    responses = race(10, patch)

    statuses = sorted(r["statusCode"] for r in responses)
    assert statuses == [200] + [409] * 9, statuses
    assert {response_json(r)["current_version"] for r in responses if r["statusCode"] == 409} == {2}
    winner = next(response_json(r) for r in responses if r["statusCode"] == 200)
    stored = LeadRepository(local_aws["table"], client=local_aws["dynamodb"]).get(lead.id)
    assert stored is not None and (stored.title, stored.version) == (winner["title"], 2)
    assert len(items(local_aws, "activity", lead_id=lead.id, type="lead_updated")) == 1


def test_concurrent_qualifications_make_one_discovery_call(
    template: Template, local_aws: dict[str, Any]
) -> None:
    lead = make_lead(local_aws, status=LeadStatus.CONTACTED)
    environments = handlers(template, "LeadsApiFunction", 8)
    body = {"has_budget": True, "has_authority": True, "has_need": True, "has_timeline": True}

    def qualify(index: int) -> dict[str, Any]:
        request = event(
            "qualify_lead.json",
            rawPath=f"/leads/{lead.id}/qualify",
            pathParameters={"id": lead.id},
            body=body,
        )
        return environments[index](request, FakeLambdaContext("leads"))

    responses = race(8, qualify)

    assert [r["statusCode"] for r in responses] == [200] * 8, [response_json(r) for r in responses]
    tasks = items(local_aws, "task", lead_id=lead.id)
    assert [t["title"]["S"] for t in tasks] == ["Schedule discovery call"]
    assert tasks[0]["owner"]["S"] == REP_SUB


def test_an_email_edit_racing_captures_of_that_email_leaves_one_claim_and_no_stale_one(
    template: Template, local_aws: dict[str, Any]
) -> None:
    lead = make_lead(local_aws, status=LeadStatus.NEW)
    wanted = f"taken-{uuid.uuid4().hex[:8]}@example.com"
    editors = handlers(template, "LeadsApiFunction", 1)
    captures = handlers(template, "CaptureFunction", 6)

    def act(index: int) -> dict[str, Any]:
        if index == 0:
            request = event(
                "update_lead.json",
                rawPath=f"/leads/{lead.id}",
                pathParameters={"id": lead.id},
                body={"email": wanted},
                headers={"If-Match": '"1"'},
            )
            return editors[0](request, FakeLambdaContext("leads"))
        body = {"first_name": "Race", "last_name": "Runner", "email": wanted}
        return captures[index - 1](event("capture_form_json.json", body=body), FakeLambdaContext("capture"))

    edit, *captured = race(7, act)

    repository = LeadRepository(local_aws["table"], client=local_aws["dynamodb"])
    owner = repository.find_id_by_email(wanted)
    assert owner is not None
    assert {response_json(r)["id"] for r in captured} == {owner}
    if edit["statusCode"] == 200:
        assert owner == lead.id
        assert repository.find_id_by_email(lead.email) is None
    else:
        assert (edit["statusCode"], response_json(edit)["error"]) == (409, "email_taken")
        assert repository.find_id_by_email(lead.email) == lead.id
        stored = repository.get(lead.id)
        assert stored is not None and stored.email == lead.email


def test_open_tasks_due_are_found_by_query_across_day_buckets(local_aws: dict[str, Any]) -> None:
    repository = TaskRepository(local_aws["table"], client=local_aws["dynamodb"])
    owner = f"owner-{uuid.uuid4().hex[:8]}"
    start = datetime(2031, 3, 1, 22, 0, tzinfo=UTC) + timedelta(minutes=uuid.uuid4().int % 600)
    made = []
    for hours in (1, 5, 26, 50):
        task = new_task(
            "lead-x",
            f"In {hours} h",
            due_at=start + timedelta(hours=hours),
            owner=owner,
            created_by="t",
            now=start,
        )
        repository.create(task, [])
        made.append(task)
    done = made[1].model_copy(update={"done": True, "done_at": start})
    repository.save(done, 1, [])

    due = repository.open_tasks_due(start, start + timedelta(hours=30))
    listed = repository.open_tasks(owner, start + timedelta(hours=30), limit=10)

    mine = [t.title for t in due if t.owner == owner]
    assert mine == ["In 1 h", "In 26 h"]
    assert [t.title for t in listed.tasks] == ["In 1 h", "In 26 h"]
