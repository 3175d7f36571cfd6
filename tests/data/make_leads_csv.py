"""Writes tests/data/leads_1000.csv: 1,000 data rows, of which 20 repeat an earlier row's email (merged) and
10 break a field rule (rejected, one field each), so an import counts created 970, merged 20, rejected 10.

Deterministic (no randomness): `python tests/data/make_leads_csv.py` rewrites the same file. Emails are at
`@import-test.example`; a test may swap that domain for a fresh one so runs do not meet each other's leads.
"""

import csv
from pathlib import Path

TARGET = Path(__file__).with_name("leads_1000.csv")
DOMAIN = "import-test.example"
HEADER = [
    "First Name",
    "Last Name",
    "Email",
    "Phone",
    "Company",
    "Title",
    "Employee Count",
    "Annual Revenue",
    "Lead Source",
    "Marketing Consent",
    "Favourite Colour",
]
# Row number (1-based, after the header) -> (column, bad value); the reason names the column's field.
INVALID = {
    50: ("Email", "not-an-email"),
    150: ("Email", ""),
    250: ("First Name", ""),
    350: ("Last Name", ""),
    450: ("First Name", "x" * 101),
    550: ("Phone", "call me maybe"),
    650: ("Employee Count", "lots"),
    750: ("Annual Revenue", "-5"),
    850: ("Lead Source", "<script>"),
    950: ("Marketing Consent", "perhaps"),
}
# Row number -> the earlier row whose email it repeats (in another case, with a new phone and title).
REPEATS = {row: row - 36 for row in range(102, 1000, 45)}


def rows() -> list[list[str]]:
    out = []
    emails: dict[int, str] = {}
    for row in range(1, 1001):
        email = f"person{row:04d}@{DOMAIN}"
        values = {
            "First Name": f"Ada{row}",
            "Last Name": f"Lovelace{row}",
            "Email": email,
            "Phone": f"+44 20 7946 {row:04d}",
            "Company": f"Engines {row % 50}",
            "Title": "Engineer" if row % 3 else "",
            "Employee Count": str(10 + row % 500),
            "Annual Revenue": f"{1000 + row}.50",
            "Lead Source": "trade show" if row % 10 == 0 else "",
            "Marketing Consent": "yes" if row % 2 else "no",
            "Favourite Colour": ["red", "green", "blue"][row % 3],
        }
        if row in REPEATS:
            values["Email"] = emails[REPEATS[row]].upper()
            values["Title"] = "Head of Engines"
        if row in INVALID:
            column, bad = INVALID[row]
            values[column] = bad
        emails[row] = values["Email"]
        out.append([values[column] for column in HEADER])
    return out


def main() -> None:
    assert len(REPEATS) == 20 and not (set(REPEATS) | set(REPEATS.values())) & set(INVALID)
    assert not set(REPEATS) & set(REPEATS.values())
    with TARGET.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\r\n")
        writer.writerow(HEADER)
        writer.writerows(rows())


if __name__ == "__main__":
    main()
