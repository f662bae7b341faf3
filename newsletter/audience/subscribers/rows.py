"""Validated rows: a record of the CSV becomes a Subscriber or a list of problems."""

from __future__ import annotations

from array import array
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Final, NamedTuple

from newsletter.audience.subscribers.addresses import (
    STATUS_LIST,
    STATUSES,
    AddressError,
    is_iso_date,
    normalize_address,
)
from newsletter.audience.subscribers.csvio import (
    FIELDS,
    Header,
    file_error,
    problem,
)
from newsletter.errors import Problem

DATE_FIELDS: Final = ("subscribed_at", "confirmed_at", "updated_at")


@dataclass(frozen=True, slots=True)
class Subscriber:
    """One valid, non-duplicate row of the file (any status)."""

    email: str
    name: str
    status: str
    source: str
    line: int
    subscribed_at: str = ""
    confirmed_at: str = ""
    updated_at: str = ""
    note: str = ""
    language: str = ""  # the optional `language` column (en, ja): mails and pages in it

    @property
    def key(self) -> str:
        """The lowercased address: the identity used for dedup and the send journal."""
        return self.email.lower()

    @property
    def is_active(self) -> bool:
        return self.status == "active"


class SubscriberRow(NamedTuple):
    """One record of the file as read: its text, its cells and what is wrong with it.

    A named tuple rather than a dataclass: one is made per row of a million-row file.
    """

    line: int  # first physical line of the record (1 is the header)
    raw: str  # the exact text, line ending included
    cells: tuple[str, ...]
    subscriber: Subscriber | None  # None when blank or when it has problems
    problems: tuple[Problem, ...]
    key: str | None  # set when the address itself is valid, even if the row is not

    @property
    def blank(self) -> bool:
        return not "".join(self.cells).strip()


def _blake2b() -> Callable[..., Any]:
    """hashlib's BLAKE2b, imported when the compact table is made: hashlib loads OpenSSL
    (3 ms of a small command, which keeps its keys in a dict)."""
    from hashlib import blake2b

    return blake2b


def _unset(*_args: object, **_kwargs: object) -> Any:
    raise AssertionError("the table hashes only once it is made")


class SeenKeys:
    """Address keys seen so far, each with the line it was first seen on.

    The one structure that grows with the file, so a long list's is kept compact: an
    open-addressing table of 128-bit BLAKE2b digests and line numbers in flat arrays
    (20 bytes a slot, under 40 bytes a row) instead of a dict of strings (~130 bytes a
    row). Two distinct addresses share a digest with odds of about 2^-127: never.
    Up to ``small`` keys a plain dict holds them (a tenth of the time a key); past that
    they move into the table. The dict's strings leave holes in the heap when it goes,
    so a big file (:func:`dict_keys_for`) uses the table from its first row: the memory
    of a million-row file stays flat.
    """

    _LOAD = 0.6
    #: keys held in a plain dict before the compact table takes over (~4 MB of them)
    SMALL = 1 << 15

    def __init__(self, capacity: int = 1 << 12, *, small: int = SMALL) -> None:
        self._alloc(capacity)
        self._used = 0  # the table's filled slots
        self._small = small
        self._dict: dict[str, int] | None = {} if small > 0 else None
        self._hash: Callable[..., Any] = _blake2b() if self._dict is None else _unset

    def _alloc(self, capacity: int) -> None:
        self._mask = capacity - 1
        self._hi = array("Q", bytes(8 * capacity))  # 0 marks an empty slot
        self._lo = array("Q", bytes(8 * capacity))
        self._line = array("I", bytes(4 * capacity))

    def first_line(self, key: str, line: int) -> int:
        """The line ``key`` was first seen on, recording ``line`` if it is new."""
        known = self._dict
        if known is not None:
            first = known.setdefault(key, line)
            if len(known) > self._small:
                self._to_table()
            return first
        digest = self._hash(key.encode("utf-8"), digest_size=16).digest()
        hi = int.from_bytes(digest[:8], "little") | 1
        lo = int.from_bytes(digest[8:], "little")
        return self._probe(hi, lo, line)

    def _to_table(self) -> None:
        """The dict's keys into the compact table (once, when the list proves long)."""
        self._hash = _blake2b()
        known, self._dict = self._dict or {}, None
        while (self._mask + 1) * self._LOAD < len(known):
            self._alloc((self._mask + 1) * 2)
        for key, line in known.items():
            self.first_line(key, line)

    def _probe(self, hi: int, lo: int, line: int) -> int:
        his, los, mask = self._hi, self._lo, self._mask
        i = lo & mask
        while True:
            found = his[i]
            if found == 0:
                his[i], los[i], self._line[i] = hi, lo, line
                self._used += 1
                if self._used > self._LOAD * (mask + 1):
                    self._grow()
                return line
            if found == hi and los[i] == lo:
                return self._line[i]
            i = (i + 1) & mask

    def _grow(self) -> None:
        old = zip(self._hi, self._lo, self._line, strict=True)
        self._alloc((self._mask + 1) * 2)
        self._used = 0
        for hi, lo, line in old:
            if hi:
                self._probe(hi, lo, line)

    @property
    def count(self) -> int:
        """How many distinct keys were seen."""
        return self._used if self._dict is None else len(self._dict)

    @property
    def compact(self) -> bool:
        """Whether the keys are in the compact table (the list outgrew the dict)."""
        return self._dict is None

    @property
    def nbytes(self) -> int:
        """The table's bytes (its keys' share, while a dict holds them, is not counted)."""
        return (self._mask + 1) * 20


#: a file up to this size (~180,000 rows of a plain list) keeps its keys in a dict...
DICT_FILE_BYTES = 8 << 20
#: ... of up to this many keys (~30 MB, less than a million-row file's table needs)
DICT_FILE_KEYS = 1 << 18


def dict_keys_for(file_bytes: int | None) -> int:
    """How many keys :class:`SeenKeys` may hold in a dict for a file of that size."""
    if file_bytes is None:  # not a file (a stream): a few, whatever its length
        return SeenKeys.SMALL
    return DICT_FILE_KEYS if file_bytes <= DICT_FILE_BYTES else 0


class RowValidator:
    """Turns records into :class:`SubscriberRow`, remembering keys to find duplicates."""

    def __init__(self, display: str, header: Header) -> None:
        self.display = display
        self.header = header
        self.seen = SeenKeys(small=dict_keys_for(header.file_bytes))
        self.columns = [header.index.get(name, -1) for name in FIELDS]
        # optional, so not in FIELDS: a file gains the column when a language is known
        self.language_column = header.index.get("language", -1)
        # A row with every known column (the usual row) takes its cells in one C call:
        # a missing column's index is -1, which picks the "" put after the row's cells.
        self._width = max(self.columns) + 1
        self._pick = itemgetter(*self.columns)
        missing = [name for name in ("email", "status") if name not in header.index]
        if missing:
            raise file_error(
                display,
                1,
                f"no {' or '.join(missing)} column in the header "
                f"(found: {', '.join(header.cells) or 'nothing'})",
                f"the first row names the columns: {','.join(FIELDS)}",
            )

    def row(self, line: int, raw: str, cells: list[str]) -> SubscriberRow:
        cells_t = tuple(cells)
        if not "".join(cells).strip():
            return SubscriberRow(line, raw, cells_t, None, (), None)
        n = len(cells)
        # one cell per known field ("" where the column is missing or the row is short)
        values: Iterable[str]
        if n >= self._width:
            values = map(str.strip, self._pick([*cells, ""]))
        else:
            values = (cells[i].strip() if 0 <= i < n else "" for i in self.columns)
        typed, name, status_typed, source, subscribed, confirmed, updated, note = values
        problems: list[Problem] | None = None
        key: str | None = None
        email = ""
        if not typed:
            problems = [problem(self.display, line, "email", "no address")]
        else:
            try:
                email = normalize_address(typed)
            except AddressError as exc:
                problems = [problem(self.display, line, "email", exc.message)]
            else:
                key = email.lower()
                first = self.seen.first_line(key, line)
                if first != line:
                    message = f"{typed} is a duplicate of line {first}"
                    problems = [problem(self.display, line, "email", message)]
        status = status_typed.lower()
        if status not in STATUSES:
            what = f"unknown status {status_typed!r}" if status_typed else "no status"
            problems = problems or []
            problems.append(
                problem(self.display, line, "status", f"{what} (expected one of {STATUS_LIST})")
            )
        dates = (subscribed, confirmed, updated)
        for field_name, value in zip(DATE_FIELDS, dates, strict=True) if any(dates) else ():
            if value and not is_iso_date(value):
                problems = problems or []
                message = f"not an ISO 8601 date {value!r} (e.g. 2024-05-01T09:30:00Z)"
                problems.append(problem(self.display, line, field_name, message))
        if problems:
            return SubscriberRow(line, raw, cells_t, None, tuple(problems), key)
        i = self.language_column
        language = cells[i].strip().lower() if 0 <= i < n else ""
        subscriber = Subscriber(
            email, name, status, source, line, subscribed, confirmed, updated, note, language
        )
        return SubscriberRow(line, raw, cells_t, subscriber, (), key)
