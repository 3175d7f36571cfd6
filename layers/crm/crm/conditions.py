"""The rule-condition language shared by scoring rules, assignment rules and nurture sequences.

One operator set, one set of value checks and one matcher per (operator, value), so "equals", "in",
"between" or "regex" mean the same thing wherever a rule tests a lead. Plain Python, no AWS.

Semantics a rule author can rely on:
- Text comparisons ignore case and surrounding spaces; `regex` searches anywhere in the value, ignoring case.
  Patterns run on RE2 (google-re2), whose time is linear in the value's length whatever the pattern, so no
  rule can hang a function; RE2 has no backreferences and no lookarounds, and such patterns are refused
  when the rule is saved.
- A number rule (gt, between, equals 5, ...) also reads numeric text, e.g. a custom field "5000".
- An absent value (missing, null, blank text, empty list) matches only `not_exists`: `not_equals X`
  does not match a lead that has no value at all.
- A list value (a multi-select custom field) matches when any item does; `not_equals` when none does.
"""

import math
import re
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from functools import lru_cache, partial
from operator import attrgetter, ge, gt, le, lt
from typing import Any, TypeGuard

import re2

from crm.platform import clock
from crm.platform.numbers import number_problem

MAX_PATTERN_LENGTH = 200
MAX_VALUE_LENGTH = 255
MAX_LIST_VALUES = 100
MAX_CUSTOM_FIELD_NAME = 100  # the same bound crm.platform.fields puts on custom field keys

CUSTOM_FIELD_PREFIX = "custom_fields."

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")


class Operator(StrEnum):
    EQUALS = "equals"
    NOT_EQUALS = "not_equals"
    CONTAINS = "contains"
    STARTS_WITH = "starts_with"
    ENDS_WITH = "ends_with"
    IN = "in"
    GT = "gt"
    GTE = "gte"
    LT = "lt"
    LTE = "lte"
    BETWEEN = "between"
    EXISTS = "exists"
    NOT_EXISTS = "not_exists"
    REGEX = "regex"


_TEXT_OPERATORS = frozenset({Operator.CONTAINS, Operator.STARTS_WITH, Operator.ENDS_WITH})
_NUMBER_OPERATORS = frozenset({Operator.GT, Operator.GTE, Operator.LT, Operator.LTE})
_PRESENCE_OPERATORS = frozenset({Operator.EXISTS, Operator.NOT_EXISTS})

# What a rule compares with: JSON scalars, or a list of them for `in` and `between`.
RuleScalar = bool | int | Decimal | str
RuleValue = RuleScalar | list[RuleScalar] | None


def is_number(value: object) -> TypeGuard[int | Decimal]:
    """A finite int or Decimal; bool is an int to Python but never a number to a rule."""
    if isinstance(value, bool) or not isinstance(value, int | Decimal):
        return False
    return not isinstance(value, Decimal) or value.is_finite()


def _pattern_options() -> re2.Options:
    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False  # a refused pattern is the author's 422, not a line on the function's stderr
    return options


_PATTERN_OPTIONS = _pattern_options()


@lru_cache(maxsize=512)
def compiled_pattern(pattern: str) -> Any:
    """Compile once per pattern (RE2, ignoring case): validation and evaluation share the compiled form."""
    return re2.compile(pattern, _PATTERN_OPTIONS)


def custom_field_name_ok(name: str) -> bool:
    """Whether `name` is `custom_fields.<key>` with a key a lead's custom fields can hold."""
    if not name.startswith(CUSTOM_FIELD_PREFIX):
        return False
    key = name.removeprefix(CUSTOM_FIELD_PREFIX)
    return 0 < len(key) <= MAX_CUSTOM_FIELD_NAME and not _CONTROL_CHARACTERS.search(key)


def _check_text(value: object, operator: Operator) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{operator} needs a non-empty text (use exists / not_exists to test for absence)")
    if len(value) > MAX_VALUE_LENGTH:
        raise ValueError(f"must be at most {MAX_VALUE_LENGTH} characters")
    return value


def _check_number(value: object, operator: Operator) -> int | Decimal:
    # A rule's number is stored with the rule: DynamoDB's range, not just any Decimal (1e-308, 1e126).
    if not is_number(value):
        raise ValueError(f"{operator} needs a number")
    problem = number_problem(value)
    if problem is not None:
        raise ValueError(problem)
    return value


def _check_scalar(value: object, operator: Operator) -> RuleScalar:
    if isinstance(value, bool):
        return value
    if is_number(value):
        return _check_number(value, operator)
    return _check_text(value, operator)


def _check_pattern(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError("regex needs a pattern")
    if len(value) > MAX_PATTERN_LENGTH:
        raise ValueError(f"the pattern must be at most {MAX_PATTERN_LENGTH} characters")
    try:
        compiled_pattern(value)
    except re2.error as exc:
        # google-re2 passes RE2's own message on as bytes, e.g. b"invalid perl operator: (?="
        reason = exc.args[0].decode(errors="replace") if exc.args and isinstance(exc.args[0], bytes) else exc
        raise ValueError(
            f"not a regular expression the rule engine runs ({reason}); "
            "backreferences such as \\1 and lookarounds such as (?=...) are not supported"
        ) from None
    return value


_SCALARS = (bool, int, float, Decimal, str)


def check_value_shape(value: object) -> object:
    """A rule value is one JSON scalar or a list of them: one clear error instead of one per member of
    the RuleValue union (run before the type's own validation)."""
    if value is None or isinstance(value, _SCALARS):
        return value
    if isinstance(value, list) and all(isinstance(item, _SCALARS) for item in value):
        return value
    raise ValueError("must be a text, a number, true/false or a list of those")


def check_value(operator: Operator, value: RuleValue) -> RuleValue:
    """The value shape each operator needs; the message says which shape."""
    if operator in _PRESENCE_OPERATORS:
        if value is not None:
            raise ValueError(f"{operator} takes no value")
        return None
    if operator in _NUMBER_OPERATORS:
        return _check_number(value, operator)
    if operator is Operator.BETWEEN:
        low, high = value if isinstance(value, list) and len(value) == 2 else (None, None)
        if not (is_number(low) and is_number(high)):
            raise ValueError("between needs [low, high], two numbers")
        low, high = _check_number(low, operator), _check_number(high, operator)
        if low > high:
            raise ValueError("between needs low <= high")
        return [low, high]
    if operator is Operator.IN:
        if not isinstance(value, list) or not 0 < len(value) <= MAX_LIST_VALUES:
            raise ValueError(f"in needs a list of 1 to {MAX_LIST_VALUES} values")
        return [_check_scalar(item, operator) for item in value]
    if operator is Operator.REGEX:
        return _check_pattern(value)
    if operator in _TEXT_OPERATORS:
        return _check_text(value, operator)
    if isinstance(value, list) or value is None:
        raise ValueError(f"{operator} needs one value: a text, a number or true/false")
    return _check_scalar(value, operator)


Matcher = Callable[[Any], bool]
_NUMBER_COMPARISONS: dict[Operator, Callable[[Any, Any], bool]] = {
    Operator.GT: gt,
    Operator.GTE: ge,
    Operator.LT: lt,
    Operator.LTE: le,
}


def _text(value: Any) -> str | None:
    if isinstance(value, str):
        return value.strip().casefold()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return clock.isoformat(value).casefold()
    return None


def _number(value: Any) -> int | float | Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, str):
        try:
            value = Decimal(value)
        except InvalidOperation:
            return None
    if isinstance(value, Decimal) and value.is_finite():
        return value
    return None


def _is_present(value: Any) -> bool:
    if value is None:
        return False
    if isinstance(value, str):
        return bool(value.strip())
    if isinstance(value, list | tuple | dict):
        return bool(value)
    return True


def _any_item(test: Matcher, value: Any) -> bool:
    # A list (a multi-select custom field) matches when any of its items does.
    if isinstance(value, list | tuple):
        return any(map(test, value))
    return test(value)


def _item_test(operator: Operator, expected: RuleValue) -> Matcher:
    """The test of one value; an absent value fails it (no text, no number, no match)."""
    if operator in (Operator.EQUALS, Operator.NOT_EQUALS):
        if is_number(expected):
            return lambda actual: _number(actual) == expected
        wanted = _text(expected)
        return lambda actual: _text(actual) == wanted
    if operator is Operator.IN:
        assert isinstance(expected, list)
        numbers = {item for item in expected if is_number(item)}
        texts = {_text(item) for item in expected if not is_number(item)}
        return lambda actual: _number(actual) in numbers or _text(actual) in texts
    if operator in _NUMBER_COMPARISONS:
        compare = _NUMBER_COMPARISONS[operator]

        def compares(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and compare(number, expected)

        return compares
    if operator is Operator.BETWEEN:
        assert isinstance(expected, list)
        low, high = expected
        assert is_number(low) and is_number(high)

        def within(actual: Any) -> bool:
            number = _number(actual)
            return number is not None and low <= number <= high

        return within
    if operator is Operator.REGEX:
        assert isinstance(expected, str)
        pattern = compiled_pattern(expected)

        def searches(actual: Any) -> bool:
            subject = actual if isinstance(actual, str) else _text(actual)
            if not subject or subject.isspace():
                return False
            return pattern.search(subject) is not None

        return searches
    needle = _text(expected) or ""
    text_test: Callable[[str], bool] = {
        Operator.CONTAINS: lambda text: needle in text,
        Operator.STARTS_WITH: lambda text: text.startswith(needle),
        Operator.ENDS_WITH: lambda text: text.endswith(needle),
    }[operator]

    def matches_text(actual: Any) -> bool:
        text = _text(actual)
        return text is not None and text_test(text)

    return matches_text


def compile_matcher(operator: Operator, expected: RuleValue) -> Matcher:
    """A callable telling whether a value (a lead field, an activity type) satisfies the rule."""
    if operator is Operator.EXISTS:
        return _is_present
    if operator is Operator.NOT_EXISTS:
        return lambda actual: not _is_present(actual)
    test = _item_test(operator, expected)
    if operator is Operator.NOT_EQUALS:
        return lambda actual: _is_present(actual) and not _any_item(test, actual)
    return partial(_any_item, test)


def field_reader(field: str) -> Callable[[Any], Any]:
    """How a condition on `field` reads a lead: an attribute, or one key of its custom fields."""
    if field.startswith(CUSTOM_FIELD_PREFIX):
        key = field.removeprefix(CUSTOM_FIELD_PREFIX)
        return lambda lead: lead.custom_fields.get(key)
    return attrgetter(field)
