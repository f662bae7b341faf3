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

An import's rows come back whole (:mod:`.importledger`): a row it added that a save
dropped gets every column the import wrote, tags and extra columns included, and a row
it updated that a save turned back to its old text gets the import's columns again.

A row a machine added that is missing from the file was either dropped by a stale save
or deleted by hand. The file tells which when it can: a save made from a copy opened
after the fold that wrote the row still holds that fold's other rows (and any later
fold's) as written, so the row was deleted on purpose and stays out. With no such row
left, the save predates the fold: the row is put back, except a pending signup, which
only comes back when another row written with it or since is missing or turned back too
(a stale save) or when the reader confirms.

What steps 2 and 3 put back is listed in :attr:`FoldReport.reapplied` ("the fold says
so"); a row left out is listed in :attr:`FoldReport.conflicts`.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import TYPE_CHECKING, Final

from newsletter.audience.subscribers.csvio import Header, neutralize_cell
from newsletter.audience.subscribers.foldreport import FoldReport
from newsletter.audience.subscribers.importledger import Imported, row_stamp
from newsletter.audience.subscribers.ledger import (
    Change,
    Hold,
    RowState,
    apply_change,
    enforce_hold,
)
from newsletter.audience.subscribers.mutations import Edit, Mutation, next_line
from newsletter.audience.subscribers.rows import SubscriberRow

if TYPE_CHECKING:
    from newsletter.audience.subscribers.live import LiveList

#: How long after it was folded a change is checked again (a spreadsheet kept open
#: that long and then saved would have reverted it).
RECHECK_SECONDS: Final = 24 * 3600
#: How much earlier than a request a confirmation token may say it was made (clocks).
CLOCK_SLACK: Final = 2


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
        imported: dict[int, Imported] | None = None,
        fold_times: dict[str, float] | None = None,
    ) -> None:
        self.display = display
        self.changes = changes
        self.holds = holds
        self.history = history
        self.folded_seq = folded_seq  # changes at or below it were folded before
        self.imported = imported or {}  # change seq -> what the import wrote
        self.fold_times = fold_times or {}  # key -> when a fold last wrote its row
        self.report = FoldReport()
        self.touched: dict[str, tuple[RowState, int, int]] = {}  # key -> (state, pre, post)
        self.seen: set[str] = set()
        self.line = 2
        self.survived = 0.0  # the last fold some row of which is in the file as it wrote it
        self.late: list[float] = []  # fold times of rows turned back by a save

    def begin(self, header: Header, now: str) -> None:
        header.ensure("status", "updated_at", "note")
        ops = {c.op for cs in self.changes.values() for c in cs}
        if ops & {"activate", "request", "add"}:
            header.ensure("name", "source", "subscribed_at", "confirmed_at")
        if any(c.language for cs in self.changes.values() for c in cs):
            header.ensure("language")
        if self.imported:  # a save from before the import lacks its columns
            from newsletter.audience.subscribers.importer import declare_column  # (start-up)

            for record in self.imported.values():
                for name in record.values:
                    declare_column(header, name)
        self.report = FoldReport()
        self.touched = {}
        self.seen = set()
        self.line = 2
        self.survived = 0.0
        self.late = []

    def _replay(self, key: str, state: RowState | None, stamp: int) -> _Replay:
        changes = self.changes.get(key, [])
        earlier = self.history.get(key, [])
        reverted = stamp in earlier[:-1]
        result = _Replay(state)
        for change in changes:
            fresh = change.seq > self.folded_seq
            if not (fresh or reverted):
                continue
            if change.op == "add" and change.before and result.state is None:
                continue  # an import's update of a row that is gone: deleted by hand
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
        stamp = row_stamp(row.raw)
        earlier = self.history.get(key, [])
        if earlier and stamp == earlier[-1]:
            self.survived = max(self.survived, self.fold_times.get(key, 0.0))
        elif stamp in earlier[:-1]:
            self.late.append(self.fold_times.get(key, 0.0))
        cells = list(row.cells)
        again = self._imports_again(key, stamp, header, cells)
        if again:  # the import's columns first: later changes apply on top of them
            sub = replace(
                sub,
                status=header.value(cells, "status").strip().lower() or sub.status,
                updated_at=header.value(cells, "updated_at").strip(),
            )
        current = RowState(sub.email, sub.status, sub.updated_at, row.line, sub.language)
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
        if state.status == current.status and not again:
            fresh = [
                c for c in self.changes.get(key, []) if c.op == "add" and c.seq > self.folded_seq
            ]
            if fresh:  # an imported row: remember its text (and its text before the import)
                pre = max(
                    (self.imported[c.seq].pre for c in fresh if c.seq in self.imported), default=0
                )
                self.touched[key] = (current, pre, stamp)
            return Edit.KEEP
        if again:
            self.report.reapplied.append(
                f"{where}: {sub.email}: the import's columns again (a save had turned the row back)"
            )
        if state.status != current.status:
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

    def _imports_again(self, key: str, stamp: int, header: Header, cells: list[str]) -> bool:
        """Put an import's columns back into a row a save turned back to its text before
        the import (True if it did)."""
        earlier = self.history.get(key, [])
        if stamp not in earlier[:-1]:
            return False
        done = False
        for change in self.changes.get(key, []):
            record = self.imported.get(change.seq)
            if change.op != "add" or record is None or change.seq > self.folded_seq:
                continue
            if record.pre == 0 or record.pre not in earlier:
                continue  # a row the import added (its text is what it wrote) or not this row
            for name, value in record.values.items():
                header.set(cells, name, value)
            done = True
        return done

    def _left_out(self, key: str, replay: _Replay, state: RowState, stale: bool) -> str | None:
        """Why a missing row a machine added is not put back (None: it is)."""
        if replay.fresh:
            return None  # not in the file yet
        written = self.fold_times.get(key)
        if written is not None and self.survived >= written:
            return "deleted by hand (rows written with it or since are still in the file); left out"
        first = min(replay.again, key=lambda c: c.seq)
        if first.op == "request" and state.status == "pending" and not stale:
            return "a pending signup deleted by hand; left out until the reader confirms"
        return None

    def end(self, header: Header) -> list[list[str]]:
        rows: list[list[str]] = []
        missing: dict[str, _Replay] = {}
        for key in self.changes:
            if key in self.seen:
                continue
            replay = self._replay(key, None, 0)
            if replay.state is not None and (replay.fresh or replay.again):
                missing[key] = replay
                if not replay.fresh:
                    self.late.append(self.fold_times.get(key, 0.0))
        # another row written after the last one still in place is missing or turned back
        late = sum(1 for at in self.late if at > self.survived)
        for key, replay in missing.items():
            state = replay.state
            assert state is not None
            why = self._left_out(key, replay, state, stale=late >= 2)
            if why is not None:
                self.report.conflicts.append(f"{self.display}: {state.email}: {why}")
                continue
            ordered = sorted(replay.fresh + replay.again, key=lambda c: c.seq)
            record = self.imported.get(ordered[0].seq) if ordered[0].op == "add" else None
            values = dict(record.values) if record is not None else _new_row_values(ordered[0])
            state = enforce_hold(self.holds.get(key), state) or state
            if record is None or state.status != values.get("status"):
                values["status"] = state.status
                values["updated_at"] = state.updated_at
                if state.status == "active":
                    values["confirmed_at"] = state.updated_at
            extra = self._note(ordered[1:])
            if extra:
                values["note"] = _append_note(values.get("note", ""), extra)
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


def restore_signup(live: LiveList, key: str, minted: float | None, note: str, at: str) -> bool:
    """A pending signup whose row was deleted by hand (a fold leaves it out): the reader's
    own confirmation, by a token minted (Unix time) for the request, adds it back active:
    the request again and its confirmation, in one transaction. True if recorded. An
    address whose suppression the ledger holds is not added back this way."""
    ledger = live.ledger
    if minted is None or ledger.hold(key) is not None:
        return False
    asked = [c for c in ledger.changes_after(0, key) if c.op == "request" and not c.before]
    if not asked:
        return False
    request = asked[-1]
    try:
        made = datetime.fromisoformat(request.at.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return False
    if minted < made - CLOCK_SLACK:
        return False  # a token from before this request
    with ledger.transaction() as conn:
        if live.state(key) is not None or ledger.hold(key) is not None:
            return False  # changed meanwhile: the caller's answer stands
        again = replace(request, note="its row had been deleted; the reader confirmed", at=at)
        ledger.insert(conn, again)
        confirmed = Change(key, request.email, "activate", "active", "pending", note, at=at)
        ledger.insert(conn, confirmed)
    return True
