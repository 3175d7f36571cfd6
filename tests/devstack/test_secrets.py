"""The template's Secrets Manager secrets in the local stack: `!Ref` gives the ARN as CloudFormation does, and
provisioning creates each secret in moto under that very ARN, with a generated value (or the seed's)."""

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from devstack.moto_server import MotoServer
from devstack.provision import create_secrets
from devstack.seed import Seed, SeedSecret, load_seed
from devstack.template import Secret, Template, load_template, secret_arn

SECRET_ARN = re.compile(r"^arn:aws:secretsmanager:us-east-1:000000000000:secret:(?P<name>.+)-[A-Za-z0-9]{6}$")


@pytest.fixture(scope="module")
def moto() -> Iterator[MotoServer]:
    with MotoServer() as server:
        yield server


@pytest.fixture
def secretsmanager(moto: MotoServer) -> Iterator[Any]:
    client = boto3.client(
        "secretsmanager",
        region_name="us-east-1",
        endpoint_url=moto.endpoint_url,
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    yield client
    for page in client.get_paginator("list_secrets").paginate():
        for secret in page["SecretList"]:
            client.delete_secret(SecretId=secret["ARN"], ForceDeleteWithoutRecovery=True)


def test_a_secret_ref_is_its_arn_carrying_the_declared_name(template: Template) -> None:
    secrets = {secret.logical_id: secret for secret in template.secrets}
    cursor, unsubscribe = secrets["CursorSigningKey"], secrets["UnsubscribeSigningKey"]

    assert (cursor.name, unsubscribe.name) == (
        "leadflow/dev/cursor-signing-key",
        "leadflow/dev/unsubscribe-signing-key",
    )
    for secret in (cursor, unsubscribe):
        match = SECRET_ARN.match(secret.arn)
        assert match is not None and match["name"] == secret.name
        assert secret.generate == {"PasswordLength": 64, "ExcludePunctuation": True}
        assert "first line" in secret.description and "second" in secret.description
    assert template.function("LeadQueriesFunction").environment["CURSOR_KEY_SECRET"] == cursor.arn
    for name in ("NotificationFunction", "UnsubscribeFunction"):
        assert template.function(name).environment["UNSUBSCRIBE_KEY_SECRET"] == unsubscribe.arn
    # The SAM policy template grants reading exactly that secret.
    statements = [
        statement
        for policy in template.resources["LeadQueriesFunctionRole"]["Properties"]["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
    ]
    assert {
        "Action": ["secretsmanager:GetSecretValue"],
        "Effect": "Allow",
        "Resource": cursor.arn,
    } in statements
    assert not any("KEY_PARAMETER" in key for fn in template.functions.values() for key in fn.environment)


def test_the_stage_names_the_secrets() -> None:
    prod = load_template(parameter_overrides={"Stage": "prod"})

    assert sorted(secret.arn for secret in prod.secrets) == [
        secret_arn("leadflow/prod/cursor-signing-key"),
        secret_arn("leadflow/prod/privacy-hash-key"),
        secret_arn("leadflow/prod/unsubscribe-signing-key"),
    ]


def test_provisioning_creates_the_template_secrets_where_the_functions_look(
    secretsmanager: Any, template: Template
) -> None:
    arns = create_secrets(secretsmanager, template, load_seed())

    cursor_arn = template.function("LeadQueriesFunction").environment["CURSOR_KEY_SECRET"]
    unsubscribe_arn = template.function("UnsubscribeFunction").environment["UNSUBSCRIBE_KEY_SECRET"]
    privacy_arn = template.function("PrivacyFunction").environment["PRIVACY_KEY_SECRET"]
    assert arns == {
        "CursorSigningKey": cursor_arn,
        "UnsubscribeSigningKey": unsubscribe_arn,
        "PrivacyHashKey": privacy_arn,
    }
    described = secretsmanager.describe_secret(SecretId="leadflow/dev/cursor-signing-key")
    assert described["ARN"] == cursor_arn
    assert described["Description"].startswith("HMAC key of the GET /leads page cursors")
    assert not described.get("Tags")  # moto's id tag is gone once the ARN is set
    generated = secretsmanager.get_secret_value(SecretId=cursor_arn)["SecretString"]
    assert re.fullmatch(r"[A-Za-z0-9]{64}", generated)
    # The unsubscribe key is the seed's, so the sample events' tokens verify against the local stack.
    assert secretsmanager.get_secret_value(SecretId=unsubscribe_arn)["SecretString"] == (
        "local-unsubscribe-signing-key"
    )


def test_provisioning_again_keeps_a_generated_value_and_restores_a_seeded_one(
    secretsmanager: Any, template: Template
) -> None:
    arns = create_secrets(secretsmanager, template, load_seed())
    generated = secretsmanager.get_secret_value(SecretId=arns["CursorSigningKey"])["SecretString"]
    secretsmanager.put_secret_value(SecretId=arns["UnsubscribeSigningKey"], SecretString="changed by hand")

    again = create_secrets(secretsmanager, template, load_seed())

    assert again == arns
    assert secretsmanager.get_secret_value(SecretId=arns["CursorSigningKey"])["SecretString"] == generated
    assert secretsmanager.get_secret_value(SecretId=arns["UnsubscribeSigningKey"])["SecretString"] == (
        "local-unsubscribe-signing-key"
    )


def test_json_literal_and_empty_secrets_are_created_as_cloudformation_would(secretsmanager: Any) -> None:
    def secret(logical_id: str, **fields: Any) -> Secret:
        name = f"stack-test/{logical_id}"
        values = {"description": "", "secret_string": None, "generate": None, "tags": ()} | fields
        return Secret(logical_id=logical_id, name=name, arn=secret_arn(name), **values)

    template = Template(
        path=Path("template.yaml"),
        root=Path("."),
        parameters={},
        resources={},
        global_environment={"STAGE": "test"},
        secrets=[
            secret(
                "Database",
                generate={
                    "SecretStringTemplate": '{"username": "app"}',
                    "GenerateStringKey": "password",
                    "PasswordLength": 20,
                    "ExcludeCharacters": "\"@/\\'",
                    "ExcludePunctuation": "true",
                },
                tags=(("team", "sales"),),
            ),
            secret("Literal", secret_string="declared-in-template"),
            secret("Seeded", secret_string="declared-in-template"),
            secret("Empty"),
        ],
    )
    seed = Seed(
        users=(), parameters=(), ses_identities=(), secrets=(SeedSecret("stack-test/{STAGE}-x", "unused"),)
    )
    seeded = Seed(users=(), parameters=(), ses_identities=(), secrets=(SeedSecret("stack-test/Seeded", "s"),))

    arns = create_secrets(secretsmanager, template, seed)
    create_secrets(secretsmanager, template, seeded)

    database = json.loads(secretsmanager.get_secret_value(SecretId=arns["Database"])["SecretString"])
    assert database["username"] == "app" and re.fullmatch(r"[A-Za-z0-9]{20}", database["password"])
    assert secretsmanager.describe_secret(SecretId=arns["Database"])["Tags"] == [
        {"Key": "team", "Value": "sales"}
    ]
    assert secretsmanager.get_secret_value(SecretId=arns["Literal"])["SecretString"] == "declared-in-template"
    assert secretsmanager.get_secret_value(SecretId=arns["Seeded"])["SecretString"] == "s"
    assert secretsmanager.describe_secret(SecretId=arns["Empty"])["ARN"] == secret_arn("stack-test/Empty")
    assert not secretsmanager.list_secret_version_ids(SecretId=arns["Empty"])["Versions"]
    # A seed value for a secret the template does not declare creates nothing.
    names = {secret["Name"] for secret in secretsmanager.list_secrets()["SecretList"]}
    assert names == {f"stack-test/{logical_id}" for logical_id in ("Database", "Literal", "Seeded", "Empty")}
