"""The real local stack (template.yaml, the real functions), started once per session on a free port with a
private data folder, so `pytest -n 2` workers never share one."""

import json
import urllib.error
import urllib.parse
import urllib.request

import pytest

from devstack.stack import LocalStack


class Client:
    """A plain HTTP client, as a browser or curl would talk to the API."""

    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method, path, *, data=None, json_body=None, headers=None):
        headers = dict(headers or {})
        body = None
        if json_body is not None:
            body = json.dumps(json_body).encode()
            headers.setdefault("Content-Type", "application/json")
        elif data is not None:
            body = urllib.parse.urlencode(data).encode()
            headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        req = urllib.request.Request(self.base + path, data=body, headers=headers, method=method)
        try:
            with urllib.request.urlopen(req, timeout=30) as response:
                return Response(response.status, response.headers, response.read())
        except urllib.error.HTTPError as exc:
            return Response(exc.code, exc.headers, exc.read())


class Response:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)


@pytest.fixture(scope="package")
def e2e_data_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("devstack-e2e")


# Package scope: the stack stops when this worker leaves tests/e2e (as session scope it kept polling, idle,
# through the rest of the run: a third of a core per stack on a two-core machine).
@pytest.fixture(scope="package")
def local_stack(e2e_data_dir):
    stack = LocalStack(port=0, data_dir=e2e_data_dir, log=lambda _line: None, tables_in_memory=True)
    with stack:
        stack.wait_warm()  # the tests that time the pipeline start with warm functions
        yield stack


@pytest.fixture(scope="package")
def client(local_stack):
    return Client(local_stack.url)


@pytest.fixture(scope="module")
def clock_stack(tmp_path_factory):
    """A local stack of the test module's own, for tests that move its clock by hours or days: the session's
    stack keeps real time for the other e2e tests."""
    data_dir = tmp_path_factory.mktemp("devstack-clock")
    stack = LocalStack(
        port=0, data_dir=data_dir, workers_per_function=1, log=lambda _line: None, tables_in_memory=True
    )
    with stack:
        yield stack


@pytest.fixture(scope="module")
def http(clock_stack):
    """A client of the module's own stack (`clock_stack`)."""
    return Client(clock_stack.url)
