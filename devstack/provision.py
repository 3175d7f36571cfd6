"""Creates the template's resources in DynamoDB Local and moto. Every function here is idempotent."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from .s3 import create_buckets
from .seed import Seed
from .template import LOCAL_REGION, Queue, Secret, Table, Template, TemplateError

log = logging.getLogger("devstack")

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Index keys DynamoDB's CreateTable accepts; CloudFormation-only ones (ContributorInsights...) are dropped.
_INDEX_KEYS = ("IndexName", "KeySchema", "Projection", "ProvisionedThroughput", "OnDemandThroughput")
# GenerateSecretString properties that are GetRandomPassword options (the others shape a JSON secret).
_PASSWORD_OPTIONS = (
    "PasswordLength",
    "ExcludeCharacters",
    "ExcludeNumbers",
    "ExcludePunctuation",
    "ExcludeUppercase",
    "ExcludeLowercase",
    "IncludeSpace",
    "RequireEachIncludedType",
)
# moto names a resource created with this tag after its value: here, the ARN suffix the template resolved.
_MOTO_CUSTOM_ID_TAG = "_custom_id_"


def table_definition(table: Table) -> dict[str, Any]:
    """CreateTable arguments for a template table. PITR, SSE, tags and deletion protection have no local
    meaning in DynamoDB Local and are skipped on purpose."""
    props = table.properties
    definition: dict[str, Any] = {
        "TableName": table.name,
        "AttributeDefinitions": props["AttributeDefinitions"],
        "KeySchema": props["KeySchema"],
        "BillingMode": props.get("BillingMode", "PROVISIONED"),
    }
    if definition["BillingMode"] == "PROVISIONED":
        definition["ProvisionedThroughput"] = props.get(
            "ProvisionedThroughput", {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5}
        )
    for key in ("GlobalSecondaryIndexes", "LocalSecondaryIndexes"):
        if props.get(key):
            definition[key] = [{k: v for k, v in index.items() if k in _INDEX_KEYS} for index in props[key]]
    if table.stream_view_type:
        definition["StreamSpecification"] = {"StreamEnabled": True, "StreamViewType": table.stream_view_type}
    return definition


def create_tables(dynamodb_client: Any, template: Template) -> list[str]:
    """Create the template's tables (with GSIs, stream and TTL) unless they exist; return their names."""
    existing = set(_all_table_names(dynamodb_client))
    for table in template.tables:
        if table.name not in existing:
            dynamodb_client.create_table(**table_definition(table))
            dynamodb_client.get_waiter("table_exists").wait(TableName=table.name)
        else:
            _add_missing_indexes(dynamodb_client, table)
        if table.ttl_attribute:
            current = dynamodb_client.describe_time_to_live(TableName=table.name)["TimeToLiveDescription"]
            if current.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING"):
                dynamodb_client.update_time_to_live(
                    TableName=table.name,
                    TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl_attribute},
                )
    return [table.name for table in template.tables]


def _add_missing_indexes(dynamodb_client: Any, table: Table) -> None:
    """A table kept from an older template gets the GSIs added since (one UpdateTable each, as on AWS);
    items written before have no keys in them until backfilled (docs/deploying-and-operating.md)."""
    definition = table_definition(table)
    described = dynamodb_client.describe_table(TableName=table.name)["Table"]
    present = {index["IndexName"] for index in described.get("GlobalSecondaryIndexes", [])}
    for index in definition.get("GlobalSecondaryIndexes", []):
        if index["IndexName"] in present:
            continue
        log.warning(
            "adding index %s to the kept table %s (backfill older items)", index["IndexName"], table.name
        )
        keys = {key["AttributeName"] for key in index["KeySchema"]}
        attributes = [a for a in definition["AttributeDefinitions"] if a["AttributeName"] in keys]
        dynamodb_client.update_table(
            TableName=table.name,
            AttributeDefinitions=attributes,
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        _wait_for_index(dynamodb_client, table.name, index["IndexName"])


def _wait_for_index(dynamodb_client: Any, table_name: str, index_name: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        described = dynamodb_client.describe_table(TableName=table_name)["Table"]
        states = {i["IndexName"]: i.get("IndexStatus") for i in described.get("GlobalSecondaryIndexes", [])}
        if states.get(index_name) == "ACTIVE":
            return
        time.sleep(0.2)
    raise TimeoutError(f"index {index_name} of {table_name} did not become ACTIVE in {timeout:.0f} s")


def _all_table_names(dynamodb_client: Any) -> Iterable[str]:
    for page in dynamodb_client.get_paginator("list_tables").paginate():
        yield from page["TableNames"]


def create_queues(sqs_client: Any, template: Template) -> dict[str, str]:
    """Create the template's queues, dead-letter queues first; return {logical id: queue URL}."""
    urls: dict[str, str] = {}
    for queue in _dead_letter_queues_first(template.queues):
        try:
            urls[queue.logical_id] = sqs_client.create_queue(
                QueueName=queue.name, Attributes=queue.attributes
            )["QueueUrl"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("QueueAlreadyExists", "QueueNameExists"):
                raise
            # Same name, other attributes: bring the queue in line with the template.
            url = sqs_client.get_queue_url(QueueName=queue.name)["QueueUrl"]
            sqs_client.set_queue_attributes(QueueUrl=url, Attributes=queue.attributes)
            urls[queue.logical_id] = url
    return urls


def _dead_letter_queues_first(queues: list[Queue]) -> list[Queue]:
    by_arn = {queue.arn: queue for queue in queues}
    ordered: list[Queue] = []

    def visit(queue: Queue, seen: frozenset[str]) -> None:
        if queue in ordered or queue.arn in seen:
            return
        dlq = by_arn.get(queue.dead_letter_arn or "")
        if dlq is not None:
            visit(dlq, seen | {queue.arn})
        ordered.append(queue)

    for queue in queues:
        visit(queue, frozenset())
    return ordered


def seed_parameter_name(name: str, template: Template) -> str:
    return name.format(**template.global_environment)


def create_parameters(ssm_client: Any, template: Template, seed: Seed) -> list[str]:
    """The template's SSM parameters, then the seed's local values (e.g. the demo partner secret)."""
    names = []
    for param in template.ssm_parameters:
        ssm_client.put_parameter(Name=param.name, Type=param.type, Value=param.value, Overwrite=True)
        names.append(param.name)
    for seed_param in seed.parameters:
        try:
            name = seed_parameter_name(seed_param.name, template)
        except KeyError as exc:
            log.warning("seed parameter %s skipped: the template's Globals have no %s", seed_param.name, exc)
            continue
        ssm_client.put_parameter(Name=name, Type=seed_param.type, Value=seed_param.value, Overwrite=True)
        names.append(name)
    return names


def create_secrets(secretsmanager_client: Any, template: Template, seed: Seed) -> dict[str, str]:
    """The template's Secrets Manager secrets, under the ARNs its `!Ref`s resolve to (what the functions get);
    return {logical id: ARN}. A value the seed names (the unsubscribe key the sample events are signed with)
    is put as it is; otherwise the value is the template's `SecretString`, or generated from
    `GenerateSecretString` by Secrets Manager's own GetRandomPassword, once, as CloudFormation does: a
    generated value stays while moto runs."""
    fixed: dict[str, str] = {}
    for seed_secret in seed.secrets:
        try:
            fixed[seed_parameter_name(seed_secret.name, template)] = seed_secret.value
        except KeyError as exc:
            log.warning("seed secret %s skipped: the template's Globals have no %s", seed_secret.name, exc)
    arns: dict[str, str] = {}
    for secret in template.secrets:
        declared = fixed.get(secret.name, secret.secret_string)
        try:
            current = secretsmanager_client.describe_secret(SecretId=secret.name)["ARN"]
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            current = _create_secret(secretsmanager_client, secret, declared)
        else:
            if declared is not None and _secret_value(secretsmanager_client, secret.name) != declared:
                secretsmanager_client.put_secret_value(SecretId=secret.name, SecretString=declared)
        if current != secret.arn:
            raise TemplateError(
                f"{secret.logical_id}: moto holds secret {secret.name} as {current}, but the functions are "
                f"given {secret.arn}; restart the local stack"
            )
        arns[secret.logical_id] = current
    return arns


def _create_secret(secretsmanager_client: Any, secret: Secret, declared: str | None) -> str:
    suffix = secret.arn.rsplit("-", 1)[1]
    request: dict[str, Any] = {
        "Name": secret.name,
        "Description": secret.description,
        "Tags": [
            *({"Key": key, "Value": value} for key, value in secret.tags),
            {"Key": _MOTO_CUSTOM_ID_TAG, "Value": suffix},
        ],
    }
    if declared is not None:
        request["SecretString"] = declared
    elif secret.generate is not None:
        request["SecretString"] = _generated_value(secretsmanager_client, secret)
    created: str = secretsmanager_client.create_secret(**request)["ARN"]
    secretsmanager_client.untag_resource(SecretId=created, TagKeys=[_MOTO_CUSTOM_ID_TAG])
    return created


def _generated_value(secretsmanager_client: Any, secret: Secret) -> str:
    spec = secret.generate or {}
    options: dict[str, Any] = {}
    for key in _PASSWORD_OPTIONS:
        if key in spec:
            value = spec[key]
            if key == "PasswordLength":
                options[key] = int(value)
            elif key == "ExcludeCharacters":
                options[key] = str(value)
            else:
                options[key] = value if isinstance(value, bool) else str(value).lower() == "true"
    password: str = secretsmanager_client.get_random_password(**options)["RandomPassword"]
    if "SecretStringTemplate" not in spec:
        return password
    if "GenerateStringKey" not in spec:
        raise TemplateError(f"{secret.logical_id}: SecretStringTemplate needs a GenerateStringKey")
    document = json.loads(spec["SecretStringTemplate"])
    document[spec["GenerateStringKey"]] = password
    return json.dumps(document)


def _secret_value(secretsmanager_client: Any, secret_id: str) -> str | None:
    try:
        value: str | None = secretsmanager_client.get_secret_value(SecretId=secret_id).get("SecretString")
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ResourceNotFoundException":  # a secret with no value yet
            raise
        return None
    return value


def create_event_buses(events_client: Any, template: Template) -> None:
    for name in template.event_buses:
        try:
            events_client.create_event_bus(Name=name)
        except ClientError as exc:
            if exc.response["Error"]["Code"] != "ResourceAlreadyExistsException":
                raise


def verify_email_identities(sesv2_client: Any, template: Template, seed: Seed) -> list[str]:
    """SES refuses unverified senders, in moto as in a sandboxed account. Verified here: the template's
    EmailIdentity resources, the seed's domains, and any address in a function's environment (its sender)."""
    identities = set(template.email_identities) | set(seed.ses_identities)
    for function in template.functions.values():
        for value in function.environment.values():
            identities.update(_EMAIL.findall(value))
    existing = {i["IdentityName"] for i in sesv2_client.list_email_identities().get("EmailIdentities", [])}
    for identity in sorted(identities - existing):
        sesv2_client.create_email_identity(EmailIdentity=identity)
    return sorted(identities)


def create_email_templates(ses_client: Any, template: Template) -> list[str]:
    """The template's SES email templates (`AWS::SES::Template`), created or brought in line with it, through
    the SES v1 API (moto's SES v2 has no templates; in AWS both APIs share them)."""
    for spec in template.email_templates:
        content = {
            "TemplateName": spec.name,
            "SubjectPart": spec.subject,
            "HtmlPart": spec.html,
            "TextPart": spec.text,
        }
        try:
            ses_client.create_template(Template=content)
        except ClientError as exc:
            if exc.response["Error"]["Code"] not in ("AlreadyExists", "AlreadyExistsException"):
                raise
            ses_client.update_template(Template=content)
    return [spec.name for spec in template.email_templates]


def provision(clients: Any, template: Template, seed: Seed) -> None:
    """Everything, in dependency order. `clients` has dynamodb, sqs, ssm, secretsmanager, events, ses,
    sesv2 and s3 attributes."""
    create_tables(clients.dynamodb, template)
    create_queues(clients.sqs, template)
    create_buckets(clients.s3, template)
    create_parameters(clients.ssm, template, seed)
    create_secrets(clients.secretsmanager, template, seed)
    create_event_buses(clients.events, template)
    verify_email_identities(clients.sesv2, template, seed)
    create_email_templates(clients.ses, template)


def start_app_seeding(
    template: Template, seed: Seed, dynamodb_endpoint: str, users_file: Path
) -> subprocess.Popen[str] | None:
    """Start the application's own seeding (`python -m crm.tools.seeding`, from the template's layer) with the
    seed's demo users, so a fresh stack has its users, default assignment rules and default nurture sequence.
    Runs in a child process while the rest of the stack starts; None when no layer of the template has that
    entry point."""
    layer = next(
        (lyr for lyr in template.layers if (lyr.content_dir / "crm" / "tools" / "seeding.py").exists()), None
    )
    if layer is None:
        return None
    users_file.write_text(json.dumps({"users": [dataclasses.asdict(user) for user in seed.users]}))
    env = {
        **os.environ,
        "PYTHONPATH": str(layer.content_dir),
        "TABLE_NAME": template.global_environment.get("TABLE_NAME", ""),
        "DEFAULT_TEAM": template.global_environment.get("DEFAULT_TEAM", "sales"),
        # Names the default nurture sequence's SES templates (leadflow-<stage>-nurture-…).
        "STAGE": template.global_environment.get("STAGE", "dev"),
        "AWS_ENDPOINT_URL_DYNAMODB": dynamodb_endpoint,
        "AWS_REGION": LOCAL_REGION,
        "AWS_DEFAULT_REGION": LOCAL_REGION,
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
    }
    env.pop("AWS_PROFILE", None)
    return subprocess.Popen(
        [sys.executable, "-m", "crm.tools.seeding", "--users", str(users_file)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish_app_seeding(process: subprocess.Popen[str] | None, timeout: float = 120.0) -> str:
    """Wait for `start_app_seeding`; its summary line, or RuntimeError with what went wrong."""
    if process is None:
        return ""
    out, err = process.communicate(timeout=timeout)
    if process.returncode != 0:
        raise RuntimeError(f"seeding the application failed: {(err or out).strip()[-2000:]}")
    return out.strip()
