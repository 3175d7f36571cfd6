"""The OpenAPI document tells the truth: schemathesis fuzzes each of its operations on a local stack as an
admin, as a rep and without a token, and every answer must be no 5xx, with a documented status, a documented
content type and a body that matches the documented schema.

The operations are read from the document the stack serves (built by the layer, `crm.api.docs`), when the
tests are collected, so a new route is fuzzed at once; a test checks that the stack serves that very document.
The stack is this module's own (its own data folder): the fuzzer creates, changes and deletes whatever it can
reach, and the session's stack keeps the demo data the other tests rely on.
"""

import copy
import json
import urllib.request
from collections.abc import Iterator

import pytest
import schemathesis
from crm.api.docs import openapi_document
from schemathesis.config import SchemathesisConfig

from devstack.stack import LocalStack

pytestmark = pytest.mark.e2e

# The budget: generated examples per operation and caller (the module stays under ~90 s on 2 cores).
EXAMPLES_PER_OPERATION = 8
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
)


def load_schema(*, coverage: bool) -> schemathesis.BaseSchema:
    return schemathesis.openapi.from_dict(
        copy.deepcopy(openapi_document()),  # its own copy: schemathesis may add to what it is given
        config=SchemathesisConfig.from_dict(
            {
                "generation": {"max-examples": EXAMPLES_PER_OPERATION, "database": "none"},
                "phases": {"coverage": {"enabled": coverage}},
                "checks": {"enabled": False, **{name: {"enabled": True} for name in CHECKS}},
                # The capture form's 303 is judged as this API's answer, not the thank-you page it points to.
                "max-redirects": 0,
                "request-timeout": 30,
            }
        ),
    )


schema = load_schema(coverage=False)
# Without a token, also the coverage phase: boundary and malformed values and unexpected methods, as anyone on
# the internet may send them (the JWT routes refuse them at the gateway, so it costs little there).
public_schema = load_schema(coverage=True)


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    stack = LocalStack(
        port=0,
        data_dir=tmp_path_factory.mktemp("devstack-fuzz"),
        log=lambda _line: None,
        tables_in_memory=True,
    )
    with stack:
        yield stack


@pytest.fixture(scope="module")
def bearer(fuzz_stack: LocalStack) -> dict[str, dict[str, str]]:
    """An Authorization header of a demo user, by role."""
    return {role: {"Authorization": f"Bearer {fuzz_stack.token(role=role)}"} for role in ("admin", "rep")}


def call_as(case: schemathesis.Case, stack: LocalStack, headers: dict[str, str]) -> None:
    # Given a generated request, sent with the caller's token only (the generator's own is dropped)
    case.headers = {
        name: value for name, value in (case.headers or {}).items() if name.lower() != "authorization"
    }
    # Then the answer is no 5xx and has a documented status, content type and body
    case.call_and_validate(base_url=stack.url, headers=headers)


def test_the_stack_serves_the_fuzzed_document(fuzz_stack: LocalStack) -> None:
    with urllib.request.urlopen(f"{fuzz_stack.url}/openapi.json", timeout=30) as response:
        assert json.loads(response.read()) == openapi_document()


@schema.parametrize()
def test_every_answer_to_an_admin_is_documented(
    case: schemathesis.Case, fuzz_stack: LocalStack, bearer: dict[str, dict[str, str]]
) -> None:
    call_as(case, fuzz_stack, bearer["admin"])


@schema.parametrize()
def test_every_answer_to_a_rep_is_documented(
    case: schemathesis.Case, fuzz_stack: LocalStack, bearer: dict[str, dict[str, str]]
) -> None:
    call_as(case, fuzz_stack, bearer["rep"])


@public_schema.parametrize()
def test_every_answer_without_a_token_is_documented(case: schemathesis.Case, fuzz_stack: LocalStack) -> None:
    call_as(case, fuzz_stack, {})
