"""Assignment, routing, sweep and SES-event handlers, in-process with their template environment, on moto."""

import json
from datetime import timedelta
from typing import Any

from crm.assignment.repository import RoutingState
from crm.leads.index import list_index_attributes
from crm.leads.model import LeadStatus
from crm.leads.repository import LeadItem, lead_key
from crm.platform.auth import Role
from crm.platform.dynamo import marshal, unmarshal
from crm.users.model import OutOfOffice

from tests.assignment_support import NOW, lead_model, make_lead, make_user, sqs_event, stream_event
from tests.integration.assignment_env import AssignmentAws, assignment_aws_fixture  # noqa: F401
from tests.support import event

ASSIGNMENT_QUEUE = "leadflow-local-AssignmentQueue"


def assign_jobs(invoke: Any, *lead_ids: str, trigger: str = "score_threshold") -> dict[str, Any]:
    jobs = [{"lead_id": lead_id, "trigger": trigger} for lead_id in lead_ids]
    response: dict[str, Any] = invoke("AssignmentFunction", sqs_event(jobs, ASSIGNMENT_QUEUE))
    return response


def activities(aws: AssignmentAws, lead_id: str, type_: str) -> list[Any]:
    found = aws.leads.get_with_activities(lead_id)
    assert found is not None
    return [activity for activity in found[1] if activity.type == type_]


def test_a_job_assigns_the_least_loaded_rep_and_the_activity_says_why(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    busy = make_user(aws.users, "sales", name="Busy Rep")
    free = make_user(aws.users, "sales", name="Free Rep")
    first, second = make_lead(aws.leads), make_lead(aws.leads)
    assign_jobs(invoke, first.id)
    first_owner = aws.leads.get(first.id).assigned_to  # type: ignore[union-attr]

    response = assign_jobs(invoke, second.id)

    assert response == {"batchItemFailures": []}
    lead = aws.leads.get(second.id)
    assert lead is not None and lead.assigned_to not in (None, first_owner)
    assert {first_owner, lead.assigned_to} == {busy.sub, free.sub}
    assert lead.team == "sales" and lead.assigned_at is not None
    (assigned,) = activities(aws, second.id, "lead_assigned")
    assert assigned.data["method"] == "balanced"
    assert assigned.data["rule_id"] is None if "rule_id" in assigned.data else True
    assert sorted(c["open_leads"] for c in assigned.data["candidates"]) == [0, 1]
    assert "no rule matched: default team" in assigned.description
    assert aws.assignments.loads([busy.sub, free.sub]) == {busy.sub: 1, free.sub: 1}


def test_a_redelivered_job_assigns_nothing_twice(assignment_aws: AssignmentAws, invoke: Any) -> None:
    aws = assignment_aws
    rep = make_user(aws.users, "sales")
    make_user(aws.users, "sales")
    lead = make_lead(aws.leads)

    assign_jobs(invoke, lead.id)
    owner = aws.leads.get(lead.id).assigned_to  # type: ignore[union-attr]
    assign_jobs(invoke, lead.id, lead.id)

    assert aws.leads.get(lead.id).assigned_to == owner  # type: ignore[union-attr]
    assert len(activities(aws, lead.id, "lead_assigned")) == 1
    assert sum(aws.assignments.loads([rep.sub, owner or ""]).values()) == 1


def test_nobody_available_the_lead_waits_and_the_managers_are_alerted_once(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    absent = OutOfOffice(start=NOW - timedelta(days=1), end=NOW + timedelta(days=3650))
    away = make_user(aws.users, "sales", out_of_office=absent)
    make_user(aws.users, "sales", capacity=0)
    make_user(aws.users, "sales", role=Role.MANAGER)
    lead = make_lead(aws.leads)

    assign_jobs(invoke, lead.id)
    assign_jobs(invoke, lead.id, trigger="sweep")

    stored = aws.leads.get(lead.id)
    assert stored is not None and stored.assigned_to is None and stored.team == "sales"
    marker = aws.assignments.get_marker(lead.id)
    assert marker is not None and marker.state is RoutingState.WAITING and marker.manager_alerted
    alerts = aws.messages("NotificationQueue")
    assert [m["body"]["kind"] for m in alerts] == ["unassigned_lead"]
    assert alerts[0]["body"]["team"] == "sales"
    (waiting,) = activities(aws, lead.id, "assignment_waiting")
    reasons = {c["user"]: c["reason"] for c in waiting.data["candidates"]}
    assert reasons[away.sub] == "out_of_office"
    assert aws.assignments.waiting_lead_ids() == [(lead.id, "sales")]


def test_waiting_leads_are_swept_back_and_assigned_once_someone_is_available(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    rep = make_user(aws.users, "sales", capacity=0)
    lead = make_lead(aws.leads)
    assign_jobs(invoke, lead.id)

    swept = invoke("AssignmentSweepFunction", event("assignment_sweep_schedule.json"))
    jobs = aws.messages("AssignmentQueue")

    assert swept == {"requeued": 1}
    assert [job["body"]["lead_id"] for job in jobs] == [lead.id]
    assert jobs[0]["body"]["trigger"] == "sweep"

    # An admin raises the rep's capacity: the team's waiting leads are sent again at once.
    admin = {"sub": "5f0b7c1e-0a11-4d2b-9a01-000000000001", "cognito:groups": "[admin]"}
    patched = invoke(
        "AssignmentApiFunction",
        api_event("PATCH", f"/users/{rep.sub}", {"capacity": 5, "version": 1}, claims=admin),
    )
    assert patched["statusCode"] == 200, patched["body"]
    (job,) = aws.messages("AssignmentQueue")
    assert job["body"] == {**job["body"], "lead_id": lead.id, "trigger": "user_change"}
    assign_jobs(invoke, lead.id, trigger="user_change")

    assert aws.leads.get(lead.id).assigned_to == rep.sub  # type: ignore[union-attr]
    assert aws.assignments.waiting_lead_ids() == []
    assert aws.assignments.get_marker(lead.id).state is RoutingState.ASSIGNED  # type: ignore[union-attr]


def test_rules_send_leads_to_a_named_user_or_team_and_fall_back_to_the_team(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    health_rep = make_user(aws.users, "health")
    star = make_user(aws.users, "sales", name="Star Rep")
    make_user(aws.users, "sales")
    manager = {"sub": "5f0b7c1e-0a11-4d2b-9a01-000000000002", "cognito:groups": "[manager]"}
    for body in (
        {
            "name": "Health",
            "priority": 5,
            "conditions": [{"field": "industry", "operator": "equals", "value": "Healthcare"}],
            "target_team": "health",
        },
        {
            "name": "Grade A to the star",
            "priority": 1,
            "conditions": [{"field": "grade", "operator": "in", "value": ["A", "A+"]}],
            "target_user": star.sub,
        },
    ):
        created = invoke(
            "AssignmentApiFunction", api_event("POST", "/assignment-rules", body, claims=manager)
        )
        assert created["statusCode"] == 201, created["body"]
    health = make_lead(aws.leads, industry="Healthcare")
    hot = make_lead(aws.leads, score=85, grade="A")

    assign_jobs(invoke, health.id, hot.id)

    assert aws.leads.get(health.id).assigned_to == health_rep.sub  # type: ignore[union-attr]
    assert aws.leads.get(health.id).team == "health"  # type: ignore[union-attr]
    assert aws.leads.get(hot.id).assigned_to == star.sub  # type: ignore[union-attr]
    (by_rule,) = activities(aws, hot.id, "lead_assigned")
    assert by_rule.data["method"] == "rule_user" and by_rule.data["rule_name"] == "Grade A to the star"
    assert by_rule.description == "Assigned to Star Rep by rule 'Grade A to the star'"

    # The named user at capacity: the lead is balanced within their team instead.
    aws.users.replace(star, star.model_copy(update={"capacity": 1}))
    another = make_lead(aws.leads, score=90, grade="A+")
    assign_jobs(invoke, another.id)
    assert aws.leads.get(another.id).assigned_to not in (None, star.sub)  # type: ignore[union-attr]


def test_a_job_that_is_not_a_job_goes_to_the_dead_letter_queue_with_the_reason(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    lead = make_lead(aws.leads)
    make_user(aws.users, "sales")

    response = invoke(
        "AssignmentFunction",
        sqs_event(
            ["not json", {"lead": "x"}, {"lead_id": lead.id, "trigger": "score_threshold"}], ASSIGNMENT_QUEUE
        ),
    )

    assert response == {"batchItemFailures": []}  # dead-lettered, so done here
    dead = aws.messages("AssignmentDeadLetterQueue")
    assert sorted(m["attributes"]["failure_reason"] for m in dead) == [
        "The message body is not JSON",
        "The message is not a valid AssignmentJob (fields: lead_id, trigger)",
    ]
    assert {m["attributes"]["failure_type"] for m in dead} == {"PermanentFailure"}
    assert aws.leads.get(lead.id).assigned_to is not None  # type: ignore[union-attr]


# ---------------------------------------------------------------- the lead events stream


def test_a_scored_lead_over_the_threshold_is_queued_for_assignment_once(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    unscored = make_lead(aws.leads, score=0, grade=None)
    scored = unscored.model_copy(update={"score": 75, "grade": "B", "version": 2})
    aws.leads.replace(scored, 1, [])
    records = stream_event([("INSERT", unscored, None), ("MODIFY", scored, unscored)])

    first = invoke("LeadEventsFunction", records)
    again = invoke("LeadEventsFunction", records)

    assert first == again == {"batchItemFailures": []}
    jobs = aws.messages("AssignmentQueue")
    assert [(job["body"]["lead_id"], job["body"]["trigger"]) for job in jobs] == [
        (scored.id, "score_threshold")
    ]
    assert aws.assignments.get_marker(scored.id).state is RoutingState.REQUESTED  # type: ignore[union-attr]


def test_the_sample_stream_event_routes_its_lead(assignment_aws: AssignmentAws, invoke: Any) -> None:
    aws = assignment_aws
    sample = event("lead_events_stream.json")
    lead = lead_model(
        id=sample["Records"][0]["dynamodb"]["Keys"]["PK"]["S"].removeprefix("LEAD#"), score=75, grade="B"
    )
    aws.leads.create(lead, [])

    assert invoke("LeadEventsFunction", sample) == {"batchItemFailures": []}
    assert [job["body"]["lead_id"] for job in aws.messages("AssignmentQueue")] == [lead.id]


def test_a_scored_lead_below_the_threshold_is_marked_for_nurture_once(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    lead = make_lead(aws.leads, score=35, grade="F")

    invoke("LeadEventsFunction", stream_event([("MODIFY", lead, None)]))
    nurtured = aws.leads.get(lead.id)
    assert nurtured is not None
    invoke("LeadEventsFunction", stream_event([("MODIFY", nurtured, lead)]))

    assert nurtured.nurture is True and nurtured.version == lead.version + 1
    (marked,) = activities(aws, lead.id, "nurture_marked")
    assert marked.data == {"score": 35, "grade": "F", "threshold": 70}
    assert aws.messages("AssignmentQueue") == []

    # Its score later reaches the threshold: it is routed after all.
    hot = nurtured.model_copy(update={"score": 72, "grade": "B"})
    aws.leads.replace(hot, nurtured.version, [])
    invoke("LeadEventsFunction", stream_event([("MODIFY", hot, nurtured)]))
    assert [job["body"]["lead_id"] for job in aws.messages("AssignmentQueue")] == [lead.id]


def test_an_assignment_queues_one_notification_for_the_new_owner(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    rep = make_user(aws.users, "sales")
    lead = make_lead(aws.leads)
    assign_jobs(invoke, lead.id)
    assigned = aws.leads.get(lead.id)
    change = stream_event([("MODIFY", assigned, lead)])

    invoke("LeadEventsFunction", change)
    invoke("LeadEventsFunction", change)

    jobs = [job["body"] for job in aws.messages("NotificationQueue")]
    assert len(jobs) == 2  # the stream record was delivered twice; the email is deduplicated by event_id
    assert jobs[0] == jobs[1]
    assert jobs[0]["kind"] == "lead_assigned" and jobs[0]["recipient"] == rep.sub
    assert jobs[0]["event_id"] == f"assigned:{rep.sub}:{assigned.model_dump(mode='json')['assigned_at']}"  # type: ignore[union-attr]


def test_closing_an_assigned_lead_frees_its_reps_counter_once(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    rep = make_user(aws.users, "sales")
    lead = make_lead(aws.leads)
    assign_jobs(invoke, lead.id)
    assigned = aws.leads.get(lead.id)
    assert assigned is not None
    closed = aws.leads.replace(
        assigned.model_copy(update={"lead_status": LeadStatus.UNQUALIFIED}), assigned.version, []
    )
    change = stream_event([("MODIFY", closed, assigned)])

    invoke("LeadEventsFunction", change)
    invoke("LeadEventsFunction", change)

    assert aws.assignments.loads([rep.sub]) == {rep.sub: 0}
    reopened = aws.leads.replace(
        closed.model_copy(update={"lead_status": LeadStatus.CONTACTED}), closed.version, []
    )
    invoke("LeadEventsFunction", stream_event([("MODIFY", reopened, closed)]))
    assert aws.assignments.loads([rep.sub]) == {rep.sub: 1}


# ---------------------------------------------------------------- SES events


def test_ses_events_become_activities_once(assignment_aws: AssignmentAws, invoke: Any) -> None:
    aws = assignment_aws
    lead = make_lead(aws.leads)
    opened = event("ses_email_opened.json")
    opened["detail"]["mail"]["tags"]["lead_id"] = [lead.id]
    to_lead = json.loads(json.dumps(opened))
    to_lead["detail"]["mail"]["tags"]["audience"] = ["lead"]
    to_lead["detail"]["mail"]["messageId"] = "another-message"

    results = [invoke("SesEventsFunction", e) for e in (opened, opened, to_lead, to_lead)]

    assert [r["recorded"] for r in results] == [True, False, True, False]
    assert len(activities(aws, lead.id, "notification_opened")) == 1
    assert len(activities(aws, lead.id, "email_opened")) == 1


def test_ses_events_about_unknown_leads_or_without_a_lead_are_ignored(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    untagged = event("ses_email_bounced.json")
    del untagged["detail"]["mail"]["tags"]["lead_id"]
    malformed = event("ses_email_bounced.json")
    malformed["detail"]["mail"]["tags"]["lead_id"] = ["not-a-lead"]

    assert invoke("SesEventsFunction", event("ses_email_bounced.json")) == {"recorded": False}  # no such lead
    assert invoke("SesEventsFunction", untagged) == {"recorded": False}
    assert invoke("SesEventsFunction", malformed) == {"recorded": False}


# ---------------------------------------------------------------- helpers


def api_event(method: str, path: str, body: Any = None, *, claims: dict[str, str]) -> dict[str, Any]:
    """An HTTP API event for the assignment API (from the sample events), with this caller."""
    data = event("create_user.json")
    data["rawPath"] = data["requestContext"]["http"]["path"] = path
    data["requestContext"]["http"]["method"] = method
    data["routeKey"] = data["requestContext"]["routeKey"] = f"{method} {path}"
    data["requestContext"]["authorizer"]["jwt"]["claims"] = {"email": "someone@demo.leadflow.local", **claims}
    data["body"] = None if body is None else json.dumps(body)
    data.pop("queryStringParameters", None)
    data["rawQueryString"] = ""
    if "?" in path:
        data["rawPath"], data["rawQueryString"] = path.split("?", 1)
        data["requestContext"]["http"]["path"] = data["rawPath"]
        data["queryStringParameters"] = dict(part.split("=", 1) for part in data["rawQueryString"].split("&"))
    return data


def test_a_lead_routed_to_a_team_without_members_keeps_no_team_and_alerts_nobody(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    lead = make_lead(aws.leads)

    assign_jobs(invoke, lead.id)

    stored = aws.leads.get(lead.id)
    assert stored is not None and stored.assigned_to is None and stored.team is None  # every manager sees it
    assert aws.messages("NotificationQueue") == []
    assert aws.assignments.waiting_lead_ids("sales") == [(lead.id, "sales")]  # the team's first user wakes it
    (waiting,) = activities(aws, lead.id, "assignment_waiting")
    assert waiting.description.startswith("Team sales has no members")


def test_assignment_writes_the_same_index_keys_a_full_write_of_the_lead_would(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    make_user(aws.users, "sales")
    lead = make_lead(aws.leads)

    assign_jobs(invoke, lead.id)

    assigned = aws.leads.get(lead.id)
    assert assigned is not None and assigned.assigned_to is not None
    stored = unmarshal(aws.dynamodb.get_item(TableName=aws.table, Key=marshal(lead_key(lead.id)))["Item"])
    expected = LeadItem.from_lead(assigned, 4).model_dump(exclude_none=True)
    index_keys = {"written_by", *list_index_attributes(assigned, 4)}
    assert {k: stored.get(k) for k in index_keys} == {k: expected.get(k) for k in index_keys}


def test_a_waiting_lead_that_is_closed_leaves_the_queue_at_its_next_sweep(
    assignment_aws: AssignmentAws, invoke: Any
) -> None:
    aws = assignment_aws
    make_user(aws.users, "sales", capacity=0)
    lead = make_lead(aws.leads)
    assign_jobs(invoke, lead.id)
    waiting = aws.leads.get(lead.id)
    assert waiting is not None and aws.assignments.waiting_lead_ids() == [(lead.id, "sales")]
    aws.leads.replace(waiting.model_copy(update={"lead_status": LeadStatus.UNQUALIFIED}), waiting.version, [])

    invoke("AssignmentSweepFunction", event("assignment_sweep_schedule.json"))
    (job,) = aws.messages("AssignmentQueue")
    invoke("AssignmentFunction", sqs_event([job["body"]], ASSIGNMENT_QUEUE))

    assert aws.assignments.waiting_lead_ids() == []
    assert invoke("AssignmentSweepFunction", event("assignment_sweep_schedule.json")) == {"requeued": 0}


def test_the_sample_assignment_job_assigns_its_lead(assignment_aws: AssignmentAws, invoke: Any) -> None:
    aws = assignment_aws
    sample = event("assignment_job.json")
    lead_id = json.loads(sample["Records"][0]["body"])["lead_id"]
    aws.leads.create(lead_model(id=lead_id), [])
    rep = make_user(aws.users, "sales")

    assert invoke("AssignmentFunction", sample) == {"batchItemFailures": []}
    assert aws.leads.get(lead_id).assigned_to == rep.sub  # type: ignore[union-attr]
