"""A fold's pass over a big file: only the rows it names are parsed; the rest are copied.

A fold touches a handful of rows out of a million. :func:`run_fast_pass` splits the file
into records by counting quotes (a record ends on a line where its quotes balance),
reads the address cell of an unquoted record without the CSV parser, and copies every
record whose address is not one the fold names as the exact bytes it read. Records it
cannot read that way (quotes, a non-ASCII or IDNA address) go through the full reader
and validator, so the result is the one :func:`~.mutations.run_pass` gives, faster.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from typing import IO, Final

from newsletter.audience.subscribers.csvio import Header, read_records
from newsletter.audience.subscribers.mutations import Edit, Mutation
from newsletter.audience.subscribers.rows import RowValidator, SubscriberRow
from newsletter.errors import SubscriberFileError

#: an address whose key is simply its lowercased text (no quotes, IDNA or Unicode)
_SIMPLE: Final = re.compile(
    rb"[A-Za-z0-9_+\-]+(?:\.[A-Za-z0-9_+\-]+)*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+"
)


def _records(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(first line, exact bytes)`` of each record after the header."""
    line = 2
    pending: list[bytes] = []
    quotes = 0
    start = line
    for data in fh:
        if not pending:
            start = line
        pending.append(data)
        quotes += data.count(b'"')
        line += 1
        if quotes % 2 == 0:
            yield start, b"".join(pending)
            pending, quotes = [], 0
    if pending:
        yield start, b"".join(pending)


def run_fast_pass(
    mutation: Mutation,
    fh: IO[bytes],
    keys: frozenset[str],
    now: str,
    out: IO[bytes] | None,
    display: str,
) -> bool:
    """Like :func:`~.mutations.run_pass` for a mutation that only touches rows of ``keys``
    (and appends rows): True if anything changed. ``fh`` is at the start of the file."""
    first = fh.readline()
    header, _ = read_records(io.BytesIO(first), display)
    if header is None:
        header = Header.default()
    validator = RowValidator(display, header)
    column = header.index["email"]
    delimiter = header.delimiter.encode()
    mutation.begin(header, now)
    write = out.write if out is not None else None
    open_line = False

    def emit(data: bytes) -> None:
        nonlocal open_line
        if write is None or not data:
            return
        if open_line:
            write(header.newline.encode())
        write(data)
        open_line = not data.endswith((b"\n", b"\r"))

    rendered = header.render()  # (freezes the header: columns are declared by now)
    emit(rendered.encode("utf-8") if header.changed else first)
    changed = False
    for line, raw in _records(fh):
        if b'"' not in raw:
            parts = raw.rstrip(b"\r\n").split(delimiter)
            cell = parts[column].strip() if column < len(parts) else b""
            simple = _SIMPLE.fullmatch(cell) is not None and b"xn--" not in cell.lower()
            if simple and cell.decode("ascii").lower() not in keys:
                emit(raw)  # not named by the fold: the exact bytes
                continue
        row = _parse(validator, first, line, raw, display)
        if row is None:
            emit(raw)
            continue
        edit = mutation.row(row, header)
        if edit is Edit.KEEP:
            emit(raw)
        elif edit is Edit.DELETE:
            changed = True
        else:
            emit(header.format(edit).encode("utf-8"))
            changed = True
    for cells in mutation.end(header):
        emit(header.format(cells).encode("utf-8"))
        changed = True
    return changed


def _parse(
    validator: RowValidator, first: bytes, line: int, raw: bytes, display: str
) -> SubscriberRow | None:
    """One record through the full reader and validator (None: not UTF-8 or unreadable)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:  # the header line first, so the dialect is the file's
        _header, records = read_records(io.BytesIO(first + raw), display)
        record = next(records, None)
    except SubscriberFileError:
        return None
    if record is None:
        return None
    return validator.row(line, text, record[2])
