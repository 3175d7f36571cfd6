"""The real template.yaml, as the local stack reads it: names, environment, routes, auth and CORS."""

import pytest

from devstack.provision import seed_parameter_name, table_definition
from devstack.seed import load_seed
from devstack.template import load_template


@pytest.fixture(scope="module")
def template():
    return load_template("template.yaml")


def test_the_table_keeps_its_keys_indexes_stream_and_ttl(template):
    (table,) = [t for t in template.tables if t.logical_id == "LeadsTable"]
    definition = table_definition(table)
    assert definition["TableName"] == "leadflow-local-LeadsTable"
    assert {i["IndexName"] for i in definition["GlobalSecondaryIndexes"]} >= {"GSI1", "GSI2", "GSI3"}
    assert definition["StreamSpecification"] == {
        "StreamEnabled": True,
        "StreamViewType": "NEW_AND_OLD_IMAGES",
    }
    assert table.ttl_attribute == "ttl"
    assert "SSESpecification" not in definition and "PointInTimeRecoverySpecification" not in definition


def test_functions_get_globals_and_resolved_references(template):
    from samcli.yamlhelper import yaml_parse

    from devstack.paths import PROJECT_ROOT

    raw = yaml_parse((PROJECT_ROOT / "template.yaml").read_text())
    for function in template.functions.values():
        assert function.environment["TABLE_NAME"] == "leadflow-local-LeadsTable"
        assert (
            function.environment["PARTNER_SECRETS_PATH"]
            == template.global_environment["PARTNER_SECRETS_PATH"]
        )
        # The template's Globals apply unless the function sets its own.
        properties = raw["Resources"][function.logical_id]["Properties"]
        assert function.timeout_s == properties.get("Timeout", raw["Globals"]["Function"]["Timeout"])
        assert function.memory_mb == properties.get("MemorySize", raw["Globals"]["Function"]["MemorySize"])
        assert function.code_dir.is_dir() and function.handler == "app.lambda_handler"
        assert [d.name for d in function.layer_dirs] == ["crm"]
        assert function.arn.endswith(":function:" + function.name)


def test_the_demo_partner_secret_lands_under_the_template_path(template):
    (secret,) = [p for p in load_seed().parameters if p.name.endswith("/webhook-secret")]
    assert seed_parameter_name(secret.name, template) == (
        template.global_environment["PARTNER_SECRETS_PATH"] + "/acme/webhook-secret"
    )


def test_routes_come_from_the_http_api_events(template):
    routes = {(r.method, r.path): r for r in template.routes}
    assert routes["POST", "/capture/form"].function_logical_id == "CaptureFunction"
    assert routes["POST", "/capture/form"].authorizer is None
    assert routes["POST", "/webhooks/{partner}"].authorizer is None
    assert routes["GET", "/leads/{id}"].function_logical_id == "LeadsApiFunction"
    assert routes["GET", "/leads/{id}"].authorizer == "CognitoJwt"
    assert routes["GET", "/leads/{id}"].route_key == "GET /leads/{id}"


def test_the_authorizer_and_cors_are_the_template_ones(template):
    (api,) = template.http_apis
    authorizer = api.authorizers["CognitoJwt"]
    assert authorizer.audience == ("leadflow-local-UserPoolClient",)
    assert authorizer.issuer.startswith("https://cognito-idp.us-east-1.amazonaws.com/")
    assert api.cors is not None
    assert api.cors.allow_origins == ("http://localhost:8000", "http://127.0.0.1:8000")
    assert "Authorization" in api.cors.allow_headers and api.cors.max_age == 600


def test_parameters_can_be_overridden():
    template = load_template("template.yaml", parameter_overrides={"Stage": "prod"})
    assert template.global_environment["PARTNER_SECRETS_PATH"] == "/leadflow/prod/partners"
