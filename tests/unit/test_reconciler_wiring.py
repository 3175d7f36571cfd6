"""The reconciler's wiring in template.yaml (issue 14): a schedule (every 10 minutes) of RescoreFunction
with the event its handler knows, and an alarm on the metric it emits, in the namespace and service the
functions use."""

import json
from typing import Any

from samcli.yamlhelper import yaml_parse

from devstack.paths import PROJECT_ROOT


def template() -> dict[str, Any]:
    return dict(yaml_parse((PROJECT_ROOT / "template.yaml").read_text()))


def test_the_rescore_function_starts_the_reconciler_every_ten_minutes() -> None:
    events = template()["Resources"]["RescoreFunction"]["Properties"]["Events"]
    schedule = events["Reconcile"]
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == "rate(10 minutes)"
    assert json.loads(schedule["Properties"]["Input"]) == {"action": "start_reconcile"}


def test_leads_found_by_the_reconciler_raise_an_alarm() -> None:
    parsed = template()
    environment = parsed["Globals"]["Function"]["Environment"]["Variables"]
    alarm = parsed["Resources"]["LeadsReconciledAlarm"]["Properties"]
    assert (alarm["Namespace"], alarm["MetricName"]) == (
        environment["POWERTOOLS_METRICS_NAMESPACE"],
        "LeadsReconciled",
    )
    assert alarm["Dimensions"] == [{"Name": "service", "Value": environment["POWERTOOLS_SERVICE_NAME"]}]
    assert (alarm["Threshold"], alarm["ComparisonOperator"]) == (0, "GreaterThanThreshold")
    assert alarm["AlarmActions"] == [{"Ref": "AlarmTopic"}] == alarm["OKActions"]
