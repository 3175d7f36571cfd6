"""Money is answered as JSON numbers, to the cent, through the real handlers: a lead's `annual_revenue`
(create, read, edit, its change history, the list) and what conversion made (the deal's `amount`, the
company's `annual_revenue`). Stored items keep DynamoDB numbers."""

import json
from typing import Any

import pytest

from tests.integration.test_lifecycle_handlers import (
    MANAGER,
    REP,
    assign,
    convert,
    get_lead,
    get_record,
    new_lead,
    patch_lead,
    qualify,
)
from tests.support import event, response_json


@pytest.fixture(autouse=True)
def cursor_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CURSOR_SIGNING_KEY", "handler-test-key")


def exact_number(value: Any) -> Any:
    """The value, checked to have arrived as a JSON number (int or float), never as a string."""
    assert isinstance(value, int | float) and not isinstance(value, bool), repr(value)
    return value


def test_a_leads_revenue_is_a_number_in_every_answer(invoke: Any, moto_stack: dict[str, Any]) -> None:
    created = new_lead(invoke, annual_revenue=1234.56, employee_count=40)
    assert exact_number(created["annual_revenue"]) == 1234.56

    edited = patch_lead(invoke, created["id"], {"annual_revenue": 50_000_000}, headers={"if-match": '"1"'})
    assert edited["statusCode"] == 200, edited["body"]
    assert '"annual_revenue":50000000,' in edited["body"]
    assert exact_number(response_json(edited)["annual_revenue"]) == 50_000_000

    read = get_lead(invoke, created["id"])
    assert exact_number(read["annual_revenue"]) == 50_000_000
    (change,) = [a for a in read["activities"] if a["type"] == "lead_updated"]
    assert change["data"]["changes"]["annual_revenue"] == {"old": 1234.56, "new": 50_000_000}
    assert exact_number(change["data"]["changes"]["annual_revenue"]["old"]) == 1234.56

    sample = event("list_leads.json", queryStringParameters={"status": "new"}, rawQueryString="status=new")
    listed = invoke("LeadQueriesFunction", sample)
    assert listed["statusCode"] == 200, listed["body"]
    (item,) = [lead for lead in response_json(listed)["items"] if lead["id"] == created["id"]]
    assert exact_number(item["annual_revenue"]) == 50_000_000

    stored = moto_stack["dynamodb"].get_item(
        TableName=moto_stack["table"], Key={"PK": {"S": f"LEAD#{created['id']}"}, "SK": {"S": "LEAD"}}
    )
    assert stored["Item"]["annual_revenue"] == {"N": "50000000"}


def test_a_deals_amount_and_a_companys_revenue_are_numbers_with_their_cents(
    invoke: Any, moto_stack: dict[str, Any]
) -> None:
    lead = new_lead(invoke, company="Difference Engines", annual_revenue="9999999999999.99")
    assign(moto_stack, lead["id"], REP)
    assert qualify(invoke, lead["id"], user=REP)["statusCode"] == 200

    converted = convert(invoke, lead["id"], {"amount": 1234.5}, user=MANAGER)

    assert converted["statusCode"] == 201, converted["body"]
    result = response_json(converted)
    assert exact_number(result["lead"]["annual_revenue"]) == 9999999999999.99
    deal = get_record(invoke, "deals", result["deal_id"], MANAGER)
    company = get_record(invoke, "companies", result["company_id"], MANAGER)
    assert exact_number(deal["amount"]) == 1234.5
    assert exact_number(company["annual_revenue"]) == 9999999999999.99
    assert json.dumps(company["annual_revenue"]) == "9999999999999.99"


def test_more_than_fifteen_digits_of_money_is_refused_naming_the_field(
    invoke: Any, moto_stack: dict[str, Any]
) -> None:
    response = invoke(
        "LeadsApiFunction",
        event(
            "create_lead.json",
            body={
                "first_name": "A",
                "last_name": "B",
                "email": "ab@example.com",
                "annual_revenue": 10_000_000_000_000,
            },
        ),
    )

    assert response["statusCode"] == 422, response["body"]
    assert [problem["field"] for problem in response_json(response)["fields"]] == ["annual_revenue"]
