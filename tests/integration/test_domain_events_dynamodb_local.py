"""Domain events from the table's real stream (DynamoDB Local) to a real bus (moto's EventBridge): a capture,
a merge, a conversion and an erasure publish their events, each valid against its JSON Schema; the same
stream records delivered again publish nothing more (the markers in the table)."""

import json
import uuid
from pathlib import Path
from typing import Any

import boto3
import jsonschema
import pytest
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from crm import bootstrap
from crm.integrations.bus import EventBridgeBus
from crm.integrations.publisher import DomainEventPublisher
from crm.integrations.repository import PublishedEventRepository
from crm.leads.model import Channel, LeadStatus, LeadSubmission
from crm.leads.repository import LeadRepository

from devstack.template import Template
from tests.integration.lead_stream import StreamReader, create_isolated_table

pytestmark = pytest.mark.ddblocal

SCHEMAS = Path(__file__).resolve().parents[2] / "events" / "schemas"


def submission(email: str, **extra: Any) -> LeadSubmission:
    return LeadSubmission(
        channel=Channel.WEBSITE_FORM,
        first_name="Mary",
        last_name="Somerville",
        email=email,
        lead_source="website",
        submitted_by="website_form",
        **extra,
    )


def test_stream_records_publish_their_events_once_even_when_delivered_twice(
    local_aws: dict[str, Any],
    moto_endpoint: str,
    template: Template,
    function_env: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Given a table of its own, its stream, and the bus in moto with a rule that keeps what it receives
    table = create_isolated_table(local_aws["dynamodb"].meta.endpoint_url, template)
    function_env.pin(TABLE_NAME=table)
    function_env("LeadEventsFunction")
    bootstrap.reset()
    monkeypatch.setenv("AWS_ENDPOINT_URL_EVENTBRIDGE", moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL_SQS", moto_endpoint)
    events = boto3.client("events", region_name="us-east-1", endpoint_url=moto_endpoint)
    sqs = boto3.client("sqs", region_name="us-east-1", endpoint_url=moto_endpoint)
    bus = f"bus-{uuid.uuid4().hex[:8]}"
    events.create_event_bus(Name=bus)
    queue = sqs.create_queue(QueueName=f"seen-{bus}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    events.put_rule(Name="all", EventBusName=bus, EventPattern=json.dumps({"source": ["leadflow"]}))
    events.put_targets(Rule="all", EventBusName=bus, Targets=[{"Id": "q", "Arn": arn}])
    reader = StreamReader(local_aws["dynamodb"].meta.endpoint_url, table)
    publisher = DomainEventPublisher(
        EventBridgeBus(bus), PublishedEventRepository(table, client=local_aws["dynamodb"])
    )

    # When a lead is captured, merged, converted and erased
    email = f"mary-{uuid.uuid4().hex[:8]}@example.com"
    capture = bootstrap.capture_service()
    lead_id = capture.capture(submission(email)).lead_id
    capture.capture(submission(email, phone="+44 20 7946 0001"))
    leads = LeadRepository(table, client=local_aws["dynamodb"])
    lead = leads.get(lead_id)
    assert lead is not None
    leads.replace(
        lead.model_copy(
            update={
                "converted": True,
                "lead_status": LeadStatus.CONVERTED,
                "contact_id": "C-1",
                "company_id": "CO-1",
                "deal_id": "D-1",
            }
        ),
        lead.version,
        [],
    )
    local_aws["dynamodb"].delete_item(
        TableName=table, Key={"PK": {"S": f"LEAD#{lead_id}"}, "SK": {"S": "LEAD"}}
    )
    records = reader.read()
    first = [e for r in records for e in publisher.handle(DynamoDBRecord(r))]
    again = [e for r in records for e in publisher.handle(DynamoDBRecord(r))]  # the batch redelivered

    # Then each fact is published once, as its schema says
    assert again == []
    received = []
    while True:
        messages = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            break
        for message in messages:
            received.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
    names = sorted(event["detail-type"] for event in received)
    assert names == sorted(
        ["lead.captured", "lead.merged", "lead.status_changed", "lead.converted", "lead.erased"]
    ), names
    assert len(first) == len(received)
    for event in received:
        schema = json.loads((SCHEMAS / f"{event['detail-type']}.json").read_text())
        jsonschema.validate(event, schema, format_checker=jsonschema.FormatChecker())
        assert event["detail"]["lead_id"] == lead_id
    [erased] = [event for event in received if event["detail-type"] == "lead.erased"]
    assert email not in json.dumps(erased) and "Somerville" not in json.dumps(erased)
    [merged] = [event for event in received if event["detail-type"] == "lead.merged"]
    assert merged["detail"]["changes"] == {"phone": {"old": None, "new": "+44 20 7946 0001"}}
