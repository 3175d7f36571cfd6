"""The export's CSV (crm.exports.csv_rows): what a spreadsheet user gets when they open the file."""

import csv
import io
import json
import re
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest
from crm.exports.csv_rows import COLUMNS, HEADER, encode_rows
from crm.leads.model import Lead, LeadStatus, MarketingConsent

ROOT = Path(__file__).resolve().parents[2]
WHEN = datetime(2031, 3, 1, 9, 30, tzinfo=UTC)


def a_lead(**changes: object) -> Lead:
    values: dict[str, object] = {
        "id": "0b6f7e62-9d7e-4a44-9f2e-1c1a4b1f0c11",
        "first_name": "Ada",
        "last_name": "Lovelace",
        "email": "ada@example.com",
        "lead_source": "website_form",
        "created_at": WHEN,
        "updated_at": WHEN,
    }
    values.update(changes)
    return Lead.model_validate(values)


def read_back(data: bytes) -> list[dict[str, str]]:
    text = data.decode("utf-8-sig")  # what a spreadsheet does with the BOM
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_file_starts_with_a_bom_and_the_fixed_header() -> None:
    assert HEADER.startswith(b"\xef\xbb\xbf")
    assert b"\xef\xbb\xbf" + ",".join(COLUMNS).encode() + b"\r\n" == HEADER
    assert COLUMNS[:4] == ("id", "first_name", "last_name", "email")
    assert len(set(COLUMNS)) == len(COLUMNS)


def test_rows_follow_the_header_order_with_every_field() -> None:
    lead = a_lead(
        phone="020 7946 0000",
        company="Analytical Engines",
        title="Countess",
        industry="Computing",
        employee_count=12,
        annual_revenue=Decimal("1500000.50"),
        lead_status=LeadStatus.QUALIFIED,
        score=85,
        grade="A",
        qualified=True,
        assigned_to="rep-1",
        team="sales",
        marketing_consent=MarketingConsent(given=True, at=WHEN, channel="api", recorded_by="user:x"),
        custom_fields={"budget": 5000, "notes": "wants a demo"},
    )
    (row,) = read_back(HEADER + encode_rows([lead]))
    assert list(row) == list(COLUMNS)
    assert row["id"] == lead.id
    assert (row["employee_count"], row["annual_revenue"], row["score"]) == ("12", "1500000.50", "85")
    assert (row["status"], row["grade"], row["qualified"], row["converted"]) == (
        "qualified",
        "A",
        "true",
        "false",
    )
    assert (row["owner_id"], row["team"], row["marketing_consent"]) == ("rep-1", "sales", "true")
    assert row["created_at"] == "2031-03-01T09:30:00.000000Z"
    assert json.loads(row["custom_fields"]) == {"budget": 5000, "notes": "wants a demo"}


def test_missing_values_are_empty_cells() -> None:
    (row,) = read_back(HEADER + encode_rows([a_lead()]))
    for name in ("phone", "company", "grade", "owner_id", "team", "marketing_consent", "custom_fields"):
        assert row[name] == "", name


def test_formula_starts_are_written_as_text() -> None:
    lead = a_lead(
        first_name='=HYPERLINK("http://evil.example","x")',
        last_name="+1+1",
        company="-2+3",
        title="@SUM(A1:A9)",
        industry="\tTab",
        phone="+44 20 7946 0000",
        custom_fields={"x": "=1+1"},
    )
    (row,) = read_back(HEADER + encode_rows([lead]))
    assert row["first_name"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["last_name"] == "'+1+1"
    assert row["company"] == "'-2+3"
    assert row["title"] == "'@SUM(A1:A9)"
    assert row["industry"] == "'\tTab"
    assert row["phone"] == "'+44 20 7946 0000"
    # Numbers we format ourselves stay numbers; the JSON column starts with '{'.
    assert row["score"] == "0" and row["custom_fields"].startswith("{")
    # Nothing but the prefix is added: the rest of the value is kept byte for byte.
    assert row["first_name"][1:] == lead.first_name


def test_unicode_commas_quotes_and_newlines_survive_a_round_trip() -> None:
    lead = a_lead(
        first_name="Zoë",
        last_name='Ñúñez, "the" 2nd',
        company="株式会社テスト\nLine two",
        custom_fields={"city": "Zürich", "emoji": "🚀"},
    )
    data = HEADER + encode_rows([lead, a_lead(id="1b6f7e62-9d7e-4a44-9f2e-1c1a4b1f0c12")])
    rows = read_back(data)
    assert len(rows) == 2
    assert rows[0]["first_name"] == "Zoë"
    assert rows[0]["last_name"] == 'Ñúñez, "the" 2nd'
    assert rows[0]["company"] == "株式会社テスト\nLine two"
    assert json.loads(rows[0]["custom_fields"]) == {"city": "Zürich", "emoji": "🚀"}
    assert data.count(b"\xef\xbb\xbf") == 1  # one BOM, at the start only
    data.decode("utf-8")  # valid UTF-8 throughout


@pytest.mark.parametrize(
    ("page", "after"), [("docs/api.md", "## CSV exports"), ("README.md", "**CSV exports.**")]
)
def test_the_documented_column_order_is_the_files(page: str, after: str) -> None:
    text = (ROOT / page).read_text(encoding="utf-8")
    section = text.split(after, 1)[1]
    listed = re.search(r"columns, in this order: (.+?)\.\n", section, re.S | re.I)
    assert listed is not None
    documented = [" ".join(name.split()).strip("` ") for name in listed.group(1).split(",")]
    assert tuple(documented) == COLUMNS
