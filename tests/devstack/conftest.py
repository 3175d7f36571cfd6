"""A local stack running the small test template (stub functions of every event source kind)."""

import json
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from devstack.stack import LocalStack

STACK_TEMPLATE = Path(__file__).parent / "stack_template" / "template.yaml"


class Http:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method, path, body=None, headers=None):
        data = body if isinstance(body, bytes | None) else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, headers=headers or {}, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.headers, exc.read()


def eventually(check, timeout=15.0, interval=0.2):
    """Poll until `check` returns something truthy (the asynchronous pumps need a moment)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"not true within {timeout}s: {check}")
        time.sleep(interval)


@pytest.fixture(scope="module")
def stack_data(tmp_path_factory):
    return tmp_path_factory.mktemp("stack-data")


@pytest.fixture(scope="module")
def stack(stack_data):
    lines: list[str] = []
    local = LocalStack(port=0, data_dir=stack_data, template_path=STACK_TEMPLATE, log=lines.append)
    local.logs = lines
    with local:
        yield local


@pytest.fixture(scope="module")
def http(stack):
    return Http(stack.url)
