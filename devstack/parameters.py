"""Deploy parameters for the local stack: SAM's `parameter_overrides` from samconfig.toml's `local`
environment and from `make dev PARAMS="Name=Value ..."` (`devstack run --parameter-overrides`), the
latter winning; the template's defaults for the rest. The banner shows the values in effect and where
each came from."""

import shlex
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCAL_ENV = "local"
# Shown in the banner whether overridden or not: the parameters people come to try.
SHOWN = ("ScoreHalfLifeDays", "SalesThreshold", "SpeedToLeadSlaMinutes", "AfterHoursPolicy", "DefaultTeam")
# Commands whose samconfig sections a local run reads, in increasing precedence (SAM's `global` first).
_SECTIONS = ("global", "local_start_api", "deploy")


@dataclass(frozen=True)
class Override:
    value: str
    source: str  # "samconfig.toml [local]" or "PARAMS"


def parse_overrides(text: str) -> dict[str, str]:
    """SAM's forms: `Name=Value Other="a b"` or `ParameterKey=Name,ParameterValue=Value ...`."""
    try:
        words = shlex.split(text)
    except ValueError as exc:
        raise ValueError(f"cannot read {text!r}: {exc}") from None
    values: dict[str, str] = {}
    for word in words:
        if word.startswith("ParameterKey="):
            key_part, _, value_part = word.partition(",")
            if not value_part.startswith("ParameterValue="):
                raise ValueError(f"{word!r}: expected ParameterKey=Name,ParameterValue=Value")
            name, value = key_part.removeprefix("ParameterKey="), value_part.removeprefix("ParameterValue=")
        else:
            name, equals, value = word.partition("=")
            if not equals:
                raise ValueError(f"{word!r}: expected Name=Value")
        if not name.isidentifier():
            raise ValueError(f"{word!r}: {name!r} is not a parameter name")
        values[name] = value
    return values


def samconfig_overrides(path: Path, environment: str = LOCAL_ENV) -> dict[str, str]:
    """`parameter_overrides` of samconfig.toml's environment (a string, or a list of `Name=Value`)."""
    if not path.is_file():
        return {}
    try:
        config: dict[str, Any] = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{path.name}: {exc}") from None
    values: dict[str, str] = {}
    for command in _SECTIONS:
        section = ((config.get(environment) or {}).get(command) or {}).get("parameters") or {}
        given = section.get("parameter_overrides")
        if isinstance(given, list):
            given = " ".join(shlex.quote(str(item)) for item in given)
        if given:
            values |= parse_overrides(str(given))
    return values


def effective_overrides(samconfig: Path, params: str | None) -> dict[str, Override]:
    """What overrides the template's defaults: samconfig.toml's `local` environment, then PARAMS."""
    found = {
        name: Override(value, "samconfig.toml [local]")
        for name, value in samconfig_overrides(samconfig).items()
    }
    found |= {name: Override(value, "PARAMS") for name, value in parse_overrides(params or "").items()}
    return found


def banner_lines(parameters: Mapping[str, Any], overrides: Mapping[str, Override]) -> list[str]:
    """`Name=value` for the commonly tried parameters and every overridden one (with where it came from)."""
    names = [name for name in SHOWN if name in parameters] + sorted(set(overrides) - set(SHOWN))
    shown = [
        f"{name}={parameters.get(name, '')}" + (f" ({overrides[name].source})" if name in overrides else "")
        for name in names
    ]
    lines = [f"  Parameters {', '.join(shown[:3])}"] if shown else []
    lines += [f"             {', '.join(shown[i : i + 3])}" for i in range(3, len(shown), 3)]
    lines.append('             (others: template defaults; make dev PARAMS="Name=Value ...")')
    return lines
