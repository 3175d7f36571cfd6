"""Field types shared by the API input models: lengths follow the seed schema."""

import json
import re
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any

from email_validator import EmailNotValidError, validate_email
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    PlainSerializer,
    Strict,
    StringConstraints,
)

from crm.platform.numbers import number_problem

_CONTROL_CHARACTERS = re.compile(r"[\x00-\x1f\x7f]")
_CONTROL_CHARACTERS_EXCEPT_NEWLINES = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_PHONE = re.compile(r"^[0-9+().\-/ x]{3,50}$", re.IGNORECASE)
_SOURCE = re.compile(r"^[A-Za-z0-9_.\- ]+$")

CUSTOM_FIELDS_MAX_BYTES = 16 * 1024
# How deeply one custom field's value may nest lists and objects. The lead item, its activities' data
# (which quote custom fields two or three levels down) and DynamoDB's own limit of 32 levels leave room
# for this many; a form or partner has no use for more.
MAX_CUSTOM_FIELD_DEPTH = 10
# Timestamps are stored as fixed-width ISO-8601 text that sorts as time does: four-digit years only, and
# none before 1900 (no lead, task or activity is older).
FIRST_YEAR, LAST_YEAR = 1900, 9999


def _single_line(value: str) -> str:
    if _CONTROL_CHARACTERS.search(value):
        raise ValueError("must not contain control characters")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL_CHARACTERS_EXCEPT_NEWLINES.search(value):
        raise ValueError("must not contain control characters")
    return value


def _blank_to_none(value: object) -> object:
    # HTML forms send "" for every field left empty; an empty optional field is simply absent.
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _email(value: str) -> str:
    try:
        checked = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(f"not a valid email address ({exc})") from None
    # Email is the lead's identity: one spelling per address.
    return checked.normalized.lower()


def _phone(value: str) -> str:
    if not _PHONE.match(value):
        raise ValueError("must be a phone number: digits, spaces and + ( ) . - / x")
    return value


def _source(value: str) -> str:
    if not _SOURCE.match(value):
        raise ValueError("may contain letters, digits, spaces and _ . -")
    return value


def _whole_decimal_to_int(value: object) -> object:
    # DynamoDB hands every number back as a Decimal, and JSON bodies are parsed with Decimal floats (a `5.0`):
    # a whole Decimal is a whole number. Text and true/false stay what they are, and are refused as such.
    if isinstance(value, Decimal) and value.is_finite() and value == value.to_integral_value():
        return int(value)
    return value


def _money_number(value: Decimal) -> int | float:
    # Money leaves as a JSON number, not a string. Whole amounts are exact ints. Others are floats: Money has
    # at most 2 decimals and 15 digits (below 10^13), which a double holds exactly enough that the shortest
    # repr of the float reads back as the same amount, to the cent.
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _json_numbers(value: Any) -> Any:
    # Free-form data (activity data, custom fields) read back from DynamoDB holds Decimals: numbers again,
    # as the client sent them (a money change in an activity is as exact as _money_number says).
    if isinstance(value, Decimal) and value.is_finite():
        return _money_number(value)
    if isinstance(value, list):
        return [_json_numbers(item) for item in value]
    if isinstance(value, dict):
        return {key: _json_numbers(item) for key, item in value.items()}
    return value


def _storable_value(value: Any) -> Any:
    """One custom field's value as DynamoDB can store it: numbers in its range, bounded nesting."""
    pending: list[tuple[Any, int]] = [(value, 0)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, dict | list):
            if depth >= MAX_CUSTOM_FIELD_DEPTH:
                raise ValueError(f"must not nest lists and objects more than {MAX_CUSTOM_FIELD_DEPTH} deep")
            pending.extend(
                (child, depth + 1) for child in (item.values() if isinstance(item, dict) else item)
            )
        elif isinstance(item, int | float | Decimal) and not isinstance(item, bool):
            problem = number_problem(item)
            if problem is not None:
                raise ValueError(f"{problem} (DynamoDB's limit), not {item}")
    return value


def _storable_moment(value: datetime) -> datetime:
    """In UTC (a time without a zone is taken as UTC), and within the years a stored timestamp can hold."""
    try:
        moment = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:  # 9999-12-31T23:00:00-05:00 is in the year 10000, UTC
        moment = None
    if moment is None or not FIRST_YEAR <= moment.year <= LAST_YEAR:
        raise ValueError(f"must be a time between the years {FIRST_YEAR} and {LAST_YEAR}")
    return moment


def _storable_day(value: date) -> date:
    if not FIRST_YEAR <= value.year <= LAST_YEAR:
        raise ValueError(f"must be a day between the years {FIRST_YEAR} and {LAST_YEAR}")
    return value


def _custom_fields(value: dict[str, Any]) -> dict[str, Any]:
    try:
        encoded = json.dumps(value, default=str, allow_nan=False)
    except ValueError:
        raise ValueError("must not contain NaN or infinite numbers") from None
    if len(encoded.encode()) > CUSTOM_FIELDS_MAX_BYTES:
        raise ValueError(f"must be at most {CUSTOM_FIELDS_MAX_BYTES // 1024} KB as JSON")
    for key in value:
        if not key or len(key) > 100 or _CONTROL_CHARACTERS.search(key):
            raise ValueError("keys must be 1-100 characters without control characters")
    return value


PersonName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100), AfterValidator(_single_line)
]
Text100 = PersonName
Text255 = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=255), AfterValidator(_single_line)
]
# The OpenAPI document says "format: email" (internationalised addresses are accepted as well).
EMAIL_FORMAT = Field(json_schema_extra={"format": "email"})
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=3, max_length=255),
    AfterValidator(_email),
    EMAIL_FORMAT,
]
Phone = Annotated[str, StringConstraints(strip_whitespace=True, max_length=50), AfterValidator(_phone)]
Source = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=50),
    AfterValidator(_source),
]
LongText = Annotated[str, StringConstraints(max_length=10_000), AfterValidator(_multi_line)]
# A whole number in a JSON body: "5" or true is refused (422), not read as 5 or 1. Forms send only text, so
# the public capture channels keep the lax `int` fields; query strings have their own models.
StrictInteger = Annotated[int, Strict(), BeforeValidator(_whole_decimal_to_int)]
EmployeeCount = Annotated[int, Field(ge=0, le=100_000_000)]
StrictEmployeeCount = Annotated[StrictInteger, Field(ge=0, le=100_000_000)]
# Below 10^13 with cents: see _money_number.
Money = Annotated[Decimal, Field(ge=0, max_digits=15, decimal_places=2, allow_inf_nan=False)]
# Money in API answers: a JSON number (the Decimal stays a Decimal in Python and in DynamoDB).
MoneyAmount = Annotated[Decimal, PlainSerializer(_money_number, return_type=int | float, when_used="json")]
# Free-form data in API answers, its Decimals as JSON numbers.
JsonData = Annotated[dict[str, Any], PlainSerializer(_json_numbers, when_used="json")]
# Per key, so a refusal names `custom_fields.<key>`.
CustomFields = Annotated[
    dict[str, Annotated[Any, AfterValidator(_storable_value)]], AfterValidator(_custom_fields)
]
# Every date-time a request may send: in UTC, and within the years storage can hold (422 otherwise).
Timestamp = Annotated[datetime, AfterValidator(_storable_moment)]
AwareTimestamp = Annotated[AwareDatetime, AfterValidator(_storable_moment)]
Day = Annotated[date, AfterValidator(_storable_day)]

# Optional fields treat a blank string (what an HTML form sends for an empty input) as absent.
_BLANK_IS_ABSENT = BeforeValidator(_blank_to_none)
OptionalPhone = Annotated[Phone | None, _BLANK_IS_ABSENT]
OptionalText100 = Annotated[Text100 | None, _BLANK_IS_ABSENT]
OptionalText255 = Annotated[Text255 | None, _BLANK_IS_ABSENT]
OptionalEmployeeCount = Annotated[EmployeeCount | None, _BLANK_IS_ABSENT]
OptionalMoney = Annotated[Money | None, _BLANK_IS_ABSENT]
OptionalSource = Annotated[Source | None, _BLANK_IS_ABSENT]
