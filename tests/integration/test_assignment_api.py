"""The assignment API function (users, assignment rules, manual assignment, the unassigned queue) on moto."""

import json
from typing import Any

from crm.leads.model import LeadStatus
from crm.platform.auth import Role
from crm.platform.dynamo import unmarshal

from tests.assignment_support import lead_model, make_lead, make_user
from tests.integration.assignment_env import AssignmentAws, assignment_aws_fixture  # noqa: F401
from tests.support import event, response_json

ADMIN = {"sub": "5f0b7c1e-0a11-4d2b-9a01-000000000001", "cognito:groups": "[admin]"}
MANAGER = {"sub": "5f0b7c1e-0a11-4d2b-9a01-000000000002", "cognito:groups": "[manager]"}
REP = {"sub": "5f0b7c1e-0a11-4d2b-9a01-000000000011", "cognito:groups": "[rep]"}


def call(
    invoke: Any,
    method: str,
    path: str,
    body: Any = None,
    claims: dict[str, str] = ADMIN,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any, dict[str, str]]:
    data = event("create_user.json")
    raw_path, _, query = path.partition("?")
    data["rawPath"] = data["requestContext"]["http"]["path"] = raw_path
    data["requestContext"]["http"]["method"] = method
    data["routeKey"] = data["requestContext"]["routeKey"] = f"{method} {raw_path}"
    data["requestContext"]["authorizer"]["jwt"]["claims"] = {"email": "someone@demo.leadflow.local", **claims}
    data["body"] = None if body is None else json.dumps(body)
    data["rawQueryString"] = query
    data["queryStringParameters"] = dict(part.split("=", 1) for part in query.split("&")) if query else None
    data["headers"] = {**data["headers"], **{k.lower(): v for k, v in (headers or {}).items()}}
    response = invoke("AssignmentApiFunction", data)
    return response["statusCode"], response_json(response), response.get("headers") or {}


def fields(body: dict[str, Any]) -> set[str]:
    return {problem["field"] for problem in body.get("fields", [])}


# ---------------------------------------------------------------- users


def test_an_admin_creates_a_user_and_anyone_signed_in_reads_the_directory(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    created = invoke("AssignmentApiFunction", event("create_user.json"))

    assert created["statusCode"] == 201, created["body"]
    user = response_json(created)
    assert user["working_hours"] == {
        "days": ["mon", "tue", "wed", "thu", "fri"],
        "start": "09:00:00",
        "end": "17:30:00",
        "time_zone": "Europe/Paris",
    }
    assert created["headers"]["Location"] == f"/users/{user['sub']}"
    listed = invoke("AssignmentApiFunction", event("list_users.json"))
    assert listed["statusCode"] == 200
    (row,) = response_json(listed)["users"]
    assert row["email"] == "rep4@demo.leadflow.local" and row["open_leads"] == 0 and row["capacity"] == 25
    status, one, headers = call(invoke, "GET", f"/users/{user['sub']}", claims=REP)
    assert status == 200 and one["name"] == "Rowan Rep" and headers["ETag"] == '"1"'


def test_only_admins_change_users_and_bad_input_names_the_field(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    body = json.loads(event("create_user.json")["body"])

    by_manager = call(invoke, "POST", "/users", body, claims=MANAGER)
    bad_zone = call(
        invoke,
        "POST",
        "/users",
        {**body, "working_hours": {**body["working_hours"], "time_zone": "Mars/Base"}},
    )
    bad_email = call(invoke, "POST", "/users", {**body, "email": "not-an-email"})
    bad_role = call(invoke, "POST", "/users", {**body, "role": "boss", "capacity": -1})
    unknown = call(invoke, "POST", "/users", {**body, "shoe_size": 44})

    assert by_manager[0] == 403
    assert (bad_zone[0], fields(bad_zone[1])) == (422, {"working_hours.time_zone"})
    assert (bad_email[0], fields(bad_email[1])) == (422, {"email"})
    assert (bad_role[0], fields(bad_role[1])) == (422, {"role", "capacity"})
    assert (unknown[0], fields(unknown[1])) == (422, {"shoe_size"})
    assert call(invoke, "GET", "/users")[1]["items"] == []  # nothing half-written


def test_sub_and_email_are_unique(assignment_aws: AssignmentAws, invoke: Any) -> None:
    body = json.loads(event("create_user.json")["body"])
    assert call(invoke, "POST", "/users", body)[0] == 201

    same_sub = call(invoke, "POST", "/users", {**body, "email": "other@demo.leadflow.local"})
    same_email = call(
        invoke, "POST", "/users", {**body, "sub": "another-sub", "email": "REP4@demo.leadflow.local"}
    )

    assert same_sub[0] == same_email[0] == 409
    assert "already has the email" in same_email[1]["message"]


def test_changing_a_user_needs_the_version_read_and_moves_their_email_and_teams(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    body = json.loads(event("create_user.json")["body"])
    sub = call(invoke, "POST", "/users", body)[1]["sub"]

    missing = call(invoke, "PATCH", f"/users/{sub}", {"capacity": 3})
    stale = call(invoke, "PATCH", f"/users/{sub}", {"capacity": 3}, headers={"If-Match": '"7"'})
    changed = call(
        invoke,
        "PATCH",
        f"/users/{sub}",
        {"email": "rowan@demo.leadflow.local", "teams": ["emea"], "capacity": None, "working_hours": None},
        headers={"If-Match": '"1"'},
    )
    sample = invoke("AssignmentApiFunction", event("update_user.json"))

    assert missing[0] == 428
    assert stale[0] == 409 and stale[1]["current_version"] == 1
    assert changed[0] == 200, changed[1]
    assert changed[1]["email"] == "rowan@demo.leadflow.local" and changed[1]["version"] == 2
    assert changed[1]["capacity"] is None and changed[1]["working_hours"] is None
    assert sample["statusCode"] == 409  # the sample event read version 1
    assert assignment_aws.users.sub_for_email("rowan@demo.leadflow.local") == sub
    assert assignment_aws.users.sub_for_email("rep4@demo.leadflow.local") is None
    assert [u.sub for u in assignment_aws.users.team_members("emea")] == [sub]
    assert assignment_aws.users.team_members("sales") == []
    assert call(invoke, "GET", "/users/nobody")[0] == 404


# ---------------------------------------------------------------- assignment rules


def test_managers_manage_assignment_rules_and_reps_may_not(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    created = invoke("AssignmentApiFunction", event("create_assignment_rule.json"))
    assert created["statusCode"] == 201, created["body"]
    rule = response_json(created)

    patched = call(
        invoke,
        "PATCH",
        f"/assignment-rules/{rule['id']}",
        {"target_user": "5f0b7c1e-0a11-4d2b-9a01-000000000013", "priority": 2},
        claims=MANAGER,
        headers={"If-Match": '"1"'},
    )
    listed = call(invoke, "GET", "/assignment-rules", claims=MANAGER)
    by_rep = call(invoke, "GET", "/assignment-rules", claims=REP)
    deleted = call(invoke, "DELETE", f"/assignment-rules/{rule['id']}", claims=MANAGER)

    assert patched[0] == 200, patched[1]
    assert patched[1]["target_user"] == "5f0b7c1e-0a11-4d2b-9a01-000000000013"
    assert patched[1]["target_team"] is None and patched[1]["version"] == 2
    assert [r["id"] for r in listed[1]["rules"]] == [rule["id"]]
    assert by_rep[0] == 403
    assert deleted[0] == 204
    assert call(invoke, "GET", f"/assignment-rules/{rule['id']}", claims=MANAGER)[0] == 404


def test_invalid_assignment_rules_are_refused_naming_the_field(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    no_target = call(invoke, "POST", "/assignment-rules", {"name": "x", "priority": 1}, claims=MANAGER)
    bad_condition = call(
        invoke,
        "POST",
        "/assignment-rules",
        {
            "name": "x",
            "priority": 1,
            "target_team": "sales",
            "conditions": [{"field": "employee_count", "operator": "between", "value": [10]}],
        },
        claims=MANAGER,
    )
    created = call(
        invoke, "POST", "/assignment-rules", {"name": "x", "priority": 1, "target_team": "a"}, claims=MANAGER
    )
    both = call(
        invoke,
        "PATCH",
        f"/assignment-rules/{created[1]['id']}",
        {"target_team": "b", "target_user": "u", "version": 1},
        claims=MANAGER,
    )

    assert (no_target[0], fields(no_target[1])) == (422, {"target_team"})
    assert (bad_condition[0], fields(bad_condition[1])) == (422, {"conditions.0.value"})
    assert (both[0], fields(both[1])) == (422, {"target_team"})


# ---------------------------------------------------------------- manual assignment and the queue


def test_a_manager_assigns_and_reassigns_by_hand_and_the_counters_follow(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    sample = event("assign_lead.json")
    lead = lead_model(id=sample["pathParameters"]["id"])
    aws.leads.create(lead, [])
    robin = make_user(aws.users, "sales", sub=json.loads(sample["body"])["assigned_to"]).sub
    other = make_user(aws.users, "sales")
    make_user(aws.users, "sales", role=Role.MANAGER, sub=MANAGER["sub"])  # the caller manages sales

    first = invoke("AssignmentApiFunction", sample)
    again = invoke("AssignmentApiFunction", sample)
    moved = call(invoke, "POST", f"/leads/{lead.id}/assign", {"assigned_to": other.sub}, claims=MANAGER)

    assert first["statusCode"] == again["statusCode"] == 200, first["body"]
    assert response_json(first)["assigned_to"] == robin
    assert moved[0] == 200 and moved[1]["assigned_to"] == other.sub
    assert aws.assignments.loads([robin, other.sub]) == {robin: 0, other.sub: 1}
    found = aws.leads.get_with_activities(lead.id)
    assert found is not None
    kinds = [(a.type, a.data.get("reason")) for a in reversed(found[1]) if a.type.startswith("lead_")]
    assert kinds == [("lead_assigned", "Robin knows this account"), ("lead_reassigned", None)]


def test_manual_assignment_refusals(assignment_aws: AssignmentAws, invoke: Any) -> None:
    aws = assignment_aws
    manager_user = make_user(aws.users, "sales", role=Role.MANAGER)
    manager = {"sub": manager_user.sub, "cognito:groups": "[manager]"}
    rep = make_user(aws.users, "sales")
    asleep = make_user(aws.users, "sales", active=False)
    elsewhere = make_user(aws.users, "emea")
    lead = make_lead(aws.leads)
    emea_lead = make_lead(aws.leads, team="emea")
    closed = make_lead(aws.leads, lead_status=LeadStatus.CONVERTED, converted=True)

    def assign(lead_id: str, to: str, claims: dict[str, str] = manager) -> tuple[int, Any]:
        status, body, _ = call(invoke, "POST", f"/leads/{lead_id}/assign", {"assigned_to": to}, claims=claims)
        return status, body

    assert assign(lead.id, rep.sub, claims=REP)[0] == 403
    unknown, inactive = assign(lead.id, "no-such-user"), assign(lead.id, asleep.sub)
    assert (unknown[0], fields(unknown[1])) == (422, {"assigned_to"})
    assert (inactive[0], fields(inactive[1])) == (422, {"assigned_to"})
    assert assign(lead.id, elsewhere.sub)[0] == 403  # not a member of the manager's teams
    assert assign(emea_lead.id, rep.sub)[0] == 404  # a lead of another team is invisible to this manager
    assert assign(closed.id, rep.sub)[0] == 409
    assert assign("not-a-uuid", rep.sub)[0] == 404
    assert fields(
        call(invoke, "POST", f"/leads/{lead.id}/assign", {"assigned_to": ""}, claims=manager)[1]
    ) == {"assigned_to"}
    assert aws.leads.get(lead.id).assigned_to is None  # type: ignore[union-attr]


def test_the_unassigned_queue_lists_waiting_leads_newest_first_for_managers(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    waiting = [make_lead(aws.leads, created_at=lead_model().created_at.replace(minute=m)) for m in (1, 2, 3)]
    nurture = make_lead(aws.leads, nurture=True)
    make_user(aws.users, "sales")
    assigned = make_lead(aws.leads)
    aws.leads.replace(assigned.model_copy(update={"assigned_to": "someone"}), assigned.version, [])

    sample = invoke("AssignmentApiFunction", event("unassigned_leads.json"))
    first_page = call(invoke, "GET", "/leads/unassigned?limit=2", claims=ADMIN)
    second_page = call(
        invoke, "GET", f"/leads/unassigned?limit=2&cursor={first_page[1]['next_cursor']}", claims=ADMIN
    )
    with_nurture = call(invoke, "GET", "/leads/unassigned?include_nurture=true", claims=ADMIN)

    assert sample["statusCode"] == 200
    assert [lead["id"] for lead in response_json(sample)["leads"]] == [w.id for w in reversed(waiting)]
    assert [lead["id"] for lead in first_page[1]["leads"]] == [waiting[2].id, waiting[1].id]
    assert [lead["id"] for lead in second_page[1]["leads"]] == [waiting[0].id]
    assert second_page[1]["next_cursor"] is None
    assert nurture.id in {lead["id"] for lead in with_nurture[1]["leads"]}
    assert call(invoke, "GET", "/leads/unassigned", claims=REP)[0] == 403
    assert fields(call(invoke, "GET", "/leads/unassigned?limit=0")[1]) == {"limit"}
    for garbage in ("abc", "é", first_page[1]["next_cursor"] + "x"):
        status, refused = call(invoke, "GET", f"/leads/unassigned?cursor={garbage}")[:2]
        assert (status, fields(refused)) == (400, {"cursor"})  # the same 400 as on every list
    assert fields(call(invoke, "GET", "/leads/unassigned?include_nurture=maybe")[1]) == {"include_nurture"}


def audit_trail(assignment_aws: AssignmentAws, subject: str) -> list[dict[str, Any]]:
    """The stored audit entries of a set, oldest first."""
    response = assignment_aws.dynamodb.query(
        TableName=assignment_aws.table,
        KeyConditionExpression="PK = :pk",
        ExpressionAttributeValues={":pk": {"S": f"AUDIT#{subject}"}},
    )
    return [unmarshal(item) for item in response["Items"]]


def test_assignment_rule_changes_record_who_made_them(assignment_aws: AssignmentAws, invoke: Any) -> None:
    created = call(
        invoke,
        "POST",
        "/assignment-rules",
        {"name": "EMEA", "priority": 1, "target_team": "emea"},
        claims=MANAGER,
    )
    rule = created[1]
    patched = call(
        invoke,
        "PATCH",
        f"/assignment-rules/{rule['id']}",
        {"priority": 3},
        claims=ADMIN,
        headers={"If-Match": '"1"'},
    )
    stale = call(
        invoke,
        "PATCH",
        f"/assignment-rules/{rule['id']}",
        {"priority": 4},
        claims=ADMIN,
        headers={"If-Match": '"1"'},
    )
    deleted = call(invoke, "DELETE", f"/assignment-rules/{rule['id']}", claims=MANAGER)

    assert (created[0], created[1]["updated_by"]) == (201, f"user:{MANAGER['sub']}")
    assert (patched[0], patched[1]["updated_by"]) == (200, f"user:{ADMIN['sub']}")
    assert (stale[0], deleted[0]) == (409, 204)
    trail = audit_trail(assignment_aws, "assignment_rules")
    assert [(e["action"], e["actor"], e["record_id"]) for e in trail] == [
        ("created", f"user:{MANAGER['sub']}", rule["id"]),
        ("updated", f"user:{ADMIN['sub']}", rule["id"]),
        ("deleted", f"user:{MANAGER['sub']}", rule["id"]),
    ]
    assert trail[1]["changes"]["priority"] == {"old": 1, "new": 3}  # the stale edit wrote nothing


def test_user_changes_record_who_made_them(assignment_aws: AssignmentAws, invoke: Any) -> None:
    created = invoke("AssignmentApiFunction", event("create_user.json"))  # by the sample's admin
    user = response_json(created)
    admin = f"user:{created_by_sample()}"
    patched = call(invoke, "PATCH", f"/users/{user['sub']}", {"capacity": 7}, headers={"If-Match": '"1"'})
    stale = call(invoke, "PATCH", f"/users/{user['sub']}", {"capacity": 8}, headers={"If-Match": '"1"'})

    assert (created["statusCode"], user["updated_by"]) == (201, admin)
    assert (patched[0], patched[1]["updated_by"], stale[0]) == (200, f"user:{ADMIN['sub']}", 409)
    trail = audit_trail(assignment_aws, "users")
    assert [(e["action"], e["record_id"]) for e in trail] == [
        ("created", user["sub"]),
        ("updated", user["sub"]),
    ]
    assert trail[1]["actor"] == f"user:{ADMIN['sub']}"
    assert trail[1]["changes"]["capacity"] == {"old": user["capacity"], "new": 7}


def created_by_sample() -> str:
    return str(event("create_user.json")["requestContext"]["authorizer"]["jwt"]["claims"]["sub"])
