"""Folding the ledger into the CSV: one atomic rewrite (and one backup) per batch.

:class:`FoldMutation` is a :class:`~.mutations.Mutation`, so a fold is applied to a
fresh read of the file under its lock like every other write: rows it does not touch
are written back byte for byte and an edit made by hand since the last fold is kept.
For each address it applies, in order:

1. the ledger's changes not folded yet;
2. the changes already folded within :data:`RECHECK_SECONDS`, again, when the row is
   back to the exact text it had before one of those folds (or gone, for a row a fold
   added): a spreadsheet saved from a copy opened before that fold reverted it. A row
   edited by hand since has other text and keeps the hand's edit (except step 3);
3. the address's hold: an unsubscribe, bounce or complaint stays, whatever the file
   says, until the reader confirms again.

What steps 2 and 3 put back is listed in :attr:`FoldReport.reapplied` ("the fold says so").
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Final

from newsletter.audience.subscribers.csvio import Header, neutralize_cell
from newsletter.audience.subscribers.ledger import (
    Change,
    Hold,
    RowState,
    apply_change,
    enforce_hold,
)
from newsletter.audience.subscribers.mutations import Edit, Mutation, next_line
from newsletter.audience.subscribers.rows import SubscriberRow

#: How long after it was folded a change is checked again (a spreadsheet kept open
#: that long and then saved would have reverted it).
RECHECK_SECONDS: Final = 24 * 3600


def row_stamp(raw: str) -> int:
    """A 63-bit digest of a row's exact text: tells a hand-edited row from the one a fold
    left."""
    digest = hashlib.blake2b(raw.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass(slots=True)
class FoldReport:
    """What one fold did."""

    applied: int = 0  # changes written into the file for the first time
    folded: int = 0  # ledger changes this fold covered (applied or found already true)
    wrote: bool = False  # whether the file was rewritten (one backup)
    reapplied: list[str] = field(default_factory=list)  # "file:line: email: what", said aloud
    conflicts: list[str] = field(default_factory=list)  # machine changes a hand edit overrode

    def summary(self, display: str) -> str:
        parts = [f"{self.folded} ledger change(s) folded into {display}"]
        if self.reapplied:
            parts.append(f"{len(self.reapplied)} re-applied after a hand edit undid them")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} left as edited by hand")
        return "; ".join(parts)


def _append_note(old: str, note: str) -> str:
    return neutralize_cell(f"{old}; {note}" if old else note)


def _new_row_values(change: Change) -> dict[str, str]:
    return {
        "email": change.email,
        "name": neutralize_cell(change.name),
        "status": change.status if change.op == "add" else "pending",
        "source": neutralize_cell(change.source),
        "subscribed_at": change.at,
        "confirmed_at": "",
        "updated_at": change.at,
        "note": neutralize_cell(change.note),
        **({"language": change.language} if change.language else {}),
    }


@dataclass(slots=True)
class _Replay:
    """The changes that took effect on one row, and the state they lead to."""

    state: RowState | None
    fresh: list[Change] = field(default_factory=list)
    again: list[Change] = field(default_factory=list)
    ignored: list[Change] = field(default_factory=list)


class FoldMutation(Mutation):
    """Apply ledger changes and holds to the rows they name; append new pending rows.

    ``history`` maps an address to the stamps its row had around earlier folds (the
    last one is what the last fold wrote; ``0`` stands for "no row").
    """

    def __init__(
        self,
        display: str,
        changes: dict[str, list[Change]],
        holds: dict[str, Hold],
        history: dict[str, list[int]],
        folded_seq: int,
    ) -> None:
        self.display = display
        self.changes = changes
        self.holds = holds
        self.history = history
        self.folded_seq = folded_seq  # changes at or below it were folded before
        self.report = FoldReport()
        self.touched: dict[str, tuple[RowState, int, int]] = {}  # key -> (state, pre, post)
        self.seen: set[str] = set()
        self.line = 2

    def begin(self, header: Header, now: str) -> None:
        header.ensure("status", "updated_at", "note")
        ops = {c.op for cs in self.changes.values() for c in cs}
        if ops & {"activate", "request", "add"}:
            header.ensure("name", "source", "subscribed_at", "confirmed_at")
        if any(c.language for cs in self.changes.values() for c in cs):
            header.ensure("language")
        self.report = FoldReport()
        self.touched = {}
        self.seen = set()
        self.line = 2

    def _replay(self, key: str, state: RowState | None, stamp: int) -> _Replay:
        changes = self.changes.get(key, [])
        earlier = self.history.get(key, [])
        reverted = stamp in earlier[:-1]
        result = _Replay(state)
        for change in changes:
            fresh = change.seq > self.folded_seq
            if not (fresh or reverted):
                continue
            new = apply_change(change, result.state)
            if new is result.state:
                if fresh:
                    result.ignored.append(change)
                continue
            (result.fresh if fresh else result.again).append(change)
            result.state = new
        return result

    def _note(self, changes: list[Change]) -> str:
        """The note a row gets for the changes that took effect on it."""
        notes = []
        for c in sorted(changes, key=lambda c: c.seq):
            if c.op == "add":
                continue  # the row's own note
            text = c.note or (f"asked again ({c.source})" if c.op == "request" else c.op)
            notes.append(text if c.seq > self.folded_seq else f"{text} (again)")
        return "; ".join(notes)

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        self.line = next_line(row)
        key = row.key
        if key is None or key in self.seen:
            return Edit.KEEP
        self.seen.add(key)
        hold = self.holds.get(key)
        if key not in self.changes and hold is None:
            return Edit.KEEP
        sub = row.subscriber
        where = f"{self.display}:{row.line}"
        if sub is None:
            if any(c.seq > self.folded_seq for c in self.changes.get(key, [])):
                self.report.conflicts.append(
                    f"{where}: {key}: the row has problems; its ledger change waits for the fix"
                )
            return Edit.KEEP
        current = RowState(sub.email, sub.status, sub.updated_at, row.line, sub.language)
        stamp = row_stamp(row.raw)
        replay = self._replay(key, current, stamp)
        for change in replay.ignored:
            if change.op == "activate" and current.status != "active":
                self.report.conflicts.append(
                    f"{where}: {sub.email}: confirmation not applied: the row is "
                    f"{current.status} now"
                )
        state: RowState = replay.state or current  # no change removes a row
        held = enforce_hold(hold, state) or state
        hold_note = ""
        if held is not state and hold is not None:
            self.report.reapplied.append(
                f"{where}: {sub.email}: {held.status} again (the file said {state.status})"
            )
            hold_note = f"{held.status} again: {hold.note}" if hold.note else f"{held.status} again"
            state = held
        if state.status == current.status:
            if any(c.op == "add" and c.seq > self.folded_seq for c in self.changes.get(key, [])):
                self.touched[key] = (current, 0, stamp)  # an imported row: remember its text
            return Edit.KEEP
        cells = list(row.cells)
        header.set(cells, "status", state.status)
        header.set(cells, "updated_at", state.updated_at)
        if state.status == "active":
            header.set(cells, "confirmed_at", state.updated_at)
        note = "; ".join(n for n in (self._note(replay.fresh + replay.again), hold_note) if n)
        if note:
            header.set(cells, "note", _append_note(header.value(cells, "note").strip(), note))
        self.report.applied += len(replay.fresh)
        self.report.reapplied += [
            f"{where}: {sub.email}: {c.status if c.op != 'activate' else 'active'} again "
            f"({c.note or c.op})"
            for c in replay.again
        ]
        self.touched[key] = (state, stamp, row_stamp(header.format(cells)))
        return cells

    def end(self, header: Header) -> list[list[str]]:
        rows: list[list[str]] = []
        for key in self.changes:
            if key in self.seen:
                continue
            replay = self._replay(key, None, 0)
            state = replay.state
            if state is None or not (replay.fresh or replay.again):
                continue
            ordered = sorted(replay.fresh + replay.again, key=lambda c: c.seq)
            values = _new_row_values(ordered[0])
            state = enforce_hold(self.holds.get(key), state) or state
            values["status"] = state.status
            values["updated_at"] = state.updated_at
            if state.status == "active":
                values["confirmed_at"] = state.updated_at
            extra = self._note(ordered[1:])
            if extra:
                values["note"] = _append_note(values["note"], extra)
            cells = header.new_row(values)
            rows.append(cells)
            self.report.applied += len(replay.fresh)
            if replay.again:
                self.report.reapplied.append(
                    f"{self.display}: {state.email}: {state.status} row added again "
                    "(a save without it had dropped it)"
                )
            self.touched[key] = (
                RowState(state.email, state.status, state.updated_at, self.line, state.language),
                0,
                row_stamp(header.format(cells)),
            )
            self.line += 1
        return rows
