"""Changes to the list, each applied to a fresh read of the file under the lock."""

from __future__ import annotations

import enum
from collections.abc import Iterable, Mapping
from typing import IO, Final

from newsletter.audience.subscribers.csvio import (
    Header,
)
from newsletter.audience.subscribers.rows import Subscriber, SubscriberRow
from newsletter.errors import NewsletterError


class AlreadySubscribedError(NewsletterError):
    """:meth:`SubscriberStore.add` found the address already in the file."""

    def __init__(self, message: str, *, line: int, status: str) -> None:
        super().__init__(message)
        self.line = line
        self.status = status


def next_line(row: SubscriberRow) -> int:
    """The line on which the record after ``row`` starts."""
    breaks = row.raw.count("\n")
    return row.line + (breaks if row.raw.endswith("\n") else breaks + 1)


class Edit(enum.Enum):
    """What a :class:`Mutation` does with a row, besides returning its new cells."""

    KEEP = "keep"
    DELETE = "delete"


class Mutation:
    """A change to the file, applied to a fresh read under the lock.

    :meth:`SubscriberStore.apply` calls :meth:`begin` once per attempt (so a mutation
    that must be re-applied to a file changed on disk starts clean), :meth:`row` for
    every record in order, then :meth:`end` for rows to append. ``row`` returns
    ``Edit.KEEP`` (written back byte for byte), ``Edit.DELETE``, or the new cells.
    Columns a mutation may set must be declared with ``header.ensure`` in ``begin``.
    """

    def begin(self, header: Header, now: str) -> None:
        """Reset per-attempt state; declare needed columns."""

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        return Edit.KEEP

    def end(self, header: Header) -> list[list[str]]:
        return []


class AddMutation(Mutation):
    def __init__(self, display: str, values: dict[str, str], key: str, exist_ok: bool) -> None:
        self.display = display
        self.values = values
        self.key = key
        self.exist_ok = exist_ok
        self.line = 0
        self.existing: Subscriber | None = None

    def begin(self, header: Header, now: str) -> None:
        self.values.update(subscribed_at=now, updated_at=now)
        self.values["confirmed_at"] = now if self.values["status"] == "active" else ""
        header.ensure(*self.values)
        self.line = 2
        self.existing = None
        self.found = False

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        if row.key == self.key and not self.found:
            self.found = True
            if not self.exist_ok:
                status = header.value(row.cells, "status").strip() or "no status"
                typed = header.value(row.cells, "email").strip()
                raise AlreadySubscribedError(
                    f"{self.display}:{row.line}: {typed} is already on the list (status: {status})",
                    line=row.line,
                    status=status,
                )
            self.existing = row.subscriber
        self.line = next_line(row)
        return Edit.KEEP

    def end(self, header: Header) -> list[list[str]]:
        if self.found:
            return []
        return [header.new_row(self.values)]


class StatusMutation(Mutation):
    def __init__(self, changes: Mapping[str, tuple[str, str | None]]) -> None:
        self.changes = changes  # key -> (status, note)
        self.found: set[str] = set()

    def begin(self, header: Header, now: str) -> None:
        self.now = now
        self.found = set()
        header.ensure("updated_at", "confirmed_at")
        if any(note for _, note in self.changes.values()):
            header.ensure("note")

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        sub = row.subscriber
        if sub is None or sub.key not in self.changes or sub.key in self.found:
            return Edit.KEEP
        self.found.add(sub.key)
        status, note = self.changes[sub.key]
        if status == sub.status and not note:
            return Edit.KEEP
        cells = list(row.cells)
        header.set(cells, "status", status)
        header.set(cells, "updated_at", self.now)
        if sub.status == "pending" and status == "active":
            header.set(cells, "confirmed_at", self.now)
        if note:
            header.set(cells, "note", f"{sub.note}; {note}" if sub.note else note)
        return cells


class PurgeMutation(Mutation):
    def __init__(self, key: str) -> None:
        self.key = key
        self.lines: list[int] = []

    def begin(self, header: Header, now: str) -> None:
        self.lines = []

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        typed = header.value(row.cells, "email").strip().lower()
        if row.key == self.key or (typed and typed == self.key):
            self.lines.append(row.line)
            return Edit.DELETE
        return Edit.KEEP


#: How strong a suppression is: one never replaces a stronger one.
SUPPRESSION_RANK: Final[Mapping[str, int]] = {"unsubscribed": 1, "bounced": 2, "complained": 3}


class SuppressionMutation(Mutation):
    """Suppressions ``{key: (status, note)}`` written straight to the file (no ledger).

    Never weakens a status; ``only_open`` changes only pending or active rows.
    ``before`` maps each key found to the status its row held.
    """

    def __init__(self, changes: Mapping[str, tuple[str, str]], only_open: bool) -> None:
        self.changes = changes
        self.only_open = only_open
        self.before: dict[str, str] = {}

    def begin(self, header: Header, now: str) -> None:
        header.ensure("status", "updated_at", "note")
        self.now = now
        self.before = {}

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        sub = row.subscriber
        if sub is None or sub.key not in self.changes or sub.key in self.before:
            return Edit.KEEP
        self.before[sub.key] = sub.status
        status, note = self.changes[sub.key]
        if self.only_open and sub.status not in ("pending", "active"):
            return Edit.KEEP
        if SUPPRESSION_RANK.get(sub.status, 0) >= SUPPRESSION_RANK[status]:
            return Edit.KEEP
        cells = list(row.cells)
        header.set(cells, "status", status)
        header.set(cells, "updated_at", self.now)
        if note:
            header.set(cells, "note", f"{sub.note}; {note}" if sub.note else note)
        return cells


def run_pass(
    mutation: Mutation,
    header: Header,
    rows: Iterable[SubscriberRow],
    now: str,
    out: IO[str] | None,
) -> bool:
    """Apply ``mutation`` to ``rows`` and write the result to ``out``; True if it changed."""
    mutation.begin(header, now)
    sink = _Sink(out, header.newline)
    sink.write(header.render())
    changed = False
    for row in rows:
        edit = mutation.row(row, header)
        if edit is Edit.KEEP:
            sink.write(row.raw)
        elif edit is Edit.DELETE:
            changed = True
        else:
            sink.write(header.format(edit))
            changed = True
    for cells in mutation.end(header):
        sink.write(header.format(cells))
        changed = True
    return changed


class _Sink:
    """Writes chunks, adding a line break where a last line lacked one."""

    __slots__ = ("newline", "open_line", "out")

    def __init__(self, out: IO[str] | None, newline: str) -> None:
        self.out = out
        self.newline = newline
        self.open_line = False

    def write(self, text: str) -> None:
        if self.out is None or not text:
            return
        if self.open_line:
            self.out.write(self.newline)
        self.out.write(text)
        self.open_line = not text.endswith(("\n", "\r"))
