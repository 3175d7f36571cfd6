"""CSV records read from a byte stream, each with the byte offset just after it: what lets an import
checkpoint where the next chunk starts and read on from there (S3 GetObject with a Range), never holding
more than one record in memory.

A record ends at a line end outside quotes (RFC 4180: a quote inside a quoted field is doubled, so the
record is complete when its count of `"` is even). Lines may end in CRLF or LF.
"""

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

MAX_RECORD_BYTES = 256 * 1024


@dataclass(frozen=True)
class Record:
    cells: list[str] | None  # None: the bytes are not one readable CSV record (see `problem`)
    end_offset: int  # the byte after this record, from the start of the file
    problem: str | None = None


def _lines(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Lines with their line ends, from arbitrary chunks."""
    pending = b""
    for chunk in chunks:
        pending += chunk
        start = 0
        while True:
            end = pending.find(b"\n", start)
            if end < 0:
                break
            yield pending[start : end + 1]
            start = end + 1
        pending = pending[start:]
        if len(pending) > MAX_RECORD_BYTES:  # a "line" this long: yield it, the record is refused
            yield pending
            pending = b""
    if pending:
        yield pending


def records(chunks: Iterable[bytes], start_offset: int = 0) -> Iterator[Record]:
    """The records in `chunks` (the file's bytes from `start_offset` on). Blank lines are skipped (their
    bytes still counted)."""
    offset = start_offset
    buffer = b""
    quotes = 0
    for line in _lines(chunks):
        buffer += line
        quotes += line.count(b'"')
        if quotes % 2 and len(buffer) <= MAX_RECORD_BYTES and line.endswith(b"\n"):
            continue  # a quoted field goes on over the line end
        offset += len(buffer)
        raw, buffer, quotes = buffer, b"", 0
        if not raw.strip(b"\r\n"):
            continue
        yield _parse(raw, offset)


def _parse(raw: bytes, end_offset: int) -> Record:
    if len(raw) > MAX_RECORD_BYTES:
        return Record(None, end_offset, f"row: longer than {MAX_RECORD_BYTES // 1024} KB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return Record(None, end_offset, "row: not valid UTF-8 text")
    if end_offset == len(raw):  # the file's first record may start with a byte-order mark
        text = text.removeprefix("\ufeff")
    try:
        rows = list(csv.reader([text.rstrip("\r\n")], strict=True))
    except csv.Error as exc:
        return Record(None, end_offset, f"row: not valid CSV ({exc})")
    return Record(rows[0] if rows else [], end_offset)
