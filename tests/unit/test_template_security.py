"""What template.yaml promises about safety and operations, read from the template as it deploys.

The resolved template (SAM's expansion, parameters applied, as `devstack.template` builds it) shows what
CloudFormation receives: roles, the HTTP API stage, event invoke configs. The raw YAML shows what SAM leaves
alone: deletion policies and checkov's skip notes.
"""

from collections.abc import Iterator
from typing import Any

import pytest

from devstack.paths import PROJECT_ROOT
from devstack.template import Template, load_template

PUBLIC_FUNCTIONS = {"CaptureFunction", "UnsubscribeFunction", "DocsFunction", "ConsoleFunction"}


@pytest.fixture(scope="module")
def raw() -> dict[str, Any]:
    from samcli.yamlhelper import yaml_parse

    parsed: dict[str, Any] = yaml_parse((PROJECT_ROOT / "template.yaml").read_text())
    return parsed


@pytest.fixture(scope="module")
def deployed() -> Template:
    """The template with its parameter defaults, as a plain `sam deploy` would create it."""
    return load_template("template.yaml")


CONFIGURED = {
    "UserPoolMfa": "OFF",
    "CaptchaSecret": "0x4AAA-secret",
    "CaptchaVerifyUrl": "https://www.google.com/recaptcha/api/siteverify",
    "NurtureRequiresConsent": "false",
    "PublicRouteRateLimit": "2",
    "PublicRouteBurstLimit": "5",
    "ApiRateLimit": "7",
    "PublicFunctionConcurrency": "25",
    "AlarmEmail": "ops@example.com",
    "LogRetentionDays": "90",
}


@pytest.fixture(scope="module")
def configured() -> Template:
    """The template with every safety and operations parameter set away from its default."""
    return load_template("template.yaml", parameter_overrides=CONFIGURED)


def resources_of(template: Template, kind: str) -> dict[str, dict[str, Any]]:
    return {lid: r.get("Properties") or {} for lid, r in template.resources.items() if r["Type"] == kind}


def role_statements(template: Template, function: str) -> Iterator[dict[str, Any]]:
    role = template.resources[f"{function}Role"]["Properties"]
    for policy in role.get("Policies", []):
        yield from policy["PolicyDocument"]["Statement"]


def actions(statement: dict[str, Any]) -> list[str]:
    action = statement["Action"]
    return [action] if isinstance(action, str) else list(action)


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


# ---------------------------------------------------------------- identity
def test_nobody_can_sign_up_and_the_user_pool_survives_the_stack(raw: dict[str, Any]) -> None:
    pool = raw["Resources"]["UserPool"]
    assert pool["Properties"]["AdminCreateUserConfig"] == {"AllowAdminCreateUserOnly": True}
    assert pool["DeletionPolicy"] == "Retain" and pool["UpdateReplacePolicy"] == "Retain"
    table = raw["Resources"]["LeadsTable"]
    assert table["DeletionPolicy"] == "Retain" and table["UpdateReplacePolicy"] == "Retain"


def test_mfa_is_offered_by_default_and_follows_its_parameter(
    deployed: Template, configured: Template
) -> None:
    offered = deployed.resources["UserPool"]["Properties"]
    assert (offered["MfaConfiguration"], offered["EnabledMfas"]) == ("OPTIONAL", ["SOFTWARE_TOKEN_MFA"])
    turned_off = configured.resources["UserPool"]["Properties"]
    assert turned_off["MfaConfiguration"] == "OFF" and "EnabledMfas" not in turned_off


# ---------------------------------------------------------------- traces and settings
def test_no_function_records_responses_or_errors_in_traces(deployed: Template) -> None:
    for function in deployed.functions.values():
        assert function.environment["POWERTOOLS_TRACER_CAPTURE_RESPONSE"] == "false", function.logical_id
        assert function.environment["POWERTOOLS_TRACER_CAPTURE_ERROR"] == "false", function.logical_id


def test_captcha_and_consent_settings_reach_the_functions(deployed: Template, configured: Template) -> None:
    capture = deployed.function("CaptureFunction").environment
    assert capture["CAPTCHA_SECRET"] == ""  # off unless configured
    assert capture["CAPTCHA_VERIFY_URL"] == "https://challenges.cloudflare.com/turnstile/v0/siteverify"
    assert {f.environment["NURTURE_REQUIRES_CONSENT"] for f in deployed.functions.values()} == {"true"}

    capture = configured.function("CaptureFunction").environment
    assert capture["CAPTCHA_SECRET"] == "0x4AAA-secret"
    assert capture["CAPTCHA_VERIFY_URL"] == "https://www.google.com/recaptcha/api/siteverify"
    assert configured.function("FollowUpsFunction").environment["NURTURE_REQUIRES_CONSENT"] == "false"


def test_the_captcha_secret_is_not_echoed(raw: dict[str, Any]) -> None:
    assert raw["Parameters"]["CaptchaSecret"]["NoEcho"] is True


# ---------------------------------------------------------------- abuse limits
def test_every_route_without_sign_in_has_the_public_limits(deployed: Template) -> None:
    (stage,) = resources_of(deployed, "AWS::ApiGatewayV2::Stage").values()
    limits = stage["RouteSettings"]
    public_routes = {route.route_key for route in deployed.routes if route.authorizer is None}
    assert public_routes >= {"POST /capture/form", "POST /capture/chat", "POST /webhooks/{partner}"}
    assert set(limits) == public_routes  # every public route limited; no setting for a route that is gone
    for route_key in public_routes:
        assert limits[route_key] == {"ThrottlingRateLimit": "10", "ThrottlingBurstLimit": "20"}, route_key
    assert stage["DefaultRouteSettings"] == {"ThrottlingRateLimit": "50", "ThrottlingBurstLimit": "100"}


def test_route_limits_follow_their_parameters(configured: Template) -> None:
    (stage,) = resources_of(configured, "AWS::ApiGatewayV2::Stage").values()
    assert stage["RouteSettings"]["POST /capture/form"] == {
        "ThrottlingRateLimit": "2",
        "ThrottlingBurstLimit": "5",
    }
    assert stage["DefaultRouteSettings"]["ThrottlingRateLimit"] == "7"


def test_public_functions_reserve_concurrency_only_when_asked(
    deployed: Template, configured: Template
) -> None:
    serving_public_routes = {r.function_logical_id for r in deployed.routes if r.authorizer is None}
    assert serving_public_routes == PUBLIC_FUNCTIONS
    # 0 (the default) reserves nothing: accounts whose concurrency quota is 10 cannot reserve any.
    functions = resources_of(deployed, "AWS::Lambda::Function")
    assert all("ReservedConcurrentExecutions" not in functions[name] for name in PUBLIC_FUNCTIONS)

    for name, properties in resources_of(configured, "AWS::Lambda::Function").items():
        expected = "25" if name in PUBLIC_FUNCTIONS else None
        assert properties.get("ReservedConcurrentExecutions") == expected, name


# ---------------------------------------------------------------- least privilege
def test_capture_cannot_scan_or_delete_leads(deployed: Template) -> None:
    statements = [s for s in role_statements(deployed, "CaptureFunction") if s["Effect"] == "Allow"]
    granted = [action for statement in statements for action in actions(statement)]
    assert not [a for a in granted if a in ("dynamodb:*", "dynamodb:Scan", "*")]
    deletes = [s for s in statements if "dynamodb:DeleteItem" in actions(s)]
    # Only the idempotency records' partition (crm.platform.idempotency) may be deleted.
    assert [s["Condition"] for s in deletes] == [
        {"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": ["IDEMPOTENCY#capture"]}}
    ]
    assert {"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query"} <= set(granted)


def test_email_goes_only_from_the_configured_sender_and_configuration_set(deployed: Template) -> None:
    sends = [
        s
        for function in deployed.functions
        for s in role_statements(deployed, function)
        if {"ses:SendEmail", "ses:SendRawEmail"} & set(actions(s)) or "ses:*" in actions(s)
    ]
    # The notification function, and the webhooks function (it emails the owner of a subscription it pauses).
    assert len(sends) == 2
    identity = "arn:aws:ses:us-east-1:000000000000:identity/"
    for statement in sends:
        assert sorted(as_list(statement["Resource"])) == [
            "arn:aws:ses:us-east-1:000000000000:configuration-set/leadflow-local-NotificationConfigurationSet",
            identity + "leadflow.local",  # the sender's domain, when the domain is the verified identity
            identity + "leads@leadflow.local",
        ]


# ---------------------------------------------------------------- operations
def alarms_on(template: Template, namespace: str, metric: str) -> dict[str, dict[str, Any]]:
    found = {}
    for properties in resources_of(template, "AWS::CloudWatch::Alarm").values():
        if properties.get("Namespace") == namespace and properties.get("MetricName") == metric:
            dimensions = {d["Name"]: d["Value"] for d in properties["Dimensions"]}
            found[dimensions.get("QueueName") or dimensions.get("FunctionName") or dimensions["ApiId"]] = (
                properties
            )
    return found


def failure_queue_arns(template: Template) -> set[str]:
    """Every queue where failed work ends up: redrive targets, mappings' and async on-failure destinations."""
    arns = {queue.dead_letter_arn for queue in template.queues if queue.dead_letter_arn}
    arns |= {m.on_failure_arn for m in template.event_source_mappings if m.on_failure_arn}
    for config in resources_of(template, "AWS::Lambda::EventInvokeConfig").values():
        arns.add(config["DestinationConfig"]["OnFailure"]["Destination"])
    for function in resources_of(template, "AWS::Lambda::Function").values():
        if "DeadLetterConfig" in function:
            arns.add(function["DeadLetterConfig"]["TargetArn"])
    return arns


def notify_the_alarm_topic(alarm: dict[str, Any], template: Template) -> bool:
    (topic,) = resources_of(template, "AWS::SNS::Topic")
    topic_arn = f"arn:aws:sns:us-east-1:000000000000:leadflow-local-{topic}"
    return alarm["AlarmActions"] == [topic_arn] and alarm["OKActions"] == [topic_arn]


def test_every_failure_queue_alarms_on_its_first_message(deployed: Template) -> None:
    queue_alarms = alarms_on(deployed, "AWS/SQS", "ApproximateNumberOfMessagesVisible")
    failure_queues = {deployed.queue(arn).name for arn in failure_queue_arns(deployed)}
    # PrivacyDeadLetterQueue: erasure pages; WebhookDeadLetterQueue; Import-/ExportDeadLetterQueue (issue 17)
    assert len(failure_queues) == 11
    assert failure_queues <= set(queue_alarms)
    for name in failure_queues:
        alarm = queue_alarms[name]
        assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold"), name
        assert notify_the_alarm_topic(alarm, deployed), name


def test_every_function_alarms_on_errors_and_throttles(deployed: Template) -> None:
    names = {f.name for f in deployed.functions.values()}
    for metric in ("Errors", "Throttles"):
        alarms = alarms_on(deployed, "AWS/Lambda", metric)
        assert set(alarms) == names, metric
        assert all(notify_the_alarm_topic(alarm, deployed) for alarm in alarms.values())


def test_the_api_alarms_on_server_errors(deployed: Template) -> None:
    (alarm,) = alarms_on(deployed, "AWS/ApiGateway", "5xx").values()
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"ApiId": "httpapi", "Stage": "dev"}
    assert notify_the_alarm_topic(alarm, deployed)


def test_an_alarm_email_is_subscribed_only_when_given(deployed: Template, configured: Template) -> None:
    assert resources_of(deployed, "AWS::SNS::Subscription") == {}
    (subscription,) = resources_of(configured, "AWS::SNS::Subscription").values()
    assert (subscription["Protocol"], subscription["Endpoint"]) == ("email", "ops@example.com")


def test_each_function_logs_to_its_own_group_kept_for_the_retention_days(configured: Template) -> None:
    template = configured
    groups = resources_of(template, "AWS::Logs::LogGroup")
    functions = resources_of(template, "AWS::Lambda::Function")
    named = {template.resources[lid]["Properties"]["LogGroupName"]: lid for lid in groups}
    used = [f["LoggingConfig"]["LogGroup"] for f in functions.values()]
    assert len(set(used)) == len(functions)  # one group each
    for logical_id, function in functions.items():
        group = groups[f"{logical_id}Logs"]
        assert group["RetentionInDays"] == "90"
        # Locally a Ref is the local name; in AWS it is the group's name, the one the function logs to.
        assert function["LoggingConfig"]["LogGroup"] == f"leadflow-local-{logical_id}Logs"
        assert named[group["LogGroupName"]] == f"{logical_id}Logs"
        assert group["LogGroupName"] == f"/aws/lambda/leadflow-local/{logical_id}"


def test_the_api_writes_an_access_log_without_bodies_or_query_strings(deployed: Template) -> None:
    (stage,) = resources_of(deployed, "AWS::ApiGatewayV2::Stage").values()
    settings = stage["AccessLogSettings"]
    assert settings["DestinationArn"].endswith(":leadflow-local-HttpApiAccessLogs")
    for needed in (
        "$context.requestId",
        "$context.routeKey",
        "$context.status",
        "$context.identity.sourceIp",
    ):
        assert needed in settings["Format"]
    assert "$context.path" not in settings["Format"] and "querystring" not in settings["Format"].lower()


def test_scheduled_functions_send_failed_runs_to_a_queue(deployed: Template) -> None:
    scheduled = {s.function_logical_id or s.target_arn for s in deployed.schedules}
    assert scheduled == {
        "FollowUpsFunction",
        "AssignmentSweepFunction",
        "RescoreFunction",
        "AnalyticsReconcileFunction",
        "PrivacyFunction",  # the daily retention run
    }
    configs = {
        deployed.function(c["FunctionName"]).logical_id: c
        for c in resources_of(deployed, "AWS::Lambda::EventInvokeConfig").values()
    }
    for function in scheduled:
        destination = configs[function]["DestinationConfig"]["OnFailure"]["Destination"]
        assert deployed.queue(destination).logical_id == "ScheduledJobsFailureQueue"
        # The role may send there (SAM adds the permission for an SQS destination).
        assert any(
            "sqs:SendMessage" in actions(s) and destination in as_list(s["Resource"])
            for s in role_statements(deployed, function)
        ), function


# ---------------------------------------------------------------- checkov
def test_every_skipped_checkov_check_says_why(raw: dict[str, Any]) -> None:
    skipped = 0
    for logical_id, resource in raw["Resources"].items():
        for skip in ((resource.get("Metadata") or {}).get("checkov") or {}).get("skip", []):
            assert skip["id"].startswith("CKV_"), logical_id
            reason = skip.get("comment", "")
            assert len(reason) > 20 and "\n" not in reason, (logical_id, skip["id"])
            skipped += 1
    assert skipped > 0
