"""template.yaml as CloudFormation sees it after the SAM transform, resolved with local physical names.

The SAM translator does the expansion (Globals, the HttpApi OpenAPI body, event source mappings, rules,
schedules),
so nothing here re-implements SAM; SAM CLI's intrinsic resolver then resolves Ref/GetAtt/Sub/Join against a
symbol table of local names (``leadflow-local-<LogicalId>``) and ARNs in account 000000000000.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .paths import PROJECT_ROOT

LOCAL_REGION = "us-east-1"
LOCAL_ACCOUNT_ID = "000000000000"
NAME_PREFIX = "leadflow-local-"
LOCAL_STACK_NAME = "leadflow-local"
# Local code is handed to the translator as S3 locations in this bucket, then mapped back to folders.
_LOCAL_CODE_BUCKET = "devstack-local-code"
_DEFAULT_SQS_BASE = f"https://sqs.{LOCAL_REGION}.amazonaws.com"
_INVOKE_URI = re.compile(r"functions/(?P<arn>arn:[^/]+)/invocations")
# What `!Ref AWS::NoValue` resolves to here; the property holding it is then dropped, as CloudFormation does.
# (SAM CLI's resolver turns AWS::NoValue into None, which its own Fn::If then rejects.)
_NO_VALUE = "devstack:AWS::NoValue"


class TemplateError(Exception):
    """The template uses something the local stack cannot run."""


@dataclass(frozen=True)
class Table:
    logical_id: str
    name: str
    arn: str
    properties: dict[str, Any]

    @property
    def stream_view_type(self) -> str | None:
        spec = self.properties.get("StreamSpecification") or {}
        return spec.get("StreamViewType")

    @property
    def ttl_attribute(self) -> str | None:
        spec = self.properties.get("TimeToLiveSpecification") or {}
        return spec.get("AttributeName") if spec.get("Enabled", True) else None


@dataclass(frozen=True)
class Queue:
    logical_id: str
    name: str
    arn: str
    url: str
    attributes: dict[str, str]

    @property
    def dead_letter_arn(self) -> str | None:
        policy = self.attributes.get("RedrivePolicy")
        return json.loads(policy).get("deadLetterTargetArn") if policy else None

    @property
    def max_receive_count(self) -> int | None:
        policy = self.attributes.get("RedrivePolicy")
        return int(json.loads(policy)["maxReceiveCount"]) if policy else None

    @property
    def visibility_timeout(self) -> int:
        return int(self.attributes.get("VisibilityTimeout", "30"))


@dataclass(frozen=True)
class Layer:
    logical_id: str
    arn: str
    content_dir: Path


@dataclass(frozen=True)
class Function:
    logical_id: str
    name: str
    arn: str
    code_dir: Path
    handler: str
    runtime: str
    memory_mb: int
    timeout_s: int
    environment: dict[str, str]
    layer_dirs: tuple[Path, ...]


@dataclass(frozen=True)
class CorsConfig:
    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ()
    allow_headers: tuple[str, ...] = ()
    expose_headers: tuple[str, ...] = ()
    max_age: int | None = None
    allow_credentials: bool = False


@dataclass(frozen=True)
class JwtAuthorizer:
    name: str
    identity_source: str
    issuer: str
    audience: tuple[str, ...]


@dataclass(frozen=True)
class HttpRoute:
    api_logical_id: str
    method: str  # upper case, or "ANY"
    path: str  # OpenAPI form: /leads/{id}, /files/{proxy+}, or $default
    function_logical_id: str
    authorizer: str | None
    scopes: tuple[str, ...] = ()
    payload_format_version: str = "2.0"
    timeout_ms: int = 30_000

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class HttpApi:
    logical_id: str
    routes: tuple[HttpRoute, ...]
    cors: CorsConfig | None
    authorizers: dict[str, JwtAuthorizer]


@dataclass(frozen=True)
class EventSourceMapping:
    logical_id: str
    function_logical_id: str
    source_arn: str
    kind: str  # "dynamodb" or "sqs"
    batch_size: int
    batching_window_s: int
    starting_position: str | None
    filters: tuple[dict[str, Any], ...]
    report_batch_item_failures: bool
    bisect_on_error: bool
    max_retry_attempts: int  # -1: until the record expires, as Lambda does
    max_record_age_s: int
    on_failure_arn: str | None
    enabled: bool
    # Stream mappings: concurrent batches per shard, records of one partition key always in the same one.
    parallelization_factor: int = 1


@dataclass(frozen=True)
class Schedule:
    logical_id: str
    name: str
    kind: str  # "rule" (EventBridge rule) or "scheduler" (EventBridge Scheduler)
    expression: str
    timezone: str
    target_arn: str
    input: str | None
    enabled: bool
    function_logical_id: str | None


@dataclass(frozen=True)
class RuleTarget:
    id: str
    arn: str
    input: str | None
    input_transformer: dict[str, Any] | None
    sqs_parameters: dict[str, Any] | None


@dataclass(frozen=True)
class EventRule:
    """An EventBridge rule with an event pattern (SAM `Type: EventBridgeRule` / `CloudWatchEvent`)."""

    logical_id: str
    name: str
    bus_name: str
    pattern: dict[str, Any]
    targets: tuple[RuleTarget, ...]
    enabled: bool


@dataclass(frozen=True)
class BucketNotification:
    """Where a bucket's object events go (`NotificationConfiguration`, as SAM's `Type: S3` events write it):
    a function, a queue, or EventBridge's default bus (`EventBridgeConfiguration`, every event)."""

    events: tuple[str, ...]  # "s3:ObjectCreated:*", "s3:ObjectCreated:Put"...
    prefix: str = ""
    suffix: str = ""
    function_logical_id: str | None = None
    queue_arn: str | None = None
    eventbridge: bool = False

    def matches(self, event_name: str, key: str) -> bool:
        """`event_name` as S3 sends it ("ObjectCreated:Put"); `key` decoded."""
        if not key.startswith(self.prefix) or not key.endswith(self.suffix):
            return False
        return any(
            f"s3:{event_name}" == pattern
            or (pattern.endswith(":*") and f"s3:{event_name}".startswith(pattern[:-1]))
            for pattern in self.events
        )


@dataclass(frozen=True)
class Bucket:
    """An S3 bucket (`AWS::S3::Bucket`), created in moto under the name its `!Ref` gives."""

    logical_id: str
    name: str
    arn: str
    properties: dict[str, Any]
    notifications: tuple[BucketNotification, ...]


@dataclass(frozen=True)
class SsmParameter:
    logical_id: str
    name: str
    type: str
    value: str


@dataclass(frozen=True)
class Secret:
    """A Secrets Manager secret (`AWS::SecretsManager::Secret`): its value is the template's `SecretString`,
    or generated as `GenerateSecretString` says (`generate`: the GetRandomPassword options and, for JSON
    secrets, `SecretStringTemplate` and `GenerateStringKey`); with neither, the secret has no value yet."""

    logical_id: str
    name: str
    arn: str  # what `!Ref` gives, as in CloudFormation
    description: str
    secret_string: str | None
    generate: dict[str, Any] | None
    tags: tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class EmailTemplate:
    """An SES email template (`AWS::SES::Template`)."""

    logical_id: str
    name: str
    subject: str
    html: str
    text: str


@dataclass
class Template:
    """The resolved template: what the local stack creates and runs."""

    path: Path
    root: Path
    parameters: dict[str, Any]
    resources: dict[str, dict[str, Any]]
    global_environment: dict[str, str]
    tables: list[Table] = field(default_factory=list)
    queues: list[Queue] = field(default_factory=list)
    layers: list[Layer] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)
    http_apis: list[HttpApi] = field(default_factory=list)
    event_source_mappings: list[EventSourceMapping] = field(default_factory=list)
    schedules: list[Schedule] = field(default_factory=list)
    event_rules: list[EventRule] = field(default_factory=list)
    ssm_parameters: list[SsmParameter] = field(default_factory=list)
    secrets: list[Secret] = field(default_factory=list)
    event_buses: list[str] = field(default_factory=list)
    email_identities: list[str] = field(default_factory=list)
    email_templates: list[EmailTemplate] = field(default_factory=list)
    buckets: list[Bucket] = field(default_factory=list)

    @property
    def routes(self) -> list[HttpRoute]:
        return [route for api in self.http_apis for route in api.routes]

    def function(self, key: str) -> Function:
        """A function by logical id, physical name or ARN (qualifiers ignored)."""
        for fn in self.functions.values():
            if key in (fn.logical_id, fn.name, fn.arn) or key.startswith(fn.arn + ":"):
                return fn
        raise KeyError(f"no function {key!r} in {self.path.name}")

    def queue(self, key: str) -> Queue:
        """A queue by logical id, name, ARN or URL."""
        for queue in self.queues:
            if key in (queue.logical_id, queue.name, queue.arn, queue.url):
                return queue
        raise KeyError(f"no queue {key!r} in {self.path.name}")

    def table_for_stream(self, stream_arn: str) -> Table:
        for table in self.tables:
            if stream_arn.startswith(table.arn + "/stream/"):
                return table
        raise KeyError(f"no table owns stream {stream_arn!r}")


def local_name(logical_id: str) -> str:
    return f"{NAME_PREFIX}{logical_id}"


def arn(service: str, resource: str) -> str:
    return f"arn:aws:{service}:{LOCAL_REGION}:{LOCAL_ACCOUNT_ID}:{resource}"


def secret_arn(name: str) -> str:
    """A secret's ARN: its name and six characters Secrets Manager appends (here derived from the name, so
    the ARN the functions get from the template is the one the local stack creates the secret under)."""
    alphabet = string.ascii_letters + string.digits
    digest = hashlib.sha256(name.encode()).digest()
    return arn("secretsmanager", f"secret:{name}-{''.join(alphabet[b % len(alphabet)] for b in digest[:6])}")


def stream_arn(table_name: str) -> str:
    # The real label is a timestamp known only once the table exists; the pumps look it up by table name.
    return arn("dynamodb", f"table/{table_name}/stream/local")


def load_template(
    path: str | Path = "template.yaml",
    *,
    parameter_overrides: Mapping[str, str] | None = None,
    sqs_endpoint: str | None = None,
    optional_parameters: Mapping[str, str] | None = None,
) -> Template:
    """Translate and resolve a SAM template (a relative path is tried from the working directory, then from
    the project root). `optional_parameters` apply only to parameters the template declares."""
    from samcli.yamlhelper import yaml_parse  # heavy imports kept off `devstack token` and the workers

    template_path = template_file(path)
    root = template_path.parent
    sam = yaml_parse(template_path.read_text())
    declared = sam.get("Parameters") or {}
    optional = {k: v for k, v in (optional_parameters or {}).items() if k in declared}
    parameters = _parameter_values(sam, {**optional, **(parameter_overrides or {})})
    cfn = _translate(sam, parameters)
    symbols = _symbol_table(cfn, parameters, sqs_endpoint or _DEFAULT_SQS_BASE)
    resolver = _resolver(cfn, symbols)
    for logical_id, resource in cfn["Resources"].items():
        # Names the application looks up (SSM paths, bus names) must be the declared ones, resolved.
        declared = (resource.get("Properties") or {}).get("Name")
        if resource["Type"] in ("AWS::SSM::Parameter", "AWS::Events::EventBus") and declared is not None:
            symbols[logical_id]["Ref"] = resolver.intrinsic_property_resolver(declared, False)
        elif resource["Type"] == "AWS::S3::Bucket" and "BucketName" in (resource.get("Properties") or {}):
            bucket = str(resolver.intrinsic_property_resolver(resource["Properties"]["BucketName"], False))
            symbols[logical_id].update(_bucket_attributes(bucket))
        elif resource["Type"] == "AWS::SecretsManager::Secret" and declared is not None:
            # A secret's Ref (and Id) is its ARN, which carries the declared name.
            secret = secret_arn(str(resolver.intrinsic_property_resolver(declared, False)))
            symbols[logical_id].update(Ref=secret, Id=secret)
    resources = _drop_false_conditions(cfn, resolver)
    # Resolved one by one: resolve_attribute() would also rename the keys to their physical names.
    resolved = {
        lid: _without_no_value(resolver.intrinsic_property_resolver(res, False, lid))
        for lid, res in resources.items()
    }
    global_env = (((sam.get("Globals") or {}).get("Function") or {}).get("Environment") or {}).get(
        "Variables"
    ) or {}
    template = Template(
        path=template_path,
        root=root,
        parameters=parameters,
        resources=resolved,
        global_environment={
            k: _env_str(v) for k, v in resolver.intrinsic_property_resolver(global_env, False).items()
        },
    )
    _build_model(template, symbols)
    return template


def template_file(path: str | Path) -> Path:
    template_path = Path(path)
    if template_path.is_absolute():
        return template_path
    return (Path.cwd() / template_path).resolve() if template_path.exists() else PROJECT_ROOT / template_path


def _parameter_values(sam: dict[str, Any], overrides: Mapping[str, str]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, spec in (sam.get("Parameters") or {}).items():
        if name in overrides:
            values[name] = _checked_parameter(name, spec, str(overrides[name]))
        elif "Default" in spec:
            default = spec["Default"]
            # A Number parameter's value is a string wherever the template uses it, as in CloudFormation
            # (so `!Equals [!Ref Count, "0"]` holds for a default of 0).
            is_number = isinstance(default, int | float) and not isinstance(default, bool)
            values[name] = str(default) if is_number else default
    unknown = set(overrides) - set(values)
    if unknown:
        raise TemplateError(f"unknown parameter(s): {', '.join(sorted(unknown))}")
    return values


def _checked_parameter(name: str, spec: Mapping[str, Any], value: str) -> str:
    """An overriding value as CloudFormation would check it: Number, AllowedValues, Min/MaxValue, pattern."""
    allowed = spec.get("AllowedValues")
    if allowed is not None and value not in [str(v) for v in allowed]:
        raise TemplateError(f"parameter {name}: {value!r} is not one of {', '.join(map(str, allowed))}")
    if spec.get("Type") == "Number":
        try:
            number = float(value)
        except ValueError:
            raise TemplateError(f"parameter {name}: {value!r} is not a number") from None
        low, high = spec.get("MinValue"), spec.get("MaxValue")
        if (low is not None and number < float(low)) or (high is not None and number > float(high)):
            raise TemplateError(f"parameter {name}: {value} is outside {low}..{high}")
    pattern = spec.get("AllowedPattern")
    if pattern is not None and re.fullmatch(str(pattern), value) is None:
        raise TemplateError(f"parameter {name}: {value!r} does not match {pattern}")
    return value


def _translate(sam: dict[str, Any], parameters: dict[str, Any]) -> dict[str, Any]:
    import boto3
    from samtranslator.metrics.metrics import DummyMetricsPublisher, Metrics
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.translator import Translator

    sam = copy.deepcopy(sam)
    for resource in sam.get("Resources", {}).values():
        props = resource.get("Properties") or {}
        for key in ("CodeUri", "ContentUri"):
            if isinstance(props.get(key), str) and "://" not in props[key]:
                props[key] = f"s3://{_LOCAL_CODE_BUCKET}/{props[key].strip('/')}"
    session = boto3.Session(
        region_name=LOCAL_REGION, aws_access_key_id="local", aws_secret_access_key="local"
    )
    values = {**parameters, "AWS::Region": LOCAL_REGION, "AWS::AccountId": LOCAL_ACCOUNT_ID}
    metrics = Metrics("ServerlessTransform", DummyMetricsPublisher())
    translated: dict[str, Any] = Translator(None, Parser(), boto_session=session, metrics=metrics).translate(
        sam, values, get_managed_policy_map=_AnyManagedPolicy
    )
    metrics.publish()  # to the dummy publisher; unpublished metrics would log a warning at exit
    return translated


class _AnyManagedPolicy(dict[str, str]):
    """Managed policy names map to AWS's ARN form; IAM is not enforced locally, so no lookup is needed."""

    def __contains__(self, key: object) -> bool:
        return isinstance(key, str)

    def __getitem__(self, key: str) -> str:
        return f"arn:aws:iam::aws:policy/{key}"

    def get(self, key: str, default: Any = None) -> str:
        return self[key]


def _symbol_table(cfn: dict[str, Any], parameters: dict[str, Any], sqs_base: str) -> dict[str, Any]:
    symbols: dict[str, Any] = {
        "AWS::Region": LOCAL_REGION,
        "AWS::AccountId": LOCAL_ACCOUNT_ID,
        "AWS::Partition": "aws",
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::StackName": LOCAL_STACK_NAME,
        "AWS::StackId": arn("cloudformation", f"stack/{LOCAL_STACK_NAME}/local"),
        "AWS::NoValue": _NO_VALUE,
    }
    symbols.update(parameters)
    for logical_id, resource in cfn.get("Resources", {}).items():
        symbols[logical_id] = _attributes(
            logical_id, resource["Type"], resource.get("Properties") or {}, sqs_base
        )
    return symbols


def _attributes(logical_id: str, kind: str, props: dict[str, Any], sqs_base: str) -> dict[str, str]:
    name = local_name(logical_id)
    if kind == "AWS::DynamoDB::Table":
        return {"Ref": name, "Arn": arn("dynamodb", f"table/{name}"), "StreamArn": stream_arn(name)}
    if kind == "AWS::SQS::Queue":
        if props.get("FifoQueue") is True or str(props.get("FifoQueue")).lower() == "true":
            name += ".fifo"
        url = f"{sqs_base.rstrip('/')}/{LOCAL_ACCOUNT_ID}/{name}"
        return {"Ref": url, "QueueUrl": url, "QueueName": name, "Arn": arn("sqs", name)}
    if kind == "AWS::Lambda::Function":
        return {"Ref": name, "Arn": arn("lambda", f"function:{name}")}
    if kind == "AWS::Lambda::LayerVersion":
        layer_arn = arn("lambda", f"layer:{name}:1")
        return {"Ref": layer_arn, "LayerVersionArn": layer_arn}
    if kind == "AWS::Cognito::UserPool":
        pool_id = f"{LOCAL_REGION}_{logical_id}"
        return {
            "Ref": pool_id,
            "Arn": arn("cognito-idp", f"userpool/{pool_id}"),
            "ProviderName": f"cognito-idp.{LOCAL_REGION}.amazonaws.com/{pool_id}",
            "ProviderURL": f"https://cognito-idp.{LOCAL_REGION}.amazonaws.com/{pool_id}",
        }
    if kind == "AWS::Events::EventBus":
        return {"Ref": name, "Name": name, "Arn": arn("events", f"event-bus/{name}")}
    if kind == "AWS::Events::Rule":
        return {"Ref": name, "Arn": arn("events", f"rule/{name}")}
    if kind == "AWS::Scheduler::Schedule":
        return {"Ref": name, "Arn": arn("scheduler", f"schedule/default/{name}")}
    if kind == "AWS::Scheduler::ScheduleGroup":
        return {"Ref": name, "Arn": arn("scheduler", f"schedule-group/{name}")}
    if kind == "AWS::IAM::Role":
        return {"Ref": name, "Arn": f"arn:aws:iam::{LOCAL_ACCOUNT_ID}:role/{name}", "RoleId": name}
    if kind == "AWS::SNS::Topic":
        topic_arn = arn("sns", name)
        return {"Ref": topic_arn, "TopicArn": topic_arn, "TopicName": name}
    if kind == "AWS::SecretsManager::Secret":
        # Unnamed, CloudFormation names it after the logical id; a declared Name is resolved later.
        secret = secret_arn(name)
        return {"Ref": secret, "Id": secret}
    if kind == "AWS::ApiGatewayV2::Api":
        return {"Ref": logical_id.lower(), "ApiEndpoint": "http://127.0.0.1"}
    if kind == "AWS::S3::Bucket":
        # Unnamed, CloudFormation names it after the stack and logical id, in lower case (S3's rule); a
        # declared BucketName is resolved later.
        return _bucket_attributes(name.lower())
    service = kind.split("::")[1].lower() if kind.count("::") == 2 else "local"
    return {"Ref": name, "Arn": arn(service, name)}


def _bucket_attributes(name: str) -> dict[str, str]:
    return {
        "Ref": name,
        "Arn": f"arn:aws:s3:::{name}",
        "DomainName": f"{name}.s3.amazonaws.com",
        "RegionalDomainName": f"{name}.s3.{LOCAL_REGION}.amazonaws.com",
    }


def _resolver(cfn: dict[str, Any], symbols: dict[str, Any]) -> Any:
    from samcli.lib.intrinsic_resolver.intrinsic_property_resolver import IntrinsicResolver
    from samcli.lib.intrinsic_resolver.intrinsics_symbol_table import IntrinsicsSymbolTable

    table = IntrinsicsSymbolTable(
        template=cfn,
        logical_id_translator=symbols,
        # Fn::Sub variable values are looked up again as symbols; identity keeps them as they are.
        common_attribute_resolver={"Ref": lambda value: value},
    )
    return IntrinsicResolver(template=cfn, symbol_resolver=table)


def _drop_false_conditions(cfn: dict[str, Any], resolver: Any) -> dict[str, Any]:
    conditions = cfn.get("Conditions") or {}
    kept = {}
    for logical_id, resource in cfn["Resources"].items():
        condition = resource.get("Condition")
        if condition and not resolver.intrinsic_property_resolver(conditions[condition], False):
            continue
        kept[logical_id] = resource
    return kept


def _without_no_value(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_no_value(v) for k, v in value.items() if v != _NO_VALUE}
    if isinstance(value, list):
        return [_without_no_value(v) for v in value if v != _NO_VALUE]
    return value


def _env_str(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return ",".join(str(v) for v in value)
    return str(value)


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return [str(v) for v in value]


def _code_dir(root: Path, location: Any, what: str) -> Path:
    if not isinstance(location, dict) or location.get("S3Bucket") != _LOCAL_CODE_BUCKET:
        raise TemplateError(
            f"{what}: only local CodeUri/ContentUri folders can run locally, got {location!r}"
        )
    return (root / location["S3Key"]).resolve()


def _build_model(template: Template, symbols: dict[str, Any]) -> None:
    resources = template.resources
    by_type: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for logical_id, resource in resources.items():
        by_type.setdefault(resource["Type"], []).append((logical_id, resource.get("Properties") or {}))

    for logical_id, props in by_type.get("AWS::DynamoDB::Table", []):
        attrs = symbols[logical_id]
        template.tables.append(Table(logical_id, attrs["Ref"], attrs["Arn"], props))

    for logical_id, props in by_type.get("AWS::SQS::Queue", []):
        attrs = symbols[logical_id]
        template.queues.append(
            Queue(logical_id, attrs["QueueName"], attrs["Arn"], attrs["QueueUrl"], _queue_attributes(props))
        )

    layers = {}
    for logical_id, props in by_type.get("AWS::Lambda::LayerVersion", []):
        layer = Layer(
            logical_id, symbols[logical_id]["Ref"], _code_dir(template.root, props["Content"], logical_id)
        )
        layers[layer.arn] = layer
        template.layers.append(layer)

    for logical_id, props in by_type.get("AWS::Lambda::Function", []):
        attrs = symbols[logical_id]
        missing = [arn for arn in props.get("Layers", []) if arn not in layers]
        if missing:
            raise TemplateError(f"{logical_id}: layers {missing} are not in the template")
        env = ((props.get("Environment") or {}).get("Variables")) or {}
        template.functions[logical_id] = Function(
            logical_id=logical_id,
            name=attrs["Ref"],
            arn=attrs["Arn"],
            code_dir=_code_dir(template.root, props.get("Code"), logical_id),
            handler=props["Handler"],
            runtime=props.get("Runtime", ""),
            memory_mb=int(props.get("MemorySize", 128)),
            timeout_s=int(props.get("Timeout", 3)),
            environment={k: _env_str(v) for k, v in env.items()},
            layer_dirs=tuple(layers[arn].content_dir for arn in props.get("Layers", [])),
        )

    for logical_id, props in by_type.get("AWS::ApiGatewayV2::Api", []):
        if "Body" in props:
            template.http_apis.append(_http_api(logical_id, props["Body"], template))

    for logical_id, props in by_type.get("AWS::Lambda::EventSourceMapping", []):
        template.event_source_mappings.append(_event_source_mapping(logical_id, props, template))

    for logical_id, props in by_type.get("AWS::Events::Rule", []):
        if "ScheduleExpression" in props:
            template.schedules.extend(_rule_schedules(logical_id, props, symbols, template))
        elif "EventPattern" in props:
            template.event_rules.append(_event_rule(logical_id, props, symbols))

    for logical_id, props in by_type.get("AWS::Scheduler::Schedule", []):
        target = props["Target"]
        template.schedules.append(
            Schedule(
                logical_id=logical_id,
                name=props.get("Name") or symbols[logical_id]["Ref"],
                kind="scheduler",
                expression=props["ScheduleExpression"],
                timezone=props.get("ScheduleExpressionTimezone", "UTC"),
                target_arn=target["Arn"],
                input=target.get("Input"),
                enabled=props.get("State", "ENABLED") == "ENABLED",
                function_logical_id=_function_id(template, target["Arn"]),
            )
        )

    for logical_id, props in by_type.get("AWS::SSM::Parameter", []):
        template.ssm_parameters.append(
            SsmParameter(
                logical_id, symbols[logical_id]["Ref"], props.get("Type", "String"), str(props["Value"])
            )
        )
    for logical_id, props in by_type.get("AWS::SecretsManager::Secret", []):
        secret = symbols[logical_id]["Ref"]
        generate = props.get("GenerateSecretString")
        template.secrets.append(
            Secret(
                logical_id=logical_id,
                name=secret.split(":secret:", 1)[1].rsplit("-", 1)[0],
                arn=secret,
                description=str(props.get("Description", "")),
                secret_string=str(props["SecretString"]) if "SecretString" in props else None,
                # Neither property: an empty secret (no value yet), as CloudFormation creates it.
                generate=dict(generate) if generate is not None else None,
                tags=tuple((str(tag["Key"]), str(tag["Value"])) for tag in props.get("Tags", [])),
            )
        )
    template.event_buses = [symbols[lid]["Ref"] for lid, _ in by_type.get("AWS::Events::EventBus", [])]
    template.email_identities = [
        props["EmailIdentity"]
        for _, props in by_type.get("AWS::SES::EmailIdentity", [])
        if "EmailIdentity" in props
    ]
    for logical_id, props in by_type.get("AWS::S3::Bucket", []):
        attrs = symbols[logical_id]
        template.buckets.append(
            Bucket(logical_id, attrs["Ref"], attrs["Arn"], props, _bucket_notifications(props, template))
        )
    for logical_id, props in by_type.get("AWS::SES::Template", []):
        spec = props.get("Template") or {}
        template.email_templates.append(
            EmailTemplate(
                logical_id=logical_id,
                # CloudFormation names an unnamed template itself; locally it gets the resource's local name.
                name=str(spec.get("TemplateName") or symbols[logical_id]["Ref"]),
                subject=str(spec.get("SubjectPart", "")),
                html=str(spec.get("HtmlPart", "")),
                text=str(spec.get("TextPart", "")),
            )
        )


def _bucket_notifications(props: dict[str, Any], template: Template) -> tuple[BucketNotification, ...]:
    config = props.get("NotificationConfiguration") or {}
    found: list[BucketNotification] = []
    for kind, target_key in (("LambdaConfigurations", "Function"), ("QueueConfigurations", "Queue")):
        for entry in config.get(kind) or []:
            rules = {
                str(rule["Name"]).lower(): str(rule["Value"])
                for rule in ((entry.get("Filter") or {}).get("S3Key") or {}).get("Rules") or []
            }
            target = str(entry[target_key])
            found.append(
                BucketNotification(
                    events=tuple(_as_list(entry["Event"])),
                    prefix=rules.get("prefix", ""),
                    suffix=rules.get("suffix", ""),
                    function_logical_id=template.function(target).logical_id
                    if target_key == "Function"
                    else None,
                    queue_arn=target if target_key == "Queue" else None,
                )
            )
    if (config.get("EventBridgeConfiguration") or {}).get("EventBridgeEnabled") in (True, "true"):
        found.append(BucketNotification(events=("s3:*",), eventbridge=True))
    return tuple(found)


_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "FifoQueue",
    "ContentBasedDeduplication",
    "DeduplicationScope",
    "FifoThroughputLimit",
)


def _queue_attributes(props: dict[str, Any]) -> dict[str, str]:
    attributes = {key: _env_str(props[key]) for key in _QUEUE_ATTRIBUTES if key in props}
    for key in ("RedrivePolicy", "RedriveAllowPolicy"):
        if key in props:
            value = props[key]
            attributes[key] = value if isinstance(value, str) else json.dumps(value)
    # Encryption settings (SqsManagedSseEnabled, KmsMasterKeyId) have no local meaning and are left out.
    return attributes


def _function_id(template: Template, target_arn: str) -> str | None:
    try:
        return template.function(target_arn).logical_id
    except KeyError:
        return None


def _http_api(logical_id: str, body: dict[str, Any], template: Template) -> HttpApi:
    authorizers = {}
    for name, scheme in ((body.get("components") or {}).get("securitySchemes") or {}).items():
        spec = scheme.get("x-amazon-apigateway-authorizer") or {}
        if spec.get("type") != "jwt":
            raise TemplateError(
                f"{logical_id}: authorizer {name} ({spec.get('type')}) is not supported locally"
            )
        jwt_config = spec["jwtConfiguration"]
        authorizers[name] = JwtAuthorizer(
            name=name,
            identity_source=spec.get("identitySource", "$request.header.Authorization"),
            issuer=jwt_config["issuer"],
            audience=tuple(_as_list(jwt_config.get("audience"))),
        )
    default_security = body.get("security") or []
    routes = []
    for path, operations in (body.get("paths") or {}).items():
        for method, op in operations.items():
            integration = op.get("x-amazon-apigateway-integration") if isinstance(op, dict) else None
            if not integration:
                continue
            match = _INVOKE_URI.search(str(integration.get("uri", "")))
            if not match:
                raise TemplateError(
                    f"{logical_id} {method} {path}: only Lambda proxy integrations run locally"
                )
            authorizer, scopes = None, ()
            for requirement in op.get("security", default_security):
                for name, requirement_scopes in requirement.items():
                    if name != "NONE":
                        authorizer, scopes = name, tuple(requirement_scopes)
            routes.append(
                HttpRoute(
                    api_logical_id=logical_id,
                    method="ANY" if method == "x-amazon-apigateway-any-method" else method.upper(),
                    path="$default" if path in ("$default", "/$default") else path,
                    function_logical_id=template.function(match["arn"]).logical_id,
                    authorizer=authorizer,
                    scopes=scopes,
                    payload_format_version=str(integration.get("payloadFormatVersion", "2.0")),
                    timeout_ms=int(integration.get("timeoutInMillis", 30_000)),
                )
            )
    cors_spec = body.get("x-amazon-apigateway-cors")
    cors = None
    if cors_spec:
        cors = CorsConfig(
            allow_origins=tuple(_as_list(cors_spec.get("allowOrigins"))),
            allow_methods=tuple(m.upper() for m in _as_list(cors_spec.get("allowMethods"))),
            allow_headers=tuple(_as_list(cors_spec.get("allowHeaders"))),
            expose_headers=tuple(_as_list(cors_spec.get("exposeHeaders"))),
            max_age=int(cors_spec["maxAge"]) if "maxAge" in cors_spec else None,
            allow_credentials=bool(cors_spec.get("allowCredentials", False)),
        )
    return HttpApi(logical_id, tuple(routes), cors, authorizers)


def _event_source_mapping(logical_id: str, props: dict[str, Any], template: Template) -> EventSourceMapping:
    source_arn = props["EventSourceArn"]
    kind = "dynamodb" if ":dynamodb:" in source_arn else "sqs" if ":sqs:" in source_arn else ""
    if not kind:
        raise TemplateError(f"{logical_id}: event source {source_arn} is not supported locally")
    filters = tuple(
        json.loads(f["Pattern"]) if isinstance(f["Pattern"], str) else f["Pattern"]
        for f in ((props.get("FilterCriteria") or {}).get("Filters") or [])
    )
    on_failure = ((props.get("DestinationConfig") or {}).get("OnFailure") or {}).get("Destination")
    return EventSourceMapping(
        logical_id=logical_id,
        function_logical_id=template.function(props["FunctionName"]).logical_id,
        source_arn=source_arn,
        kind=kind,
        batch_size=int(props.get("BatchSize", 100 if kind == "dynamodb" else 10)),
        batching_window_s=int(props.get("MaximumBatchingWindowInSeconds", 0)),
        starting_position=props.get("StartingPosition"),
        filters=filters,
        report_batch_item_failures="ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
        bisect_on_error=bool(props.get("BisectBatchOnFunctionError", False)),
        max_retry_attempts=int(props.get("MaximumRetryAttempts", -1)),
        max_record_age_s=int(props.get("MaximumRecordAgeInSeconds", -1)),
        on_failure_arn=on_failure,
        enabled=bool(props.get("Enabled", True)),
        parallelization_factor=int(props.get("ParallelizationFactor", 1)),
    )


def _event_rule(logical_id: str, props: dict[str, Any], symbols: dict[str, Any]) -> EventRule:
    pattern = props["EventPattern"]
    bus = str(props.get("EventBusName") or "default")
    return EventRule(
        logical_id=logical_id,
        name=props.get("Name") or symbols[logical_id]["Ref"],
        bus_name=bus.rsplit("/", 1)[-1] if bus.startswith("arn:") else bus,
        pattern=json.loads(pattern) if isinstance(pattern, str) else pattern,
        targets=tuple(
            RuleTarget(
                id=str(target.get("Id", index)),
                arn=target["Arn"],
                input=target.get("Input"),
                input_transformer=target.get("InputTransformer"),
                sqs_parameters=target.get("SqsParameters"),
            )
            for index, target in enumerate(props.get("Targets", []))
        ),
        enabled=props.get("State", "ENABLED") == "ENABLED",
    )


def _rule_schedules(
    logical_id: str, props: dict[str, Any], symbols: dict[str, Any], template: Template
) -> list[Schedule]:
    name = props.get("Name") or symbols[logical_id]["Ref"]
    return [
        Schedule(
            logical_id=logical_id,
            name=name,
            kind="rule",
            expression=props["ScheduleExpression"],
            timezone="UTC",
            target_arn=target["Arn"],
            input=target.get("Input"),
            enabled=props.get("State", "ENABLED") == "ENABLED",
            function_logical_id=_function_id(template, target["Arn"]),
        )
        for target in props.get("Targets", [])
    ]
