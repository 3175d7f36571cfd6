"""Deploy parameters for the local stack: PARAMS and samconfig.toml's `local` environment override the
template's defaults (PARAMS winning), values are checked as CloudFormation would, the banner shows what is in
effect, and `make help` / `make dev` say and pass the real port and parameters."""

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from devstack.cli import _banner
from devstack.parameters import effective_overrides, parse_overrides, samconfig_overrides
from devstack.paths import PROJECT_ROOT
from devstack.template import TemplateError, _parameter_values

SAM = {
    "Parameters": {
        "ScoreHalfLifeDays": {"Type": "Number", "Default": 0, "MinValue": 0, "MaxValue": 3650},
        "SalesThreshold": {"Type": "Number", "Default": 70, "MinValue": 0, "MaxValue": 1000},
        "LogLevel": {"Type": "String", "Default": "INFO", "AllowedValues": ["DEBUG", "INFO"]},
    }
}


def test_sams_two_override_forms_are_read() -> None:
    assert parse_overrides('ScoreHalfLifeDays=7 DefaultTeam="inside sales"') == {
        "ScoreHalfLifeDays": "7",
        "DefaultTeam": "inside sales",
    }
    assert parse_overrides("ParameterKey=SalesThreshold,ParameterValue=60") == {"SalesThreshold": "60"}
    for bad in ("ScoreHalfLifeDays", "=7", 'A="open'):
        with pytest.raises(ValueError):
            parse_overrides(bad)


def test_params_win_over_samconfigs_local_environment(tmp_path: Path) -> None:
    samconfig = tmp_path / "samconfig.toml"
    samconfig.write_text(
        '[dev.deploy.parameters]\nparameter_overrides = "LogLevel=DEBUG"\n'
        '[local.global.parameters]\nparameter_overrides = "ScoreHalfLifeDays=14 SalesThreshold=50"\n'
    )
    assert samconfig_overrides(samconfig) == {"ScoreHalfLifeDays": "14", "SalesThreshold": "50"}
    found = effective_overrides(samconfig, "SalesThreshold=60")
    assert {name: (o.value, o.source) for name, o in found.items()} == {
        "ScoreHalfLifeDays": ("14", "samconfig.toml [local]"),
        "SalesThreshold": ("60", "PARAMS"),
    }
    assert effective_overrides(tmp_path / "absent.toml", None) == {}
    assert samconfig_overrides(PROJECT_ROOT / "samconfig.toml") == {}  # the project's own: defaults


def test_values_are_checked_as_cloudformation_would() -> None:
    assert _parameter_values(SAM, {"ScoreHalfLifeDays": "7"})["ScoreHalfLifeDays"] == "7"
    for overrides, message in (
        ({"ScoreHalfLifeDays": "seven"}, "not a number"),
        ({"SalesThreshold": "5000"}, "outside"),
        ({"LogLevel": "LOUD"}, "is not one of"),
        ({"ScoreHalfLife": "7"}, "unknown parameter"),
    ):
        with pytest.raises(TemplateError, match=message):
            _parameter_values(SAM, overrides)


def test_the_banner_shows_the_effective_values_and_where_they_came_from(tmp_path: Path) -> None:
    overrides = effective_overrides(
        tmp_path / "none.toml", "ScoreHalfLifeDays=7 SalesThreshold=60 LogLevel=DEBUG"
    )
    parameters = {
        "ScoreHalfLifeDays": "7",
        "SalesThreshold": "60",
        "LogLevel": "DEBUG",
        "DefaultTeam": "sales",
    }
    stack = SimpleNamespace(
        url="http://127.0.0.1:3000",
        template=SimpleNamespace(functions={}, routes=[], parameters=parameters),
        startup_seconds=1.0,
        data=SimpleNamespace(root=Path(".devstack/data")),
    )
    banner = _banner(stack, overrides)
    assert "ScoreHalfLifeDays=7 (PARAMS)" in banner and "SalesThreshold=60 (PARAMS)" in banner
    assert "DefaultTeam=sales" in banner and "LogLevel=DEBUG (PARAMS)" in banner


def test_make_passes_params_and_the_port() -> None:
    def make(*args: str) -> str:
        return subprocess.run(
            ["make", "-s", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
        ).stdout

    assert "127.0.0.1:3111" in make("help", "PORT=3111") and "$(PORT)" not in make("help")
    dry_run = make("-n", "dev", "PORT=3111", "PARAMS=ScoreHalfLifeDays=7 SalesThreshold=60")
    assert "devstack run --port 3111 --parameter-overrides 'ScoreHalfLifeDays=7 SalesThreshold=60'" in dry_run
