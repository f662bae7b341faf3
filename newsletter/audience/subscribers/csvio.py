"""CSV text as spreadsheets write it: decoding, dialect, header aliases, raw records."""

from __future__ import annotations

import codecs
import csv
import io
import itertools
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import IO, Final

from newsletter.errors import Problem, SubscriberFileError

FIELDS: Final = (
    "email",
    "name",
    "status",
    "source",
    "subscribed_at",
    "confirmed_at",
    "updated_at",
    "note",
)
_ALIASES: Final[dict[str, tuple[str, ...]]] = {
    "email": ("email", "emailaddress", "mail", "emailaddr", "address"),
    "name": ("name", "fullname", "displayname"),
    "status": ("status", "state"),
    "source": ("source",),
    "subscribed_at": ("subscribedat", "subscribed", "subscribedon", "signedupat", "createdat"),
    "confirmed_at": ("confirmedat", "confirmed", "confirmedon"),
    "updated_at": ("updatedat", "updated", "lastupdated", "modifiedat"),
    "note": ("note", "notes", "comment", "comments"),
    # optional (not in FIELDS): the reader's language for mails and pages (en, ja)
    "language": ("language", "lang", "locale"),
}
_FIELD_BY_TOKEN: Final = {alias: name for name, aliases in _ALIASES.items() for alias in aliases}


def format_cell(value: str, delimiter: str = ",") -> str:
    """One CSV cell, quoted only when it must be (RFC 4180)."""
    if delimiter in value or any(ch in value for ch in '"\r\n'):
        return '"' + value.replace('"', '""') + '"'
    return value


def format_row(cells: Sequence[str], delimiter: str = ",", newline: str = "\n") -> str:
    """One CSV record, as the store writes it."""
    if len(cells) == 1 and cells[0] == "":
        return '""' + newline
    return delimiter.join(format_cell(c, delimiter) for c in cells) + newline


def neutralize_cell(value: str) -> str:
    """Guard a cell against spreadsheet formula injection (prefix a ``'``)."""
    if value and value[0] in "=+-@\t\r":
        return "'" + value
    return value


class Header:
    """The header row: which column holds which field, and the file's CSV dialect."""

    def __init__(
        self,
        cells: Sequence[str],
        *,
        raw: str | None = None,
        delimiter: str = ",",
        newline: str = "\n",
        bom: bool = False,
    ) -> None:
        self.cells = list(cells)
        self.delimiter = delimiter
        self.newline = newline
        self.bom = bom
        self._raw = raw
        self.frozen = False
        #: the size of the file it heads, when read from one (a hint for the readers)
        self.file_bytes: int | None = None
        self.index: dict[str, int] = {}
        for i, cell in enumerate(self.cells):
            name = _FIELD_BY_TOKEN.get(_header_token(cell))
            if name is not None and name not in self.index:
                self.index[name] = i

    @classmethod
    def default(cls) -> Header:
        return cls(FIELDS)

    @property
    def changed(self) -> bool:
        return self._raw is None

    def value(self, cells: Sequence[str], name: str) -> str:
        i = self.index.get(name)
        return cells[i] if i is not None and i < len(cells) else ""

    def ensure(self, *names: str) -> None:
        """Add a column for each field the file lacks (at the end of the header)."""
        order = {name: i for i, name in enumerate(FIELDS)}
        for name in sorted(names, key=lambda n: order.get(n, len(order))):
            if name not in self.index:
                if self.frozen:
                    raise RuntimeError(
                        f"column {name!r} must be declared before the header is written"
                    )
                self.index[name] = len(self.cells)
                self.cells.append(name)
                self._raw = None

    def set(self, cells: list[str], name: str, value: str) -> None:
        i = self.index[name]
        if i >= len(cells):
            cells.extend([""] * (i + 1 - len(cells)))
        cells[i] = value

    def new_row(self, values: Mapping[str, str]) -> list[str]:
        self.ensure(*values)
        cells = [""] * len(self.cells)
        for name, value in values.items():
            cells[self.index[name]] = value
        return cells

    def render(self) -> str:
        self.frozen = True
        text = (
            self._raw
            if self._raw is not None
            else format_row(self.cells, self.delimiter, self.newline)
        )
        return ("\ufeff" if self.bom else "") + text

    def format(self, cells: Sequence[str]) -> str:
        return format_row(cells, self.delimiter, self.newline)


def _header_token(cell: str) -> str:
    return re.sub(r"[\s_\-.:]+", "", cell.strip().lower())


def problem(display: str, line: int | None, fld: str, message: str) -> Problem:
    return Problem(display, line, fld, message)


def file_error(
    display: str, line: int | None, message: str, hint: str | None = None
) -> SubscriberFileError:
    return SubscriberFileError([problem(display, line, "", message)], hint=hint)


ENCODING_HINT: Final = (
    'save it from the spreadsheet as "CSV UTF-8", or import it into a new list: '
    "newsletter subscribers --file NEW.csv import FILE --encoding cp1252"
)


class BomFlag:
    __slots__ = ("seen",)

    def __init__(self) -> None:
        self.seen = False


def decode_lines(fh: IO[bytes], display: str, encoding: str, bom: BomFlag) -> Iterator[str]:
    for lineno, data in enumerate(fh, 1):
        if lineno == 1:
            if data.startswith(codecs.BOM_UTF8):
                data = data[len(codecs.BOM_UTF8) :]
                bom.seen = True
            elif data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                raise file_error(
                    display,
                    1,
                    'the file is UTF-16 (a spreadsheet\'s "Unicode text")',
                    'save it from the spreadsheet as "CSV UTF-8"',
                )
        try:
            yield data.decode(encoding)
        except UnicodeDecodeError as exc:
            column = len(data[: exc.start].decode(encoding, errors="replace")) + 1
            bad = data[exc.start]
            try:
                data.decode("cp1252")
                guess = "; it looks like a legacy Windows-1252 export"
            except UnicodeDecodeError:
                guess = ""
            raise file_error(
                display,
                lineno,
                f"not {_encoding_name(encoding)} text (byte 0x{bad:02x} at column {column}){guess}",
                ENCODING_HINT,
            ) from None


def _encoding_name(encoding: str) -> str:
    name = codecs.lookup(encoding).name
    return "UTF-8" if name == "utf-8" else name


def _sniff_delimiter(first_line: str) -> str:
    counts = {d: first_line.count(d) for d in (",", ";", "\t")}
    best = max(counts, key=lambda d: counts[d])
    return best if counts[best] > 0 else ","


def _size(fh: IO[bytes]) -> int | None:
    try:
        return os.fstat(fh.fileno()).st_size
    except (OSError, ValueError, AttributeError, io.UnsupportedOperation):
        return None


def read_records(
    fh: IO[bytes], display: str, *, encoding: str = "utf-8"
) -> tuple[Header | None, Iterator[tuple[int, str, list[str]]]]:
    """Split a CSV into its header and ``(line, raw text, cells)`` records, lazily.

    Raises :class:`~newsletter.errors.SubscriberFileError` (naming the line) for text
    that is not in ``encoding`` or quoting that cannot be parsed; the records before it
    have been yielded by then.
    """
    bom = BomFlag()
    lines = decode_lines(fh, display, encoding, bom)
    first = next(lines, None)
    if first is None:
        return None, iter(())
    delimiter = _sniff_delimiter(first)
    buffer: list[str] = []

    def feed() -> Iterator[str]:
        for text in itertools.chain([first], lines):
            buffer.append(text)
            yield text

    reader = csv.reader(feed(), delimiter=delimiter, strict=True)

    def take(start: int) -> tuple[int, str, list[str]] | None:
        try:
            cells = next(reader)
        except StopIteration:
            return None
        except csv.Error as exc:
            reason = str(exc)
            if "unexpected end of data" in reason:
                reason = "a quoted cell that starts here is never closed"
            raise file_error(display, start, f"unreadable CSV: {reason}") from None
        raw = "".join(buffer)
        buffer.clear()
        return start, raw, cells

    head = take(1)
    if head is None:  # pragma: no cover - a first line always makes a record
        return None, iter(())
    newline = "\r\n" if head[1].endswith("\r\n") else "\n"
    header = Header(head[2], raw=head[1], delimiter=delimiter, newline=newline, bom=bom.seen)
    header.file_bytes = _size(fh)

    def records() -> Iterator[tuple[int, str, list[str]]]:
        start = reader.line_num + 1
        while (record := take(start)) is not None:
            yield record
            start = reader.line_num + 1

    return header, records()
