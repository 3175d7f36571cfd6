from decimal import Decimal

import pytest
from crm.api.models.leads import ChatCaptureRequest, CreateLeadRequest, LeadFields
from crm.platform.errors import InvalidInput
from crm.platform.http import model_from

VALID = {"first_name": "Ada", "last_name": "Lovelace", "email": "  Ada.Lovelace@Example.COM "}


def problems(model: type, data: dict) -> dict[str, str]:
    with pytest.raises(InvalidInput) as raised:
        model_from(model, data)
    return {problem.field: problem.message for problem in raised.value.problems}


def test_email_is_trimmed_and_lower_cased_because_it_is_the_identity() -> None:
    lead = model_from(CreateLeadRequest, VALID)
    assert lead.email == "ada.lovelace@example.com"


@pytest.mark.parametrize("missing", ["first_name", "last_name", "email"])
def test_required_fields_are_named_when_missing(missing: str) -> None:
    data = {k: v for k, v in VALID.items() if k != missing}
    assert problems(CreateLeadRequest, data) == {missing: "field required"}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("email", "not-an-email"),
        ("email", "a" * 250 + "@example.com"),
        ("first_name", "x" * 101),
        ("company", "c" * 256),
        ("title", "t" * 101),
        ("industry", "i" * 101),
        ("lead_source", "s" * 51),
        ("employee_count", -1),
        ("employee_count", 12.5),
        ("annual_revenue", -5),
        ("annual_revenue", "NaN"),
        ("annual_revenue", float("inf")),
        ("first_name", "Ada\x00"),
        ("last_name", "Love\nlace"),
        ("phone", "call me maybe"),
        ("custom_fields", {"big": "x" * 17_000}),
        ("custom_fields", "not an object"),
    ],
)
def test_bad_values_are_refused_naming_the_field(field: str, value: object) -> None:
    found = problems(CreateLeadRequest, {**VALID, field: value})
    assert field in found, found


def nested(levels: int) -> object:
    value: object = "deep"
    for _ in range(levels):
        value = {"x": value}
    return value


# What DynamoDB cannot store (numbers outside its range or precision, nesting past its limit) used to be
# accepted here and fail at write time with a 500.
@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        Decimal("1e200"),
        Decimal("1e-200"),
        Decimal("1e126"),
        Decimal("1e-131"),
        10**40,
        [1, {"n": Decimal("1e200")}],
        nested(31),
        nested(11),
    ],
)
def test_a_custom_field_dynamodb_cannot_store_is_refused_naming_its_key(value: object) -> None:
    found = problems(CreateLeadRequest, {**VALID, "custom_fields": {"plan": "pro", "n": value}})

    assert list(found) == ["custom_fields.n"], found


LARGEST = Decimal("9.9999999999999999999999999999999999999e125")


@pytest.mark.parametrize("value", [0, Decimal("1e-130"), LARGEST, 10**37, nested(10)])
def test_a_custom_field_at_dynamodbs_limits_is_accepted(value: object) -> None:
    lead = model_from(CreateLeadRequest, {**VALID, "custom_fields": {"n": value}})

    assert lead.custom_fields == {"n": value}


def test_unknown_fields_are_refused_on_the_system_api() -> None:
    assert problems(CreateLeadRequest, {**VALID, "favourite_colour": "blue"}) == {
        "favourite_colour": "unknown field"
    }


def test_every_bad_field_is_reported_at_once() -> None:
    found = problems(CreateLeadRequest, {"email": "nope", "employee_count": -3})
    assert set(found) == {"first_name", "last_name", "email", "employee_count"}


def test_revenue_is_a_decimal_and_blank_optionals_are_absent() -> None:
    lead = model_from(LeadFields, {**VALID, "annual_revenue": "1500000.50", "phone": "", "company": "  "})
    assert lead.annual_revenue == Decimal("1500000.50")
    assert isinstance(lead.annual_revenue, Decimal)
    assert lead.phone is None and lead.company is None


def test_a_chat_transcript_may_be_plain_text_or_messages() -> None:
    as_text = model_from(ChatCaptureRequest, {**VALID, "transcript": "Hi\nI need a demo"})
    as_messages = model_from(
        ChatCaptureRequest, {**VALID, "transcript": [{"author": "visitor", "text": "Hi"}]}
    )
    assert as_text.transcript_messages() == [{"author": "transcript", "text": "Hi\nI need a demo"}]
    assert as_messages.transcript_messages() == [{"author": "visitor", "text": "Hi"}]


def test_an_oversized_transcript_is_refused() -> None:
    messages = [{"author": "visitor", "text": "x" * 9000} for _ in range(10)]
    assert "transcript" in problems(ChatCaptureRequest, {**VALID, "transcript": messages})
