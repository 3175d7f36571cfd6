"""The local stack keeps its DynamoDB Local data across runs: a table created from an older template gets
the GSIs added since when the stack starts again (one UpdateTable each), instead of failing every Query on
them."""

import copy
import dataclasses
from typing import Any

import boto3

from devstack.provision import create_tables
from devstack.template import Template

NEW = ("UnassignedByCreated", "StatusByCreated", "SourceByCreated")


def test_a_kept_table_gets_the_indexes_the_template_added(dynamodb_local: str, template: Template) -> None:
    client: Any = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=dynamodb_local)
    (leads,) = [table for table in template.tables if table.logical_id == "LeadsTable"]
    current = dataclasses.replace(leads, name="kept-table-test", properties=copy.deepcopy(leads.properties))
    older = dataclasses.replace(current, properties=copy.deepcopy(current.properties))
    indexes = older.properties["GlobalSecondaryIndexes"]
    older.properties["GlobalSecondaryIndexes"] = [i for i in indexes if i["IndexName"] not in NEW]
    new_keys = {"UNASSIGNEDPK", "STATUSPK", "SOURCEPK"}
    attributes = older.properties["AttributeDefinitions"]
    older.properties["AttributeDefinitions"] = [a for a in attributes if a["AttributeName"] not in new_keys]
    create_tables(client, dataclasses.replace(template, tables=[older]))

    create_tables(client, dataclasses.replace(template, tables=[current]))
    create_tables(client, dataclasses.replace(template, tables=[current]))  # nothing left to add

    described = client.describe_table(TableName="kept-table-test")["Table"]["GlobalSecondaryIndexes"]
    assert {i["IndexName"] for i in described} == {i["IndexName"] for i in indexes}
    status = client.query(
        TableName="kept-table-test",
        IndexName="StatusByCreated",
        KeyConditionExpression="STATUSPK = :pk",
        ExpressionAttributeValues={":pk": {"S": "STATUS#new#0"}},
    )
    assert status["Items"] == []
