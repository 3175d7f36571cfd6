"""Builders shared by the assignment and notification tests: users, leads, and the events Lambda receives."""

import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import TypeSerializer
from crm.leads.model import Lead, new_activity
from crm.leads.repository import LeadItem, LeadRepository
from crm.platform.auth import Role
from crm.platform.working_hours import WorkingHours
from crm.users.model import OutOfOffice, User
from crm.users.repository import UserRepository

NOW = datetime(2026, 11, 25, 9, 36, 19, tzinfo=UTC)
STREAM_ARN = "arn:aws:dynamodb:us-east-1:000000000000:table/leadflow-local-LeadsTable/stream/x"
_serializer = TypeSerializer()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_user(
    users: UserRepository,
    team: str,
    *,
    role: Role = Role.REP,
    name: str | None = None,
    capacity: int | None = None,
    active: bool = True,
    working_hours: WorkingHours | None = None,
    out_of_office: OutOfOffice | None = None,
    teams: list[str] | None = None,
    sub: str | None = None,
) -> User:
    sub = sub or str(uuid.uuid4())
    user = User(
        sub=sub,
        name=name or f"Rep {sub[:6]}",
        email=f"{uuid.uuid4().hex[:12]}@demo.leadflow.local",
        role=role,
        teams=teams or [team],
        active=active,
        capacity=capacity,
        working_hours=working_hours,
        out_of_office=out_of_office,
        created_at=NOW,
        updated_at=NOW,
    )
    users.create(user)
    return user


def lead_model(score: int = 75, grade: str | None = "B", **fields: Any) -> Lead:
    lead_id = str(uuid.uuid4())
    values: dict[str, Any] = {
        "id": lead_id,
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": f"ada-{lead_id[:8]}@agency.gov",
        "company": "Analytical Engines",
        "title": "CTO",
        "industry": "Technology",
        "employee_count": 5000,
        "annual_revenue": Decimal("50000000"),
        "lead_source": "website_form",
        "score": score,
        "grade": grade,
        "created_at": NOW,
        "updated_at": NOW,
    }
    values.update(fields)
    return Lead(**values)


def make_lead(leads: LeadRepository, score: int = 75, grade: str | None = "B", **fields: Any) -> Lead:
    lead = lead_model(score, grade, **fields)
    leads.create(lead, [new_activity(lead.id, "lead_captured", "Captured (test)", "test", NOW)])
    return lead


def sqs_event(bodies: list[Any], queue: str, receive_count: int = 1) -> dict[str, Any]:
    """An SQS event as Lambda delivers it; each body a dict (JSON-encoded here) or a raw string."""
    return {
        "Records": [
            {
                "messageId": str(uuid.uuid4()),
                "receiptHandle": f"handle-{uuid.uuid4().hex}",
                "body": body if isinstance(body, str) else json.dumps(body),
                "attributes": {
                    "ApproximateReceiveCount": str(receive_count),
                    "SentTimestamp": "1795599381000",
                    "SenderId": "AIDAIENQZJOLO23YVJ4VO",
                    "ApproximateFirstReceiveTimestamp": "1795599381001",
                },
                "messageAttributes": {},
                "md5OfBody": "0c5f5b3c1b4b3d1f3e2a8e9d7c6b5a49",
                "eventSource": "aws:sqs",
                "eventSourceARN": f"arn:aws:sqs:us-east-1:000000000000:{queue}",
                "awsRegion": "us-east-1",
            }
            for body in bodies
        ]
    }


def sqs_event_from_messages(messages: list[dict[str, Any]], queue_arn: str) -> dict[str, Any]:
    """The event Lambda builds from messages received from SQS (receive_message with all attributes)."""
    return {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "attributes": dict(message.get("Attributes") or {}),
                "messageAttributes": {},
                "md5OfBody": message.get("MD5OfBody", ""),
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": "us-east-1",
            }
            for message in messages
        ]
    }


def _image(lead: Lead | None) -> dict[str, Any] | None:
    if lead is None:
        return None
    item = LeadItem.from_lead(lead, 4).model_dump()
    return {key: _serializer.serialize(value) for key, value in item.items() if value is not None}


def stream_event(changes: list[tuple[str, Lead | None, Lead | None]]) -> dict[str, Any]:
    """A DynamoDB stream event of lead changes: (event name, new lead, old lead) each."""
    records = []
    for index, (event_name, new, old) in enumerate(changes):
        lead = new or old
        assert lead is not None
        dynamodb: dict[str, Any] = {
            "ApproximateCreationDateTime": 1795599380,
            "Keys": {"PK": {"S": f"LEAD#{lead.id}"}, "SK": {"S": "LEAD"}},
            "SequenceNumber": f"{300000000000000499660 + index}",
            "SizeBytes": 1520,
            "StreamViewType": "NEW_AND_OLD_IMAGES",
        }
        if new is not None:
            dynamodb["NewImage"] = _image(new)
        if old is not None:
            dynamodb["OldImage"] = _image(old)
        records.append(
            {
                "eventID": uuid.uuid4().hex,
                "eventName": event_name,
                "eventVersion": "1.1",
                "eventSource": "aws:dynamodb",
                "awsRegion": "us-east-1",
                "dynamodb": dynamodb,
                "eventSourceARN": STREAM_ARN,
            }
        )
    return {"Records": records}
