"""The table's real stream, read from DynamoDB Local and fed to the projection handlers as Lambda would.

Only the projection handlers (list-index repair, search, analytics) run here: the other lead-event
handlers send to SQS and have their own tests.
"""

import uuid
from typing import Any

import boto3
from aws_lambda_powertools.utilities.data_classes.dynamo_db_stream_event import DynamoDBRecord
from crm import bootstrap
from crm.analytics.reactions import count_for_analytics
from crm.leads.changes import LeadChange, LeadEventsDispatcher
from crm.platform.dynamo import unmarshal
from crm.queries.reactions import index_for_search, repair_list_index

from devstack.provision import table_definition
from devstack.pumps import aws_stream_record
from devstack.template import Template


def create_isolated_table(endpoint: str, template: Template) -> str:
    """A table shaped exactly like LeadsTable (keys, GSIs, stream), under a fresh name."""
    client = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
    table = next(t for t in template.tables if t.logical_id == "LeadsTable")
    definition = table_definition(table)
    definition["TableName"] = f"leads-{uuid.uuid4().hex[:10]}"
    client.create_table(**definition)
    client.get_waiter("table_exists").wait(TableName=definition["TableName"])
    return str(definition["TableName"])


class StreamReader:
    """Reads every record written since the last call, shard by shard, like an event source mapping."""

    def __init__(self, endpoint: str, table: str) -> None:
        self.dynamodb = boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint)
        self.streams = boto3.client("dynamodbstreams", region_name="us-east-1", endpoint_url=endpoint)
        self.stream_arn = self.dynamodb.describe_table(TableName=table)["Table"]["LatestStreamArn"]
        self.iterators: dict[str, str | None] = {}

    def _shards(self) -> list[str]:
        description = self.streams.describe_stream(StreamArn=self.stream_arn)["StreamDescription"]
        return [shard["ShardId"] for shard in description["Shards"]]

    def read(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = []
        for shard in self._shards():
            if shard not in self.iterators:
                self.iterators[shard] = self.streams.get_shard_iterator(
                    StreamArn=self.stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON"
                )["ShardIterator"]
            while self.iterators[shard]:
                response = self.streams.get_records(ShardIterator=self.iterators[shard], Limit=1000)
                self.iterators[shard] = response.get("NextShardIterator")
                if not response["Records"]:
                    break
                # As Lambda delivers them, through the local stack's own conversion.
                records.extend(aws_stream_record(record, self.stream_arn) for record in response["Records"])
        return records


def project(records: list[dict[str, Any]]) -> int:
    """Run the projection handlers over lead records, as LeadEventsFunction does; returns how many."""
    dispatcher = LeadEventsDispatcher(
        [
            lambda change: repair_list_index(change, bootstrap.lead_query_service()),
            lambda change: index_for_search(change, bootstrap.lead_query_service()),
            lambda change: count_for_analytics(change, bootstrap.analytics_service()),
        ]
    )
    handled = 0
    for record in records:
        wrapped = DynamoDBRecord(record)
        if LeadChange.from_record(wrapped) is not None:
            dispatcher.handle(wrapped)
            handled += 1
    return handled


def new_image(record: dict[str, Any]) -> dict[str, Any]:
    return unmarshal(record["dynamodb"].get("NewImage") or {})
