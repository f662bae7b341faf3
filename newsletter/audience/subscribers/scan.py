"""Reading a big file fast for the index: every row's entry, or the rows of a few addresses.

Both read the file in blocks of whole records (a block ends where the quotes seen so
far balance, as :mod:`.fastpass` splits records), so memory stays flat.

* :func:`scan_entries` gives the index entry of every record. A plain record (no
  quotes, enough cells, an address :func:`~.addresses.normalize_address` takes on its
  fast path, a known status, dates that parse) is read with ``str.split``; anything
  else goes through :class:`~.rows.RowValidator`, so an entry is exactly the one the
  full reader gives. A file the full reader refuses (not UTF-8, broken quoting) raises
  :class:`NotPlain`: the caller reads it the slow way, which names the line.
* :func:`find_rows` finds the first row of each of a few addresses without parsing the
  rest: a block that does not contain an address's local part is skipped whole.
"""

from __future__ import annotations

import csv
import io
import os
import threading
from collections.abc import Collection, Iterator
from typing import IO, TYPE_CHECKING, Final

from newsletter.audience.subscribers.addresses import (
    STATUSES,
    AddressError,
    is_iso_date,
    normalize_address,
)
from newsletter.audience.subscribers.csvio import Header, read_records
from newsletter.audience.subscribers.index import pack, signature_text
from newsletter.audience.subscribers.ledger import Change, RowState
from newsletter.audience.subscribers.lockedfile import FileSignature, file_signature
from newsletter.audience.subscribers.rows import DATE_FIELDS, RowValidator, SubscriberRow
from newsletter.errors import SubscriberFileError

if TYPE_CHECKING:
    from newsletter.audience.subscribers.index import RowIndex
    from newsletter.audience.subscribers.store import SubscriberStore

BLOCK: Final = 1 << 20
#: An index entry: key, line, and the row's state packed in one text (see :func:`pack`).
Entry = tuple[str, int, str]
_STATUSES: Final = frozenset(STATUSES)


class NotPlain(Exception):
    """The file holds something only the full reader reports well (bad UTF-8 or quoting)."""


def blocks(fh: IO[bytes]) -> Iterator[tuple[int, bytes]]:
    """``(first line, bytes)`` of blocks of whole records after the header line."""
    line = 2
    odd = False
    while True:
        block = fh.read(BLOCK)
        if not block:
            return
        if not block.endswith(b"\n"):
            block += fh.readline()
        odd ^= bool(block.count(b'"') & 1)
        while odd:  # a quoted cell runs on: the block ends where it closes
            more = fh.readline()
            if not more:
                break
            block += more
            odd ^= bool(more.count(b'"') & 1)
        yield line, block
        line += block.count(b"\n")


def records(start: int, text: str) -> Iterator[tuple[int, str]]:
    """``(first line, text)`` of each record of a block (quoted line breaks kept inside)."""
    line = start
    pending: list[str] = []
    quotes = 0
    first = line
    for part in text.split("\n"):
        if not pending:
            first = line
        pending.append(part)
        quotes += part.count('"')
        line += 1
        if quotes % 2 == 0:
            yield first, "\n".join(pending)
            pending, quotes = [], 0
    if pending:
        yield first, "\n".join(pending)


class _Reader:
    """The columns an entry needs, and the fallback for records that are not plain."""

    def __init__(self, header: Header, display: str) -> None:
        self.header = header
        self.validator = RowValidator(display, header)  # refuses a header without email/status
        index = header.index
        self.email = index["email"]
        self.status = index["status"]
        self.updated = index.get("updated_at", -1)
        self.dates = [index[f] for f in DATE_FIELDS if f in index]
        self.language = index.get("language", -1)
        self.width = max([self.email, self.status, self.language, *self.dates]) + 1
        self.delimiter = header.delimiter
        self.valid_dates: set[str] = set()

    def cells(self, raw: str) -> list[str]:
        try:
            return next(csv.reader(io.StringIO(raw), delimiter=self.delimiter, strict=True))
        except (csv.Error, StopIteration):
            raise NotPlain from None

    def plain(self, cells: list[str], line: int) -> Entry | None:
        """The entry of a plain record (None: not plain; the validator decides)."""
        if len(cells) < self.width:
            return None
        try:
            email = normalize_address(cells[self.email])
        except AddressError:
            return None
        status = cells[self.status].strip().lower()
        if status not in _STATUSES:
            return None
        valid = self.valid_dates
        for i in self.dates:
            value = cells[i].strip()
            if value and value not in valid:
                if not is_iso_date(value):
                    return None
                if len(valid) > 10_000:
                    valid.clear()
                valid.add(value)
        key = email.lower()
        language = cells[self.language].strip().lower() if self.language >= 0 else ""
        updated = cells[self.updated].strip() if self.updated >= 0 else ""
        return (key, line, f"{status}\t{updated}\t{'' if key == email else email}\t{language}")

    def entry(self, line: int, raw: str, cells: list[str]) -> Entry | None:
        found = self.plain(cells, line)
        if found is not None:
            return found
        row = self.validator.row(line, raw + "\n", cells)
        return entry_of(row)


def entry_of(row: SubscriberRow) -> Entry | None:
    """The index entry of a validated row (None for a row without a valid address)."""
    if row.key is None:
        return None
    sub = row.subscriber
    if sub is None:  # a row with problems: listed, never sent to
        return (row.key, row.line, pack(RowState(row.key, "problem")))
    return (
        sub.key,
        row.line,
        pack(RowState(sub.email, sub.status, sub.updated_at, row.line, sub.language)),
    )


def header_of(fh: IO[bytes], display: str) -> Header | None:
    """The header, read from ``fh``'s first line (``fh`` is left after it)."""
    try:
        header, _records = read_records(io.BytesIO(fh.readline()), display)
    except SubscriberFileError:
        raise NotPlain from None
    return header


def scan_entries(fh: IO[bytes], display: str) -> Iterator[Entry]:
    """Every record's entry, in file order (``fh`` at the start of a UTF-8 file)."""
    header = header_of(fh, display)
    if header is None:
        return
    reader = _Reader(header, display)
    delimiter = header.delimiter
    plain = reader.plain
    for start, block in blocks(fh):
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            raise NotPlain from None
        text = text.replace("\r\n", "\n")
        if text.endswith("\n"):
            text = text[:-1]
        if '"' not in text and "\r" not in text:
            for line, raw in enumerate(text.split("\n"), start):
                cells = raw.split(delimiter)
                found = plain(cells, line)
                if found is None:
                    found = reader.entry(line, raw, cells)
                if found is not None:
                    yield found
            continue
        for line, raw in records(start, text):
            if "\r" in raw:
                raise NotPlain  # a lone carriage return: the full reader says where
            cells = reader.cells(raw) if '"' in raw else raw.split(delimiter)
            found = reader.entry(line, raw, cells)
            if found is not None:
                yield found


def _needle(key: str) -> str:
    """The text a row of ``key`` contains whatever its spelling: its local part and ``@``
    (a domain may be spelled in IDNA; the case of the local part may differ)."""
    local = key.rpartition("@")[0]
    return f"{local}@" if '"' not in local and "\\" not in local else "@"


def find_rows(fh: IO[bytes], display: str, keys: Collection[str]) -> dict[str, SubscriberRow]:
    """The first row of each of ``keys`` in the file (absent: no row).

    Only the records of blocks that contain one of the keys' local parts (in any case)
    are parsed, and of those only the records that contain it.
    """
    header = header_of(fh, display)
    if header is None or not keys:
        return {}
    reader = _Reader(header, display)
    needles = {_needle(k) for k in keys}
    ascii_only = all(n.isascii() for n in needles)
    ascii_needles = [n.encode("ascii") for n in needles] if ascii_only else []
    wanted = set(keys)
    found: dict[str, SubscriberRow] = {}
    for start, block in blocks(fh):
        if ascii_only:  # bytes.lower() changes ASCII letters only, as the needles are
            low_bytes = block.lower()
            if not any(n in low_bytes for n in ascii_needles):
                continue
        elif not any(n in block.decode("utf-8", errors="replace").lower() for n in needles):
            continue
        text = block.decode("utf-8", errors="replace").replace("\r\n", "\n")
        if text.endswith("\n"):
            text = text[:-1]
        for line, raw in records(start, text):
            if not any(n in raw.lower() for n in needles):
                continue
            try:
                cells = reader.cells(raw)
            except NotPlain:
                continue  # unreadable here: the rebuild reports it
            row = reader.validator.row(line, raw + "\n", cells)
            if row.key in wanted and row.key not in found:
                found[row.key] = row
                if len(found) == len(wanted):
                    return found
    return found


def rebuild_index(index: RowIndex, store: SubscriberStore, seq: int) -> None:
    """Rebuild ``index`` from the store's file (fast; the full reader for what it must
    name); a suppressed row deleted by hand since the last rebuild leaves a hold."""
    vanished = _rebuild(index, store, seq)
    live = store.live
    if not vanished or live is None:
        return
    ledger = live.ledger
    now = store.clock()
    with ledger.transaction() as conn:
        for key, email, status in vanished:
            if ledger.hold(key) is None:
                note = f"{status}, then deleted by hand: kept as a suppression"
                change = Change(
                    key, email, "suppress", status, status, note, source="admin", at=now
                )
                ledger.insert(conn, change)


def _rebuild(index: RowIndex, store: SubscriberStore, seq: int) -> list[tuple[str, str, str]]:
    path = str(store.path.resolve())
    if store.encoding == "utf-8":
        try:
            fh = store.path.open("rb")
        except FileNotFoundError:
            fh = None
        if fh is not None:
            with fh:
                signature = signature_text(FileSignature.of(os.fstat(fh.fileno())))
                try:
                    entries = scan_entries(fh, store.display)
                    return index.rebuild(entries, signature=signature, seq=seq, path=path)
                except NotPlain:
                    pass  # read again below: the full reader names the line and the problem
    with store.open_rows() as (_header, rows, read):
        entries = (e for row in rows if (e := entry_of(row)) is not None)
        return index.rebuild(entries, signature=signature_text(read), seq=seq, path=path)


def state_of(row: SubscriberRow | None) -> RowState | None:
    """What the index would say of ``row``."""
    if row is None or row.key is None:
        return None
    sub = row.subscriber
    if sub is None:
        return RowState(row.key, "problem", "", row.line, "")
    return RowState(sub.email, sub.status, sub.updated_at, row.line, sub.language)


class UnindexedRows:
    """Look-ups of addresses the index does not hold while it is stale (a file saved by
    hand that the background rebuild has not indexed yet): the file itself is searched.

    Concurrent look-ups share one search (whoever waits while one runs is searched for by
    the next), and answers are kept until the file changes again.
    """

    def __init__(self, store: SubscriberStore) -> None:
        self.store = store
        self._mutex = threading.Lock()
        self._searching = threading.Lock()
        self._wanted: set[str] = set()
        self._found: dict[str, RowState | None] = {}
        self._signature = ""
        self.searches = 0  # (for tests and the bench)

    def lookup(self, key: str, indexed: str) -> RowState | None:
        """The row of ``key`` in the file now, when the index (of ``indexed``) is stale."""
        current = signature_text(file_signature(self.store.path))
        if current == indexed:
            return None  # the index is of this file: the address is not on the list
        with self._mutex:
            if self._signature == current and key in self._found:
                return self._found[key]
            self._wanted.add(key)
        with self._searching:
            with self._mutex:
                if self._signature == current and key in self._found:
                    return self._found[key]
                keys = self._wanted | {key}
                self._wanted = set()
            signature, rows = self._search(keys)
            with self._mutex:
                if signature != self._signature or len(self._found) > 10_000:
                    self._found, self._signature = {}, signature
                for k in keys:
                    self._found[k] = state_of(rows.get(k))
                return self._found[key]

    def _search(self, keys: set[str]) -> tuple[str, dict[str, SubscriberRow]]:
        self.searches += 1
        store = self.store
        if store.encoding == "utf-8":
            try:
                with store.path.open("rb") as fh:
                    signature = signature_text(FileSignature.of(os.fstat(fh.fileno())))
                    return signature, find_rows(fh, store.display, keys)
            except FileNotFoundError:
                return "missing", {}
            except NotPlain:
                pass  # an unreadable header: the full reader below says what is wrong
        found: dict[str, SubscriberRow] = {}
        with store.open_rows() as (_header, rows, read):
            for row in rows:
                if row.key in keys and row.key not in found:
                    found[row.key] = row
            return signature_text(read), found
