import os
from collections.abc import Iterator
from typing import Any

import boto3
import pytest

# No test may reach a real AWS account, whatever the developer's shell holds.
os.environ.update(
    AWS_ACCESS_KEY_ID="testing",
    AWS_SECRET_ACCESS_KEY="testing",
    AWS_SESSION_TOKEN="testing",
    AWS_DEFAULT_REGION="us-east-1",
    AWS_REGION="us-east-1",
    POWERTOOLS_TRACE_DISABLED="true",
    POWERTOOLS_METRICS_NAMESPACE="LeadFlowTests",
    POWERTOOLS_SERVICE_NAME="leadflow",
)
for _name in list(os.environ):
    if _name.startswith("AWS_ENDPOINT_URL") or _name == "AWS_PROFILE":
        del os.environ[_name]

# The domain layer reads POWERTOOLS_* when first imported, as in Lambda: import it after the above.
from crm import bootstrap  # noqa: E402
from crm.platform import aws, idempotency  # noqa: E402
from crm.platform.settings import get_settings  # noqa: E402

from devstack.template import Template, load_template  # noqa: E402


@pytest.fixture(scope="session")
def template() -> Template:
    return load_template()


def reset_cached_clients() -> None:
    """Forget clients, settings and services cached at 'cold start', so the next test starts cold."""
    from aws_lambda_powertools.utilities import parameters

    aws.reset()
    get_settings.cache_clear()
    bootstrap.reset()
    idempotency._persistence.cache_clear()
    parameters.clear_caches()


class FunctionEnvironment:
    """Sets a function's environment exactly as the template gives it, plus any pinned overrides (a test
    with its own table pins TABLE_NAME so every function it calls uses that table)."""

    def __init__(self, template: Template, monkeypatch: pytest.MonkeyPatch) -> None:
        self._template = template
        self._monkeypatch = monkeypatch
        self._pinned: dict[str, str] = {}

    def pin(self, **overrides: str) -> None:
        self._pinned.update(overrides)

    def __call__(self, logical_id: str, **overrides: str) -> dict[str, str]:
        environment = {**self._template.function(logical_id).environment, **self._pinned, **overrides}
        for name, value in environment.items():
            self._monkeypatch.setenv(name, value)
        reset_cached_clients()
        return environment


@pytest.fixture
def function_env(template: Template, monkeypatch: pytest.MonkeyPatch) -> Iterator[FunctionEnvironment]:
    yield FunctionEnvironment(template, monkeypatch)
    reset_cached_clients()


def table_client(endpoint_url: str | None = None) -> Any:
    return boto3.client("dynamodb", region_name="us-east-1", endpoint_url=endpoint_url)
