"""Typed JSON bodies through the real handlers: `"active": "yes"` is a 422 naming `active`, as
`/qualify` and `/convert` always answered, and nothing is written."""

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from crm.nurture.repository import NurtureRepository

from devstack.provision import create_email_templates
from devstack.template import Template
from tests.integration.assignment_env import AssignmentAws, assignment_aws_fixture  # noqa: F401
from tests.support import event, response_json

SEQUENCE = {
    "name": "Webinar sign-ups",
    "steps": [{"delay_hours": 2, "template": "leadflow-dev-nurture-welcome"}],
}


@pytest.fixture
def nurture_aws(assignment_aws: AssignmentAws, template: Template) -> Iterator[AssignmentAws]:
    create_email_templates(boto3.client("ses", region_name="us-east-1"), template)
    yield assignment_aws


def stored_sequences(aws: AssignmentAws) -> list[Any]:
    return NurtureRepository(aws.table, client=aws.dynamodb).list_sequences()


def refused_fields(response: dict[str, Any]) -> list[str]:
    assert response["statusCode"] == 422, response["body"]
    return [problem["field"] for problem in response_json(response)["fields"]]


@pytest.mark.parametrize("active", ["yes", "true", 1])
def test_a_new_sequence_with_a_non_boolean_active_is_422_and_not_stored(
    nurture_aws: AssignmentAws, invoke: Any, active: Any
) -> None:
    response = invoke(
        "NurtureApiFunction", event("create_nurture_sequence.json", body={**SEQUENCE, "active": active})
    )

    assert refused_fields(response) == ["active"]
    assert stored_sequences(nurture_aws) == []


def test_a_patch_with_text_for_a_boolean_or_a_number_is_422_and_changes_nothing(
    nurture_aws: AssignmentAws, invoke: Any
) -> None:
    created = invoke("NurtureApiFunction", event("create_nurture_sequence.json", body=SEQUENCE))
    assert created["statusCode"] == 201, created["body"]
    sequence_id = response_json(created)["id"]

    def patch(body: dict[str, Any]) -> dict[str, Any]:
        sample = event("update_nurture_sequence.json", body=body, pathParameters={"id": sequence_id})
        sample["rawPath"] = f"/nurture-sequences/{sequence_id}"
        return invoke("NurtureApiFunction", sample)

    assert refused_fields(patch({"active": "no"})) == ["active"]
    assert refused_fields(patch({"priority": "5"})) == ["priority"]
    assert refused_fields(patch({"active": False, "version": "1"})) == ["version"]
    (stored,) = stored_sequences(nurture_aws)
    assert (stored.active, stored.priority, stored.version) == (True, 100, 1)
    accepted = patch({"active": False, "priority": 5})
    assert accepted["statusCode"] == 200, accepted["body"]
    assert (response_json(accepted)["active"], response_json(accepted)["priority"]) == (False, 5)
