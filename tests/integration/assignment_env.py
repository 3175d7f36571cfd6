"""Fixtures of the assignment and notification integration tests (import them into a test module)."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from crm.assignment.repository import AssignmentRepository
from crm.leads.repository import LeadRepository
from crm.notifications.repository import NotificationRepository
from crm.users.repository import UserRepository
from moto.core import DEFAULT_ACCOUNT_ID
from moto.ses.models import ses_backends

from devstack.provision import verify_email_identities
from devstack.seed import load_seed
from devstack.template import LOCAL_ACCOUNT_ID, Template


@dataclass
class AssignmentAws:
    table: str
    dynamodb: Any
    sqs: Any
    queue_urls: dict[str, str]  # logical id -> URL
    queue_arns: dict[str, str]
    leads: LeadRepository
    users: UserRepository
    assignments: AssignmentRepository
    deliveries: NotificationRepository

    def messages(self, queue: str, wait: bool = False) -> list[dict[str, Any]]:
        """Receive (and delete) everything on a queue; bodies parsed, attributes kept."""
        found: list[dict[str, Any]] = []
        while True:
            response = self.sqs.receive_message(
                QueueUrl=self.queue_urls[queue],
                MaxNumberOfMessages=10,
                WaitTimeSeconds=1 if wait and not found else 0,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            )
            batch = response.get("Messages", [])
            if not batch:
                return found
            for message in batch:
                self.sqs.delete_message(
                    QueueUrl=self.queue_urls[queue], ReceiptHandle=message["ReceiptHandle"]
                )
                found.append(
                    {
                        "body": _parsed(message["Body"]),
                        "attributes": {
                            name: value.get("StringValue")
                            for name, value in (message.get("MessageAttributes") or {}).items()
                        },
                    }
                )


def _parsed(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


def sent_emails() -> list[Any]:
    """What moto's SES accepted (SES v2 Simple sends are kept by the v1 backend)."""
    return list(ses_backends[DEFAULT_ACCOUNT_ID]["us-east-1"].sent_messages)


def create_template_queues(sqs: Any, template: Template) -> dict[str, str]:
    """The template's queues in moto's account (redrive policies name their DLQ by ARN), DLQs first."""
    urls: dict[str, str] = {}
    for queue in sorted(template.queues, key=lambda q: "RedrivePolicy" in q.attributes):
        attributes = dict(queue.attributes)
        if "RedrivePolicy" in attributes:
            attributes["RedrivePolicy"] = attributes["RedrivePolicy"].replace(
                f":{LOCAL_ACCOUNT_ID}:", f":{DEFAULT_ACCOUNT_ID}:"
            )
        urls[queue.logical_id] = sqs.create_queue(QueueName=queue.name, Attributes=attributes)["QueueUrl"]
    return urls


@pytest.fixture(name="assignment_aws")
def assignment_aws_fixture(moto_stack: dict[str, Any], template: Template) -> Iterator[AssignmentAws]:
    """moto with the template's table, queues and verified senders; repositories on them."""
    dynamodb = moto_stack["dynamodb"]
    sqs = boto3.client("sqs", region_name="us-east-1")
    urls = create_template_queues(sqs, template)
    arns = {
        logical_id: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]
        for logical_id, url in urls.items()
    }
    verify_email_identities(boto3.client("sesv2", region_name="us-east-1"), template, load_seed())
    table = moto_stack["table"]
    yield AssignmentAws(
        table=table,
        dynamodb=dynamodb,
        sqs=sqs,
        queue_urls=urls,
        queue_arns=arns,
        leads=LeadRepository(table, client=dynamodb),
        users=UserRepository(table, client=dynamodb),
        assignments=AssignmentRepository(table, client=dynamodb),
        deliveries=NotificationRepository(table, client=dynamodb),
    )
