"""Lambda event filtering (FilterCriteria): EventBridge-style patterns matched against a record's JSON.

A pattern is a dict whose leaves are lists of matchers; a leaf matches when any matcher matches (and, for an
array value, when any element does). Matchers: exact values (strings, numbers, booleans, null), `prefix`,
`suffix`, `equals-ignore-case`, `anything-but` (values, or a prefix/suffix), `exists`, `numeric`; `$or` lists
alternative patterns at any level. A record passes FilterCriteria when any of its filters matches.
"""

from __future__ import annotations

import contextlib
import json
import operator
from collections.abc import Callable, Iterable
from typing import Any

_MISSING = object()
_NUMERIC_OPS: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


class InvalidPattern(ValueError):
    pass


def matches_any(filters: Iterable[dict[str, Any]], record: dict[str, Any]) -> bool:
    """True when there are no filters, or when one of them matches."""
    filter_list = list(filters)
    return not filter_list or any(matches(pattern, record) for pattern in filter_list)


def matches(pattern: dict[str, Any], event: Any) -> bool:
    if not isinstance(pattern, dict):
        raise InvalidPattern(f"a pattern must be an object, got {pattern!r}")
    for key, expected in pattern.items():
        if key == "$or":
            if not isinstance(expected, list) or not any(matches(alt, event) for alt in expected):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(expected, dict):
            if value is _MISSING or not matches(expected, value):
                return False
        elif isinstance(expected, list):
            if not _leaf_matches(expected, value):
                return False
        else:
            raise InvalidPattern(f"{key}: a leaf must be a list of matchers, got {expected!r}")
    return True


def _leaf_matches(matchers: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    for matcher in matchers:
        if isinstance(matcher, dict) and "exists" in matcher:
            present = value is not _MISSING
            if present == bool(matcher["exists"]):
                return True
            continue
        if value is _MISSING:
            continue
        if any(_value_matches(matcher, v) for v in values):
            return True
    return False


def _value_matches(matcher: Any, value: Any) -> bool:
    if not isinstance(matcher, dict):
        return _equal(matcher, value)
    if len(matcher) != 1:
        raise InvalidPattern(f"one operator per matcher: {matcher!r}")
    ((op, arg),) = matcher.items()
    if op == "prefix":
        return isinstance(value, str) and _text_op(arg, value, str.startswith)
    if op == "suffix":
        return isinstance(value, str) and _text_op(arg, value, str.endswith)
    if op == "equals-ignore-case":
        return isinstance(value, str) and isinstance(arg, str) and value.casefold() == arg.casefold()
    if op == "anything-but":
        return _anything_but(arg, value)
    if op == "numeric":
        return _numeric(arg, value)
    raise InvalidPattern(f"unsupported operator {op!r}")


def _text_op(arg: Any, value: str, test: Callable[[str, str], bool]) -> bool:
    # {"prefix": {"equals-ignore-case": "x"}} is allowed by EventBridge.
    if isinstance(arg, dict) and "equals-ignore-case" in arg:
        return test(value.casefold(), str(arg["equals-ignore-case"]).casefold())
    return isinstance(arg, str) and test(value, arg)


def _equal(expected: Any, value: Any) -> bool:
    if expected is None or value is None:
        return expected is None and value is None
    if isinstance(expected, bool) or isinstance(value, bool):
        return expected is value
    if isinstance(expected, int | float) and isinstance(value, int | float):
        return float(expected) == float(value)
    return type(expected) is type(value) and expected == value


def _anything_but(arg: Any, value: Any) -> bool:
    if isinstance(arg, dict):
        ((op, inner),) = arg.items()
        if op == "prefix":
            return isinstance(value, str) and not value.startswith(inner)
        if op == "suffix":
            return isinstance(value, str) and not value.endswith(inner)
        if op == "equals-ignore-case":
            options = inner if isinstance(inner, list) else [inner]
            return isinstance(value, str) and value.casefold() not in {str(o).casefold() for o in options}
        raise InvalidPattern(f"unsupported anything-but operator {op!r}")
    options = arg if isinstance(arg, list) else [arg]
    return not any(_equal(option, value) for option in options)


def _numeric(arg: Any, value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    if not isinstance(arg, list) or len(arg) % 2:
        raise InvalidPattern(f"numeric needs operator/value pairs: {arg!r}")
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC_OPS:
            raise InvalidPattern(f"unsupported numeric operator {op!r}")
        if not _NUMERIC_OPS[op](float(value), float(bound)):
            return False
    return True


def sqs_filter_view(message_record: dict[str, Any]) -> dict[str, Any]:
    """What SQS filters see: the record, with `body` parsed when it is JSON (plain text stays a string)."""
    view = dict(message_record)
    with contextlib.suppress(ValueError, TypeError):
        view["body"] = json.loads(message_record["body"])
    return view
