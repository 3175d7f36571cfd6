"""Lead edits, qualification, tasks and conversion: the real handlers with the sample events, on moto."""

import base64
import json
import uuid
from typing import Any

import pytest
from crm.leads.repository import LeadRepository

from devstack.template import Template
from tests.support import FakeLambdaContext, event, load_handler, response_json

pytestmark = pytest.mark.usefixtures("moto_stack")

MANAGER = ("11111111-1111-4111-8111-000000000002", "manager")
ADMIN = ("11111111-1111-4111-8111-000000000001", "admin")
REP = ("11111111-1111-4111-8111-000000000011", "rep")
OTHER_REP = ("11111111-1111-4111-8111-000000000012", "rep")


def request(
    name: str,
    path: str,
    *,
    record_id: str | None = None,
    body: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
    user: tuple[str, str] = MANAGER,
    query: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A sample event from events/, aimed at `path`, sent by `user` (sub, group)."""
    changes: dict[str, Any] = {"rawPath": path}
    if record_id is not None:
        changes["pathParameters"] = {"id": record_id}
    if body is not None:
        changes["body"] = body
    if headers is not None:
        changes["headers"] = headers
    if query is not None:
        changes["queryStringParameters"] = query
    data = event(name, **changes)
    data["requestContext"]["http"]["path"] = path
    sub, group = user
    data["requestContext"]["authorizer"]["jwt"]["claims"] = {
        "sub": sub,
        "email": f"{group}@demo.leadflow.local",
        "cognito:groups": f"[{group}]",
    }
    return data


def new_lead(invoke: Any, **fields: Any) -> dict[str, Any]:
    body = {
        "first_name": "Grace",
        "last_name": "Hopper",
        "email": f"grace-{uuid.uuid4().hex[:10]}@navy.example",
        "company": "US Navy",
        **fields,
    }
    response = invoke("LeadsApiFunction", request("create_lead.json", "/leads", body=body))
    assert response["statusCode"] == 201, response
    created: dict[str, Any] = response_json(response)
    return created


def assign(stack: dict[str, Any], lead_id: str, rep: tuple[str, str]) -> None:
    """Give the lead to a rep, as assignment would (set up directly: assignment is not under test)."""
    repository = LeadRepository(stack["table"], client=stack["dynamodb"])
    lead = repository.get(lead_id)
    assert lead is not None
    repository.replace(lead.model_copy(update={"assigned_to": rep[0]}), lead.version, [])


def patch_lead(invoke: Any, lead_id: str, body: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    response: dict[str, Any] = invoke(
        "LeadsApiFunction",
        request("update_lead.json", f"/leads/{lead_id}", record_id=lead_id, body=body, **kwargs),
    )
    return response


def get_lead(invoke: Any, lead_id: str, user: tuple[str, str] = MANAGER) -> dict[str, Any]:
    response = invoke(
        "LeadsApiFunction", request("get_lead.json", f"/leads/{lead_id}", record_id=lead_id, user=user)
    )
    assert response["statusCode"] == 200, response
    found: dict[str, Any] = response_json(response)
    return found


def qualify(
    invoke: Any, lead_id: str, answers: bool = True, user: tuple[str, str] = MANAGER
) -> dict[str, Any]:
    body = {"has_budget": True, "has_authority": answers, "has_need": True, "has_timeline": True}
    response: dict[str, Any] = invoke(
        "LeadsApiFunction",
        request("qualify_lead.json", f"/leads/{lead_id}/qualify", record_id=lead_id, body=body, user=user),
    )
    return response


def convert(
    invoke: Any, lead_id: str, body: dict[str, Any] | None = None, user: tuple[str, str] = MANAGER
) -> dict[str, Any]:
    response: dict[str, Any] = invoke(
        "ConversionFunction",
        request(
            "convert_lead.json", f"/leads/{lead_id}/convert", record_id=lead_id, body=body or {}, user=user
        ),
    )
    return response


# ---------------------------------------------------------------- PATCH /leads/{id}


@pytest.mark.parametrize("if_match", ['"1"', "1", 'W/"1"'])
def test_an_edit_with_if_match_changes_the_lead_and_records_who_changed_what(
    invoke: Any, if_match: str
) -> None:
    lead = new_lead(invoke)

    response = patch_lead(
        invoke,
        lead["id"],
        {"lead_status": "contacted", "phone": "+1 555 0100"},
        headers={"If-Match": if_match},
    )

    assert response["statusCode"] == 200, response
    assert response["headers"]["ETag"] == '"2"'
    assert (response_json(response)["lead_status"], response_json(response)["version"]) == ("contacted", 2)
    stored = get_lead(invoke, lead["id"])
    by_type = {a["type"]: a for a in stored["activities"]}
    assert by_type["status_changed"]["data"] == {"old": "new", "new": "contacted"}
    assert by_type["lead_updated"]["data"]["changes"] == {"phone": {"old": None, "new": "+1 555 0100"}}
    assert by_type["status_changed"]["created_by"] == f"user:{MANAGER[0]}"


def test_the_version_may_be_sent_in_the_body(invoke: Any) -> None:
    lead = new_lead(invoke)
    response = patch_lead(
        invoke, lead["id"], {"title": "Rear Admiral", "version": 1}, headers={"If-Match": ""}
    )
    assert response["statusCode"] == 200, response
    assert response_json(response)["title"] == "Rear Admiral"


def test_a_stale_version_is_409_with_the_current_one_and_changes_nothing(invoke: Any) -> None:
    lead = new_lead(invoke)
    assert (
        patch_lead(invoke, lead["id"], {"title": "First"}, headers={"If-Match": '"1"'})["statusCode"] == 200
    )

    stale = patch_lead(invoke, lead["id"], {"title": "Second"}, headers={"If-Match": '"1"'})

    assert stale["statusCode"] == 409
    assert response_json(stale) == {
        "error": "version_conflict",
        "message": "The lead was changed by someone else",
        "current_version": 2,
    }
    assert get_lead(invoke, lead["id"])["title"] == "First"


def test_no_version_is_428_naming_version(invoke: Any) -> None:
    lead = new_lead(invoke)
    response = patch_lead(invoke, lead["id"], {"title": "X"}, headers={"If-Match": ""})
    assert response["statusCode"] == 428
    assert response_json(response)["fields"][0]["field"] == "version"


@pytest.mark.parametrize(
    ("body", "status", "field"),
    [
        ({"lead_status": "qualified"}, 422, "lead_status"),
        ({"lead_status": "converted"}, 422, "lead_status"),
        ({"lead_status": "bogus"}, 422, "lead_status"),
        ({"email": "not-an-email"}, 422, "email"),
        ({"first_name": None}, 422, "first_name"),
        ({"score": 99}, 422, "score"),
        ({"employee_count": -1}, 422, "employee_count"),
        ({"do_not_email": "yes"}, 422, "do_not_email"),
        ({"do_not_email": None}, 422, "do_not_email"),
    ],
)
def test_bad_edits_are_4xx_naming_the_field(invoke: Any, body: dict, status: int, field: str) -> None:
    lead = new_lead(invoke)
    response = patch_lead(invoke, lead["id"], body, headers={"If-Match": '"1"'})
    assert response["statusCode"] == status, response
    assert field in {f["field"] for f in response_json(response)["fields"]}
    assert get_lead(invoke, lead["id"])["version"] == 1


def test_a_rep_marks_a_lead_do_not_email_at_the_persons_request(invoke: Any) -> None:
    lead = new_lead(invoke)
    response = patch_lead(invoke, lead["id"], {"do_not_email": True}, headers={"If-Match": '"1"'})

    assert response["statusCode"] == 200, response
    stored = get_lead(invoke, lead["id"])
    assert (stored["do_not_email"], stored["do_not_email_reason"]) == (True, "requested")
    assert stored["do_not_email_at"] is not None
    (updated,) = [a for a in stored["activities"] if a["type"] == "lead_updated"]
    assert updated["data"]["changes"] == {"do_not_email": {"old": False, "new": True}}


def test_a_move_the_lifecycle_forbids_is_409(invoke: Any) -> None:
    lead = new_lead(invoke)
    patch_lead(invoke, lead["id"], {"lead_status": "contacted"}, headers={"If-Match": '"1"'})
    response = patch_lead(invoke, lead["id"], {"lead_status": "new"}, headers={"If-Match": '"2"'})
    assert response["statusCode"] == 409
    assert response_json(response)["error"] == "invalid_transition"


def test_a_new_email_moves_the_uniqueness_claim(invoke: Any, moto_stack: dict) -> None:
    lead = new_lead(invoke)
    old_email, new_email = lead["email"], f"hopper-{uuid.uuid4().hex[:8]}@navy.example"

    response = patch_lead(invoke, lead["id"], {"email": new_email.upper()}, headers={"If-Match": '"1"'})

    assert response["statusCode"] == 200, response
    repository = LeadRepository(moto_stack["table"], client=moto_stack["dynamodb"])
    assert repository.find_id_by_email(new_email) == lead["id"]
    assert repository.find_id_by_email(old_email) is None
    # The old address is free again: capturing it makes a new lead; the new one merges into this lead.
    again = invoke(
        "CaptureFunction",
        event("capture_form_json.json", body={"first_name": "G", "last_name": "H", "email": new_email}),
    )
    fresh = invoke(
        "CaptureFunction",
        event("capture_form_json.json", body={"first_name": "G", "last_name": "H", "email": old_email}),
    )
    # (The public form answers 201 either way; the ids tell the merge from the new lead.)
    assert (again["statusCode"], response_json(again)["id"]) == (201, lead["id"])
    assert fresh["statusCode"] == 201 and response_json(fresh)["id"] != lead["id"]


def test_an_email_another_lead_has_is_409_and_changes_nothing(invoke: Any, moto_stack: dict) -> None:
    first, second = new_lead(invoke), new_lead(invoke)

    response = patch_lead(
        invoke, second["id"], {"email": first["email"], "title": "X"}, headers={"If-Match": '"1"'}
    )

    assert response["statusCode"] == 409
    assert response_json(response)["error"] == "email_taken"
    assert first["id"] not in response["body"]
    repository = LeadRepository(moto_stack["table"], client=moto_stack["dynamodb"])
    assert repository.find_id_by_email(first["email"]) == first["id"]
    assert repository.find_id_by_email(second["email"]) == second["id"]
    assert get_lead(invoke, second["id"])["title"] is None


def test_a_rep_cannot_see_another_reps_lead_and_cannot_change_the_team_queue(
    invoke: Any, moto_stack: dict
) -> None:
    theirs, queued = new_lead(invoke), new_lead(invoke)
    assign(moto_stack, theirs["id"], OTHER_REP)

    hidden = patch_lead(invoke, theirs["id"], {"title": "X"}, headers={"If-Match": '"2"'}, user=REP)
    read_only = patch_lead(invoke, queued["id"], {"title": "X"}, headers={"If-Match": '"1"'}, user=REP)
    own = patch_lead(invoke, theirs["id"], {"title": "X"}, headers={"If-Match": '"2"'}, user=OTHER_REP)

    assert (hidden["statusCode"], read_only["statusCode"], own["statusCode"]) == (404, 403, 200)


# ---------------------------------------------------------------- qualify


def test_qualifying_makes_the_lead_qualified_and_gives_its_rep_a_discovery_call(
    invoke: Any, moto_stack: dict
) -> None:
    lead = new_lead(invoke)
    assign(moto_stack, lead["id"], REP)

    response = qualify(invoke, lead["id"], user=REP)

    assert response["statusCode"] == 200, response
    body = response_json(response)
    assert (body["lead"]["lead_status"], body["lead"]["qualified"]) == ("qualified", True)
    assert body["lead"]["qualified_at"] is not None
    assert body["lead"]["custom_fields"]["bant"]["has_authority"] is True
    task = body["task"]
    assert (task["title"], task["priority"], task["owner"], task["done"]) == (
        "Schedule discovery call",
        "high",
        REP[0],
        False,
    )
    listed = invoke("LeadsApiFunction", request("list_tasks.json", "/tasks", query={"owner": "me"}, user=REP))
    assert [t["id"] for t in response_json(listed)["items"]] == [task["id"]]


def test_a_failed_qualification_makes_the_lead_unqualified_and_no_task(invoke: Any) -> None:
    lead = new_lead(invoke)
    response = qualify(invoke, lead["id"], answers=False)
    body = response_json(response)
    assert (response["statusCode"], body["lead"]["lead_status"], body["task"]) == (200, "unqualified", None)


def test_qualify_refuses_anything_but_true_or_false(invoke: Any) -> None:
    lead = new_lead(invoke)
    body = {"has_budget": "yes", "has_authority": True, "has_need": True}
    response = invoke(
        "LeadsApiFunction",
        request("qualify_lead.json", f"/leads/{lead['id']}/qualify", record_id=lead["id"], body=body),
    )
    assert response["statusCode"] == 422
    assert {f["field"] for f in response_json(response)["fields"]} == {"has_budget", "has_timeline"}


# ---------------------------------------------------------------- tasks


def test_tasks_are_created_listed_by_due_date_and_completed_with_optimistic_locking(
    invoke: Any, moto_stack: dict
) -> None:
    lead = new_lead(invoke)
    assign(moto_stack, lead["id"], REP)
    path = f"/leads/{lead['id']}/tasks"
    made = []
    for title, due in (("Later", "2026-12-20T09:00:00Z"), ("Sooner", "2026-12-02T09:00:00Z")):
        response = invoke(
            "LeadsApiFunction",
            request(
                "create_task.json", path, record_id=lead["id"], body={"title": title, "due_at": due}, user=REP
            ),
        )
        assert response["statusCode"] == 201, response
        made.append(response_json(response))
    assert made[0]["owner"] == REP[0]

    listed = invoke(
        "LeadsApiFunction",
        request("list_tasks.json", "/tasks", query={"owner": "me", "due_before": "2026-12-31"}, user=REP),
    )
    early = invoke(
        "LeadsApiFunction",
        request("list_tasks.json", "/tasks", query={"due_before": "2026-12-10T00:00:00Z"}, user=REP),
    )
    assert [t["title"] for t in response_json(listed)["items"]] == ["Sooner", "Later"]
    assert [t["title"] for t in response_json(early)["items"]] == ["Sooner"]

    task_id = made[1]["id"]
    done = invoke(
        "LeadsApiFunction",
        request("update_task.json", f"/tasks/{task_id}", record_id=task_id, body={"done": True}, user=REP),
    )
    stale = invoke(
        "LeadsApiFunction",
        request("update_task.json", f"/tasks/{task_id}", record_id=task_id, body={"title": "X"}, user=REP),
    )
    assert done["statusCode"] == 200, done
    assert response_json(done)["done"] is True and response_json(done)["done_at"] is not None
    assert (stale["statusCode"], response_json(stale)["current_version"]) == (409, 2)
    after = invoke("LeadsApiFunction", request("list_tasks.json", "/tasks", query={"owner": "me"}, user=REP))
    assert [t["title"] for t in response_json(after)["items"]] == ["Later"]
    timeline = [a["type"] for a in get_lead(invoke, lead["id"])["activities"]]
    assert timeline.count("task_created") == 2 and "task_completed" in timeline


def test_task_lists_page_with_a_cursor(invoke: Any, moto_stack: dict) -> None:
    lead = new_lead(invoke)
    assign(moto_stack, lead["id"], REP)
    for day in range(1, 6):
        body = {"title": f"Day {day}", "due_at": f"2027-01-0{day}T09:00:00Z"}
        invoke(
            "LeadsApiFunction",
            request(
                "create_task.json", f"/leads/{lead['id']}/tasks", record_id=lead["id"], body=body, user=REP
            ),
        )
    titles, cursor = [], None
    while True:
        query = {"limit": "2", **({"cursor": cursor} if cursor else {})}
        page = response_json(
            invoke("LeadsApiFunction", request("list_tasks.json", "/tasks", query=query, user=REP))
        )
        titles += [t["title"] for t in page["items"] if t["title"].startswith("Day")]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert titles == [f"Day {day}" for day in range(1, 6)]

    # A cursor of another query (here: past this query's due_before), or one this API never wrote (garbage,
    # non-ASCII), is a 400 naming it, as on every list, never a 500 from the database refusing the start key.
    first = response_json(
        invoke("LeadsApiFunction", request("list_tasks.json", "/tasks", query={"limit": "4"}, user=REP))
    )
    forged = base64.urlsafe_b64encode(json.dumps({"sk": "2027-01-01T09:00:00Z#x"}).encode()).decode()
    for cursor in (first["next_cursor"], forged, "é", "x" * 5000):
        query = {"limit": "1", "due_before": "2027-01-02", "cursor": cursor}
        response = invoke("LeadsApiFunction", request("list_tasks.json", "/tasks", query=query, user=REP))
        assert response["statusCode"] == 400, response
        assert [f["field"] for f in response_json(response)["fields"]] == ["cursor"]


def test_task_permissions(invoke: Any, moto_stack: dict) -> None:
    lead = new_lead(invoke)
    assign(moto_stack, lead["id"], REP)
    created = invoke(
        "LeadsApiFunction",
        request(
            "create_task.json",
            f"/leads/{lead['id']}/tasks",
            record_id=lead["id"],
            body={"title": "Call", "due_at": "2026-12-02T09:00:00Z"},
            user=REP,
        ),
    )
    task_id = response_json(created)["id"]

    other_list = invoke(
        "LeadsApiFunction", request("list_tasks.json", "/tasks", query={"owner": REP[0]}, user=OTHER_REP)
    )
    manager_list = invoke("LeadsApiFunction", request("list_tasks.json", "/tasks", query={"owner": REP[0]}))
    other_patch = invoke(
        "LeadsApiFunction",
        request(
            "update_task.json", f"/tasks/{task_id}", record_id=task_id, body={"done": True}, user=OTHER_REP
        ),
    )
    other_create = invoke(
        "LeadsApiFunction",
        request(
            "create_task.json",
            f"/leads/{lead['id']}/tasks",
            record_id=lead["id"],
            body={"title": "Mine now", "due_at": "2026-12-02T09:00:00Z"},
            user=OTHER_REP,
        ),
    )
    missing = invoke(
        "LeadsApiFunction",
        request("update_task.json", f"/tasks/{uuid.uuid4()}", record_id="x", body={"done": True}),
    )

    assert other_list["statusCode"] == 403
    assert [t["id"] for t in response_json(manager_list)["items"]] == [task_id]
    assert (other_patch["statusCode"], other_create["statusCode"], missing["statusCode"]) == (404, 404, 404)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"title": "", "due_at": "2026-12-02T09:00:00Z"}, "title"),
        ({"title": "T"}, "due_at"),
        ({"title": "T", "due_at": "soon"}, "due_at"),
        ({"title": "T", "due_at": "2026-12-02T09:00:00Z", "priority": "urgent"}, "priority"),
        ({"title": "T", "due_at": "2026-12-02T09:00:00Z", "owner": "nobody"}, "owner"),
    ],
)
def test_bad_tasks_are_422_naming_the_field(invoke: Any, body: dict, field: str) -> None:
    lead = new_lead(invoke)
    response = invoke(
        "LeadsApiFunction",
        request("create_task.json", f"/leads/{lead['id']}/tasks", record_id=lead["id"], body=body),
    )
    assert response["statusCode"] == 422
    assert field in {f["field"] for f in response_json(response)["fields"]}


# ---------------------------------------------------------------- convert and read back


def test_converting_a_qualified_lead_makes_a_contact_a_company_and_a_deal(
    invoke: Any, moto_stack: dict
) -> None:
    lead = new_lead(
        invoke, company="Analytical Engines Ltd", email=f"ada-{uuid.uuid4().hex[:8]}@engines.example"
    )
    assign(moto_stack, lead["id"], REP)
    qualify(invoke, lead["id"], user=REP)

    response = convert(invoke, lead["id"], {"amount": 25000}, user=REP)

    assert response["statusCode"] == 201, response
    result = response_json(response)
    assert result["lead"]["lead_status"] == "converted" and result["lead"]["converted_at"] is not None
    assert result["lead"]["contact_id"] == result["contact_id"]
    contact = get_record(invoke, "contacts", result["contact_id"], REP)
    company = get_record(invoke, "companies", result["company_id"], REP)
    deal = get_record(invoke, "deals", result["deal_id"], REP)
    assert (contact["email"], contact["owner"], contact["company_id"]) == (
        lead["email"],
        REP[0],
        company["id"],
    )
    assert (company["name"], company["domain"]) == ("Analytical Engines Ltd", "engines.example")
    assert (deal["name"], deal["stage"], deal["amount"]) == (
        "Analytical Engines Ltd - Opportunity",
        "qualification",
        25000,
    )
    assert get_record(invoke, "deals", result["deal_id"], OTHER_REP, status=404) is None


def get_record(
    invoke: Any, collection: str, record_id: str, user: tuple[str, str], status: int = 200
) -> dict[str, Any] | None:
    name = {"contacts": "get_contact.json", "companies": "get_company.json", "deals": "get_deal.json"}[
        collection
    ]
    response = invoke(
        "ConversionFunction", request(name, f"/{collection}/{record_id}", record_id=record_id, user=user)
    )
    assert response["statusCode"] == status, response
    found: dict[str, Any] | None = response_json(response) if status == 200 else None
    return found


def test_converting_twice_answers_with_the_first_result(invoke: Any) -> None:
    lead = new_lead(invoke)
    qualify(invoke, lead["id"])

    first, second = convert(invoke, lead["id"]), convert(invoke, lead["id"], {"deal_name": "Other"})

    assert (first["statusCode"], second["statusCode"]) == (201, 200)
    ids = ("contact_id", "company_id", "deal_id")
    assert [response_json(second)[k] for k in ids] == [response_json(first)[k] for k in ids]


def test_an_unqualified_lead_needs_force_from_a_manager(invoke: Any, moto_stack: dict) -> None:
    lead = new_lead(invoke)
    assign(moto_stack, lead["id"], REP)

    refused = convert(invoke, lead["id"], user=REP)
    rep_force = convert(invoke, lead["id"], {"force": True}, user=REP)
    forced = convert(invoke, lead["id"], {"force": True, "create_opportunity": False})

    assert refused["statusCode"] == 409 and "`force: true`" in response_json(refused)["message"]
    assert response_json(refused)["error"] == "lead_not_qualified"
    assert rep_force["statusCode"] == 403 and "force" in response_json(rep_force)["message"]
    assert forced["statusCode"] == 201, forced
    assert response_json(forced)["deal_id"] is None


def test_conversion_can_be_switched_to_not_require_qualification(
    invoke: Any, function_env: Any, template: Template
) -> None:
    lead = new_lead(invoke)
    function_env("ConversionFunction", CONVERSION_REQUIRES_QUALIFICATION="false")
    handler = load_handler(template.function("ConversionFunction"), copy=1)

    response = handler(
        request("convert_lead.json", f"/leads/{lead['id']}/convert", record_id=lead["id"], body={}),
        FakeLambdaContext("conversion"),
    )

    assert response["statusCode"] == 201, response
    assert response_json(response)["lead"]["qualified"] is False


def test_two_leads_from_one_company_share_it(invoke: Any) -> None:
    domain = f"acme-{uuid.uuid4().hex[:8]}.example"
    first = new_lead(invoke, company="ACME Rockets, Inc.", email=f"wile@{domain}")
    second = new_lead(invoke, company="Acme Rockets LLC", email=f"road.runner@{domain}")
    third = new_lead(invoke, company="acme rockets", email=f"acme-{uuid.uuid4().hex[:6]}@gmail.com")
    ids = []
    for lead in (first, second, third):
        qualify(invoke, lead["id"])
        ids.append(response_json(convert(invoke, lead["id"]))["company_id"])
    assert ids[0] == ids[1] == ids[2]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"amount": -1}, "amount"),
        ({"amount": "NaN"}, "amount"),
        ({"company_id": "not-a-uuid"}, "company_id"),
        ({"create_opportunity": False, "deal_name": "X"}, "deal_name"),
        ({"force": "yes"}, "force"),
        ({"bogus": 1}, "bogus"),
        ({"company_id": str(uuid.UUID(int=1))}, "company_id"),
        ({"contact_id": str(uuid.UUID(int=2))}, "contact_id"),
    ],
)
def test_bad_conversions_are_422_naming_the_field_and_convert_nothing(
    invoke: Any, body: dict, field: str
) -> None:
    lead = new_lead(invoke)
    qualify(invoke, lead["id"])

    response = convert(invoke, lead["id"], body)

    assert response["statusCode"] == 422, response
    assert field in {f["field"] for f in response_json(response)["fields"]}
    assert get_lead(invoke, lead["id"])["converted"] is False


def test_a_conversion_can_attach_to_an_existing_contact_and_company(invoke: Any) -> None:
    first = new_lead(invoke, company="Initech")
    qualify(invoke, first["id"])
    made = response_json(convert(invoke, first["id"]))
    second = new_lead(invoke, company=None)
    qualify(invoke, second["id"])

    attached = convert(
        invoke, second["id"], {"contact_id": made["contact_id"], "company_id": made["company_id"]}
    )

    assert attached["statusCode"] == 201, attached
    result = response_json(attached)
    assert (result["contact_id"], result["company_id"]) == (made["contact_id"], made["company_id"])
    assert get_record(invoke, "deals", result["deal_id"], MANAGER)["name"] == "Initech - Opportunity"  # type: ignore[index]


def test_reading_back_unknown_records_is_404(invoke: Any) -> None:
    for collection in ("contacts", "companies", "deals"):
        get_record(invoke, collection, str(uuid.uuid4()), ADMIN, status=404)
        get_record(invoke, collection, "not-an-id", ADMIN, status=404)


def test_the_sample_events_are_valid_requests(invoke: Any) -> None:
    for name in ("update_lead.json", "qualify_lead.json", "create_task.json", "update_task.json"):
        response = invoke("LeadsApiFunction", event(name))
        assert response["statusCode"] == 404, (name, response)  # the sample ids do not exist here
    listed = invoke("LeadsApiFunction", event("list_tasks.json"))
    assert (listed["statusCode"], response_json(listed)["items"]) == (200, [])
    for name in ("convert_lead.json", "get_contact.json", "get_company.json", "get_deal.json"):
        response = invoke("ConversionFunction", event(name))
        assert response["statusCode"] == 404, (name, response)
    assert json.loads(event("update_lead.json")["body"])["lead_status"] == "contacted"
