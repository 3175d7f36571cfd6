"""Deploy parameters tried locally: a stack started with `ScoreHalfLifeDays=7` (as `make dev
PARAMS="ScoreHalfLifeDays=7"` starts it) halves a lead's behavioural points once its local clock has moved on
by a half-life, while its field points stay whole (the template's default, 0, never decays)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import LocalStack

from .conftest import Client
from .test_scoring_over_http import capture, eventually, score, score_becomes

pytestmark = pytest.mark.e2e

DAY = 24 * 3600


@pytest.fixture(scope="module")
def decaying_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    data_dir: Path = tmp_path_factory.mktemp("devstack-params")
    stack = LocalStack(
        port=0,
        data_dir=data_dir,
        tables_in_memory=True,
        workers_per_function=1,
        parameter_overrides={"ScoreHalfLifeDays": "7", "SalesThreshold": "60"},
        log=lambda _line: None,
    )
    with stack:
        yield stack


def demo_points(ledger: dict[str, Any]) -> tuple[int, int]:
    entry = next(e for e in ledger["entries"] if e["rule_id"] == "seed-activity-demo-requested")
    return entry["points"], entry["raw_points"]


def test_behavioural_points_halve_after_a_half_life(decaying_stack: LocalStack) -> None:
    # Given a stack whose parameters say a half-life of 7 days, and a lead that asked for a demo (+20)
    assert decaying_stack.template is not None
    env = decaying_stack.template.function("RescoreFunction").environment
    assert env["SCORE_HALF_LIFE_DAYS"] == "7"
    client = Client(decaying_stack.url)
    token = decaying_stack.token("admin")
    lead_id = capture(client)
    score_becomes(client, token, lead_id, 60)
    recorded = client.request(
        "POST",
        f"/leads/{lead_id}/activities",
        json_body={"type": "demo_requested"},
        headers={"Authorization": f"Bearer {token}"},
    )
    assert recorded.status == 201, recorded.body
    assert demo_points(score_becomes(client, token, lead_id, 80)) == (20, 20)

    # When the local clock moves on by one half-life (the daily decay pass fires on the way)
    decaying_stack.advance_clock(7 * DAY + 3600)
    token = decaying_stack.token("admin")

    # Then the demo request and the form submission are worth half; the fields' 50 points have not moved
    ledger = eventually(
        lambda: (s := score(client, token, lead_id))["score"] != 80 and s, "the score to decay"
    )
    assert demo_points(ledger) == (10, 20)
    assert ledger["score"] == 50 + 5 + 10
