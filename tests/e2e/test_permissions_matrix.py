"""Every protected route of template.yaml x (no token, rep, other rep, manager, admin), over HTTP.

The routes are read from the template when the tests are collected, so a route added later is covered at
once: until its author adds a row to EXPECTED below, its test fails saying so. A row gives the request
(placeholders in braces are filled from a small world of objects built once) and the status each caller
must get. Without a token the gateway answers 401, always; a signed-in user in no group (no role) gets 403
on every route.

The world: a lead assigned to rep1 and not yet routed to a team (so every manager may see it, whatever
teams their directory entry gives them), its timeline, a task, a conversion (contact, company, deal), a
scoring rule with its rescore job, and a seeded assignment rule. Routes that change a lead get a fresh
lead for every caller, so one caller's change never decides another caller's answer.
"""

import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest
from crm.leads.model import Lead, LeadStatus, new_activity
from crm.leads.repository import LeadRepository

from devstack.stack import LocalStack
from devstack.template import load_template

from .conftest import Client

pytestmark = pytest.mark.e2e

CALLERS = ("rep", "other_rep", "manager", "admin")
USERS = {"rep": "rep1", "other_rep": "rep2", "manager": "manager", "admin": "admin"}


@dataclass(frozen=True)
class Case:
    path: str
    rep: int
    other_rep: int
    manager: int
    admin: int
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    fresh: tuple[str, ...] = ()  # placeholders that need a new object for every caller

    def expected(self) -> dict[str, int]:
        return {"none": 401, "no_role": 403, **{caller: getattr(self, caller) for caller in CALLERS}}


def every(status: int) -> dict[str, int]:
    return dict.fromkeys(CALLERS, status)


def staff(status: int) -> dict[str, int]:
    """Managers and admins get `status`; reps are refused."""
    return {"rep": 403, "other_rep": 403, "manager": status, "admin": status}


def lead_holder(status: int) -> dict[str, int]:
    """The rep who holds the lead, managers and admins get `status`; another rep is told it does not exist."""
    return {"rep": status, "other_rep": 404, "manager": status, "admin": status}


STALE = {"If-Match": '"999"'}
ADMIN_ONLY = {"rep": 403, "other_rep": 403, "manager": 403}
UNKNOWN_RULE = "no-such-rule-0000"

EXPECTED: dict[str, Case] = {
    # ---- leads (capture's system API, lists, the lead, its timeline)
    "POST /leads": Case(
        "/leads", **every(201), body={"first_name": "Ma", "last_name": "Trix", "email": "{email}"}
    ),
    "GET /leads": Case("/leads?limit=5", **every(200)),
    "GET /leads/{id}": Case("/leads/{lead}", **lead_holder(200)),
    "GET /leads/{id}/activities": Case("/leads/{lead}/activities", **lead_holder(200)),
    "PATCH /leads/{id}": Case(
        "/leads/{fresh_lead}",
        **lead_holder(200),
        body={"phone": "+44 20 7946 0000"},
        headers={"If-Match": '"1"'},
        fresh=("fresh_lead",),
    ),
    "POST /leads/{id}/qualify": Case(
        "/leads/{fresh_lead}/qualify",
        **lead_holder(200),
        body={"has_budget": True, "has_authority": True, "has_need": True, "has_timeline": True},
        fresh=("fresh_lead",),
    ),
    "POST /leads/{id}/convert": Case(
        "/leads/{qualified_lead}/convert", **lead_holder(201), body={}, fresh=("qualified_lead",)
    ),
    "POST /leads/{id}/tasks": Case(
        "/leads/{lead}/tasks",
        **lead_holder(201),
        body={"title": "Call back", "priority": "normal", "due_at": "2031-01-01T09:00:00Z"},
    ),
    "PATCH /tasks/{id}": Case(
        "/tasks/{fresh_task}",
        **lead_holder(200),
        body={"done": True},
        headers={"If-Match": '"1"'},
        fresh=("fresh_task",),
    ),
    "GET /tasks": Case("/tasks", **every(200)),
    "GET /tasks/{id}": Case("/tasks/{fresh_task}", **lead_holder(200), fresh=("fresh_task",)),
    "GET /leads/{id}/tasks": Case("/leads/{lead}/tasks", **lead_holder(200)),
    # ---- conversion records
    "GET /contacts/{id}": Case("/contacts/{contact}", **lead_holder(200)),
    "GET /deals/{id}": Case("/deals/{deal}", **lead_holder(200)),
    "GET /companies/{id}": Case("/companies/{company}", **every(200)),
    # ---- scoring
    "GET /leads/{id}/score": Case("/leads/{lead}/score", **lead_holder(200)),
    "POST /leads/{id}/activities": Case(
        "/leads/{lead}/activities",
        **lead_holder(201),
        body={"type": "page_viewed", "description": "Pricing page", "event_id": "{event_id}"},
    ),
    "GET /scoring-rules": Case("/scoring-rules", **staff(200)),
    "POST /scoring-rules": Case("/scoring-rules", **staff(422), body={}),
    "GET /scoring-rules/{id}": Case("/scoring-rules/{scoring_rule}", **staff(200)),
    "PUT /scoring-rules/{id}": Case("/scoring-rules/{scoring_rule}", **staff(422), body={}),
    "PATCH /scoring-rules/{id}": Case(
        "/scoring-rules/{scoring_rule}", **staff(409), body={"points": 3}, headers=STALE
    ),
    "DELETE /scoring-rules/{id}": Case("/scoring-rules/{scoring_rule}", **staff(409), headers=STALE),
    "GET /scoring-rules/rescore-jobs/{job_id}": Case(
        "/scoring-rules/rescore-jobs/{rescore_job}", **staff(200)
    ),
    # A change naming no rule: refused (422) before any lead is read. A stale version: nothing saved.
    "POST /scoring-rules/preview": Case(
        "/scoring-rules/preview", **staff(422), body={"changes": [{"op": "delete", "id": UNKNOWN_RULE}]}
    ),
    "GET /settings/routing": Case("/settings/routing", **staff(200)),
    "PUT /settings/routing": Case(
        "/settings/routing", **staff(409), body={"sales_threshold": 70}, headers=STALE
    ),
    # ---- assignment and users
    "GET /leads/unassigned": Case("/leads/unassigned", **staff(200)),
    "POST /leads/{id}/assign": Case(
        "/leads/{fresh_lead}/assign", **staff(200), body={"assigned_to": "{rep2_sub}"}, fresh=("fresh_lead",)
    ),
    "GET /assignment-rules": Case("/assignment-rules", **staff(200)),
    "POST /assignment-rules": Case("/assignment-rules", **staff(422), body={}),
    "GET /assignment-rules/{id}": Case("/assignment-rules/{assignment_rule}", **staff(200)),
    "PATCH /assignment-rules/{id}": Case(
        "/assignment-rules/{assignment_rule}", **staff(409), body={"name": "Renamed"}, headers=STALE
    ),
    "DELETE /assignment-rules/{id}": Case(f"/assignment-rules/{UNKNOWN_RULE}", **staff(404)),
    "GET /users": Case("/users", **every(200)),
    "GET /users/{sub}": Case("/users/{rep1_sub}", **every(200)),
    # A valid body, so the role decides (the route validates the body before it checks the role).
    "POST /users": Case(
        "/users",
        rep=403,
        other_rep=403,
        manager=403,
        admin=201,
        body={"sub": "{uuid}", "name": "Matrix User", "email": "{email}", "role": "rep", "teams": []},
    ),
    "PATCH /users/{sub}": Case(
        "/users/{rep1_sub}",
        rep=403,
        other_rep=403,
        manager=403,
        admin=409,
        body={"name": "Riley"},
        headers=STALE,
    ),
    # ---- analytics
    "GET /analytics/funnel": Case("/analytics/funnel?group_by=source", **staff(200)),
    "GET /analytics/speed-to-lead": Case("/analytics/speed-to-lead", **staff(200)),
    "GET /analytics/sources": Case("/analytics/sources", **staff(200)),
    # ---- nurture sequences (the seeded default sequence; anyone reads, managers and admins change)
    "GET /nurture-sequences": Case("/nurture-sequences", **every(200)),
    "POST /nurture-sequences": Case("/nurture-sequences", **staff(422), body={}),
    "GET /nurture-sequences/{id}": Case("/nurture-sequences/seed-default-nurture", **every(200)),
    "PATCH /nurture-sequences/{id}": Case(
        "/nurture-sequences/seed-default-nurture", **staff(409), body={"name": "Renamed"}, headers=STALE
    ),
    "DELETE /nurture-sequences/{id}": Case(f"/nurture-sequences/{UNKNOWN_RULE}", **staff(404)),
    # ---- a person's data on request: admins only (an empty body erases no one)
    "POST /privacy/erasures": Case("/privacy/erasures", **ADMIN_ONLY, admin=422, body={}),
    "GET /privacy/erasures/{id}": Case(
        "/privacy/erasures/00000000-0000-4000-8000-000000000000", **ADMIN_ONLY, admin=404
    ),
    "GET /privacy/export": Case("/privacy/export?email=nobody@example.com", **ADMIN_ONLY, admin=200),
    # ---- outbound webhooks: admins only (an unknown subscription: 404; a body naming no events: 422)
    "POST /webhook-subscriptions": Case("/webhook-subscriptions", **ADMIN_ONLY, admin=422, body={}),
    "GET /webhook-subscriptions": Case("/webhook-subscriptions", **ADMIN_ONLY, admin=200),
    "GET /webhook-subscriptions/{subscription_id}": Case(
        "/webhook-subscriptions/no-such-subscription", **ADMIN_ONLY, admin=404
    ),
    "PATCH /webhook-subscriptions/{subscription_id}": Case(
        "/webhook-subscriptions/no-such-subscription", **ADMIN_ONLY, admin=404, body={"state": "paused"}
    ),
    "DELETE /webhook-subscriptions/{subscription_id}": Case(
        "/webhook-subscriptions/no-such-subscription", **ADMIN_ONLY, admin=404
    ),
    "POST /webhook-subscriptions/{subscription_id}/test": Case(
        "/webhook-subscriptions/no-such-subscription/test", **ADMIN_ONLY, admin=404
    ),
    "GET /webhook-subscriptions/{subscription_id}/deliveries": Case(
        "/webhook-subscriptions/no-such-subscription/deliveries", **ADMIN_ONLY, admin=404
    ),
    # ---- CSV exports: managers and admins (an export of a range with no lead yet; an unknown export: 404)
    "POST /exports": Case("/exports", **staff(202), body={"created_from": "2099-01-01"}),
    "GET /exports": Case("/exports", **staff(200)),
    "GET /exports/{id}": Case("/exports/00000000-0000-4000-8000-000000000000", **staff(404)),
    # ---- CSV imports: managers and admins (an import waiting for its upload; an unknown import: 404)
    "POST /imports": Case("/imports", **staff(201), body={"filename": "leads.csv"}),
    "GET /imports": Case("/imports", **staff(200)),
    "GET /imports/{id}": Case("/imports/00000000-0000-4000-8000-000000000000", **staff(404)),
}

PROTECTED = sorted(
    (route for route in load_template().routes if route.authorizer is not None), key=lambda r: r.route_key
)


class World:
    """The objects the requests name, created once (or once per caller for `fresh` placeholders)."""

    def __init__(self, stack: LocalStack, client: Client) -> None:
        self.stack = stack
        self.client = client
        assert stack.template is not None
        table = next(t for t in stack.template.tables if t.logical_id == "LeadsTable")
        self.leads = LeadRepository(table.name, shards=4, client=stack.clients.dynamodb)
        self.subs = {role: stack.seed.user(username=user).sub for role, user in USERS.items()}
        self.values: dict[str, str] = {"rep1_sub": self.subs["rep"], "rep2_sub": self.subs["other_rep"]}
        self.values["lead"] = self.new_lead()
        self.values["task"] = self.new_task()
        conversion = self.call("admin", "POST", f"/leads/{self.new_lead(qualified=True)}/convert", {})
        assert conversion.status == 201, conversion.body
        converted = conversion.json()
        self.values |= {
            "contact": converted["contact_id"],
            "company": converted["company_id"],
            "deal": converted["deal_id"],
        }
        rule = self.call(
            "admin",
            "POST",
            "/scoring-rules",
            {
                "name": "Matrix",
                "category": "firmographic",
                "field": "industry",
                "operator": "equals",
                "value": "Matrix",
                "points": 1,
            },
        )
        assert rule.status == 201, rule.body
        self.values["scoring_rule"] = rule.json()["rule"]["id"]
        self.values["rescore_job"] = rule.json()["rescore_job"]["job_id"]
        rules = self.call("admin", "GET", "/assignment-rules")
        assert rules.status == 200 and rules.json()["rules"], rules.body
        self.values["assignment_rule"] = rules.json()["rules"][0]["id"]

    def new_lead(self, qualified: bool = False) -> str:
        from crm.platform import clock

        now = clock.now()
        lead = Lead(
            id=str(uuid.uuid4()),
            first_name="Matrix",
            last_name="Lead",
            email=f"matrix-{uuid.uuid4().hex[:12]}@example.com",
            company=f"Matrix {uuid.uuid4().hex[:6]}",
            lead_source="api",
            lead_status=LeadStatus.QUALIFIED if qualified else LeadStatus.CONTACTED,
            qualified=qualified,
            qualified_at=now if qualified else None,
            assigned_to=self.subs["rep"],
            assigned_at=now,
            created_at=now,
            updated_at=now,
        )
        self.leads.create(lead, [new_activity(lead.id, "lead_captured", "Matrix lead", "test", now)])
        return lead.id

    def new_task(self) -> str:
        response = self.call(
            "admin",
            "POST",
            f"/leads/{self.values['lead']}/tasks",
            {"title": "Matrix task", "priority": "normal", "due_at": "2031-01-01T09:00:00Z"},
        )
        assert response.status == 201, response.body
        return str(response.json()["id"])

    def fill(self, text: str, fresh: dict[str, str]) -> str:
        values = {
            **self.values,
            **fresh,
            "email": f"m-{uuid.uuid4().hex[:12]}@example.com",
            "event_id": uuid.uuid4().hex,
            "uuid": str(uuid.uuid4()),
        }
        for name, value in values.items():
            text = text.replace("{" + name + "}", value)
        return text

    def fill_body(self, body: Any, fresh: dict[str, str]) -> Any:
        if isinstance(body, dict):
            return {key: self.fill_body(value, fresh) for key, value in body.items()}
        return self.fill(body, fresh) if isinstance(body, str) else body

    def fresh_values(self, names: tuple[str, ...]) -> dict[str, str]:
        makers = {
            "fresh_lead": self.new_lead,
            "qualified_lead": lambda: self.new_lead(qualified=True),
            "fresh_task": self.new_task,
        }
        return {name: makers[name]() for name in names}

    def call(
        self, caller: str, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None
    ) -> Any:
        all_headers = dict(headers or {})
        if caller == "no_role":
            all_headers["Authorization"] = f"Bearer {self.stack.token(user='rep1', groups=())}"
        elif caller != "none":
            all_headers["Authorization"] = f"Bearer {self.stack.token(user=USERS[caller])}"
        return self.client.request(method, path, json_body=body, headers=all_headers)


@pytest.fixture(scope="module")
def world(local_stack: LocalStack, client: Client) -> World:
    return World(local_stack, client)


def test_every_row_names_a_route_of_the_template() -> None:
    stale = sorted(set(EXPECTED) - {route.route_key for route in PROTECTED})
    assert not stale, f"EXPECTED has rows for routes the template no longer has (remove them): {stale}"


@pytest.mark.parametrize("route_key", [route.route_key for route in PROTECTED])
def test_each_caller_gets_the_expected_status(route_key: str, world: World) -> None:
    case = EXPECTED.get(route_key)
    if case is None:
        pytest.fail(
            f"No permission expectations for {route_key}: add a row to EXPECTED in "
            "tests/e2e/test_permissions_matrix.py (the request, and the status for rep, other rep, manager "
            "and admin; no token is always 401, no role always 403)"
        )
    method = route_key.split(" ", 1)[0]
    statuses: dict[str, int] = {}
    bodies: dict[str, Any] = {}
    for caller in ("none", "no_role", *CALLERS):
        fresh = world.fresh_values(case.fresh)
        body = world.fill_body(case.body, fresh) if case.body is not None else None
        response = world.call(caller, method, world.fill(case.path, fresh), body, case.headers)
        statuses[caller] = response.status
        bodies[caller] = response.body[:300]
    assert statuses == case.expected(), bodies
