"""The export's CSV, as plain Python: a fixed column order, one row per lead, safe to open in a spreadsheet.

- UTF-8 with a byte-order mark (`HEADER` starts with it), so Excel reads accents and non-Latin names right;
  rows end with CRLF (RFC 4180) and every field is quoted only when it must be.
- The columns are `COLUMNS`, in that order, whatever the lead holds; an empty cell is a missing value.
  Custom fields are one column of compact JSON (keys sorted), dates ISO-8601 UTC, booleans `true`/`false`.
- Formula injection: a text value starting with `=`, `+`, `-`, `@`, a tab or a carriage return is written
  with a leading `'`, so a spreadsheet shows it as text instead of running it (OWASP's advice). Numbers this
  module formats itself (score, employee count, revenue) are never user text and stay numbers.

`encode_rows` turns leads into bytes a page at a time: nothing here holds more than the page it is given.
"""

import csv
import io
import json
from collections.abc import Callable, Iterable
from datetime import datetime
from decimal import Decimal
from typing import Any

from crm.leads.model import Lead
from crm.platform import clock

BOM = "\ufeff"
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _text(value: str | None) -> str:
    if value is None:
        return ""
    return "'" + value if value.startswith(FORMULA_STARTS) else value


def _moment(value: datetime | None) -> str:
    return clock.isoformat(value) if value is not None else ""


def _flag(value: bool | None) -> str:
    return "" if value is None else ("true" if value else "false")


def _number(value: int | Decimal | None) -> str:
    return "" if value is None else str(value)


def _custom(fields: dict[str, Any]) -> str:
    if not fields:
        return ""
    return _text(json.dumps(fields, ensure_ascii=False, sort_keys=True, separators=(",", ":"), default=str))


def _consent(lead: Lead) -> str:
    return _flag(lead.marketing_consent.given) if lead.marketing_consent is not None else ""


# (header, how a lead gives the cell), in the file's order; docs/api.md lists them (a test keeps both equal).
_COLUMNS: tuple[tuple[str, Callable[[Lead], str]], ...] = (
    ("id", lambda lead: lead.id),
    ("first_name", lambda lead: _text(lead.first_name)),
    ("last_name", lambda lead: _text(lead.last_name)),
    ("email", lambda lead: _text(lead.email)),
    ("phone", lambda lead: _text(lead.phone)),
    ("company", lambda lead: _text(lead.company)),
    ("title", lambda lead: _text(lead.title)),
    ("industry", lambda lead: _text(lead.industry)),
    ("employee_count", lambda lead: _number(lead.employee_count)),
    ("annual_revenue", lambda lead: _number(lead.annual_revenue)),
    ("lead_source", lambda lead: _text(lead.lead_source)),
    ("status", lambda lead: lead.lead_status.value),
    ("score", lambda lead: _number(lead.score)),
    ("grade", lambda lead: _text(lead.grade)),
    ("qualified", lambda lead: _flag(lead.qualified)),
    ("owner_id", lambda lead: _text(lead.assigned_to)),
    ("team", lambda lead: _text(lead.team)),
    ("converted", lambda lead: _flag(lead.converted)),
    ("contact_id", lambda lead: _text(lead.contact_id)),
    ("deal_id", lambda lead: _text(lead.deal_id)),
    ("do_not_email", lambda lead: _flag(lead.do_not_email)),
    ("marketing_consent", _consent),
    ("created_at", lambda lead: _moment(lead.created_at)),
    ("updated_at", lambda lead: _moment(lead.updated_at)),
    ("custom_fields", lambda lead: _custom(lead.custom_fields)),
)
COLUMNS: tuple[str, ...] = tuple(name for name, _ in _COLUMNS)


def _encode(rows: Iterable[Iterable[str]]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerows(rows)
    return buffer.getvalue().encode("utf-8")


HEADER: bytes = BOM.encode("utf-8") + _encode([COLUMNS])


def row(lead: Lead) -> list[str]:
    return [cell(lead) for _, cell in _COLUMNS]


def encode_rows(leads: Iterable[Lead]) -> bytes:
    """The CSV lines of these leads (no header), UTF-8."""
    return _encode(row(lead) for lead in leads)
