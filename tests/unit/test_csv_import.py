"""CSV import rules with no AWS: records and their byte offsets read from arbitrary chunks (a checkpoint can
resume at any record), header names matched case- and space-insensitively, and a bad row's reason naming
the field."""

import pytest
from crm.imports.csv_stream import records
from crm.imports.model import HeaderMap, RowRejected, import_id_from_key, normalised_header

FILE = (
    b'\xef\xbb\xbfFirst Name,E-Mail,Notes\r\nAda,ada@x.example,"two\nlines, and ""quotes"""\r\n\r\n'
    b"Bob,bob@x.example,plain\n\xff\xfe,bad,bytes\nLast,last@x.example,no line end"
)


@pytest.mark.parametrize("size", [1, 2, 7, 64, 10_000])
def test_records_and_offsets_do_not_depend_on_how_the_bytes_arrive(size: int) -> None:
    chunks = [FILE[i : i + size] for i in range(0, len(FILE), size)]
    found = list(records(chunks))
    assert [r.cells for r in found] == [
        ["First Name", "E-Mail", "Notes"],
        ["Ada", "ada@x.example", 'two\nlines, and "quotes"'],
        ["Bob", "bob@x.example", "plain"],
        None,
        ["Last", "last@x.example", "no line end"],
    ]
    assert found[3].problem == "row: not valid UTF-8 text"
    assert found[-1].end_offset == len(FILE)


def test_reading_on_from_a_records_end_offset_gives_the_records_after_it() -> None:
    whole = list(records([FILE]))
    for index, record in enumerate(whole):
        rest = list(records([FILE[record.end_offset :]], record.end_offset))
        assert [r.cells for r in rest] == [r.cells for r in whole[index + 1 :]]
        assert [r.end_offset for r in rest] == [r.end_offset for r in whole[index + 1 :]]


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("First Name", "first_name"),
        ("FIRST_NAME", "firstname"),
        (" e-mail ", "email"),
        ("LeadSource", "leadsource"),
    ],
)
def test_header_names_are_matched_whatever_their_case_and_spacing(header: str, field: str) -> None:
    assert normalised_header(header) == field.replace("_", "")


def test_unknown_columns_are_custom_fields_and_a_second_email_column_is_one_too() -> None:
    header = HeaderMap(["First Name", "last name", "EMAIL", "Email", "Plan", ""])
    submission = header.submission(
        ["Ada", "Lovelace", "Ada@Example.com", "other@example.com", "gold", "x"], "fair", "user:u1"
    )
    assert (submission.first_name, submission.email, submission.lead_source) == (
        "Ada",
        "ada@example.com",
        "fair",
    )
    assert submission.custom_fields == {"Email": "other@example.com", "Plan": "gold", "column_6": "x"}
    assert header.missing == []
    assert HeaderMap(["name", "mail"]).missing == ["first_name", "last_name", "email"]


@pytest.mark.parametrize(
    ("cells", "field"),
    [
        (["Ada", "Lovelace", "nope"], "email:"),
        (["", "Lovelace", "a@x.example"], "first_name: is required"),
        (["Ada", "Lovelace", "a@x.example", "many"], "employee_count:"),
    ],
)
def test_a_bad_row_is_rejected_naming_the_field(cells: list[str], field: str) -> None:
    header = HeaderMap(["first_name", "last_name", "email", "Employee Count"])
    with pytest.raises(RowRejected) as rejected:
        header.submission(cells, "csv_import", "user:u1")
    assert rejected.value.reason.startswith(field)


def test_only_upload_keys_name_an_import() -> None:
    assert (
        import_id_from_key("uploads/0b6d2f3e-5a41-4c0e-9e43-3f6f4a1c2b77.csv")
        == "0b6d2f3e-5a41-4c0e-9e43-3f6f4a1c2b77"
    )
    assert import_id_from_key("rejects/0b6d2f3e-5a41-4c0e-9e43-3f6f4a1c2b77.csv") is None
    assert import_id_from_key("uploads/../x.csv") is None
