"""The list as machines see it: the CSV's index, plus the ledger's changes and holds.

:class:`LiveList` answers "what is this address's status now?" from one indexed
look-up and the ledger (never a read of the CSV on a request's path), records machine
changes decided against that answer in one ledger transaction, keeps the index in step
with the file, and folds the ledger into the file (:meth:`LiveList.fold`).
"""

from __future__ import annotations

import io
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TYPE_CHECKING, Final, cast

from newsletter.audience.subscribers.addresses import (
    address_key,
    check_status,
    normalize_address,
)
from newsletter.audience.subscribers.foldreport import FoldReport
from newsletter.audience.subscribers.index import (
    INDEX_NAME,
    RowIndex,
    signature_text,
)
from newsletter.audience.subscribers.ledger import (
    RANK,
    Change,
    Hold,
    Ledger,
    RowState,
    apply_change,
    enforce_hold,
)
from newsletter.audience.subscribers.lockedfile import FileSignature, file_signature
from newsletter.audience.subscribers.rows import Subscriber
from newsletter.audience.subscribers.scan import UnindexedRows, rebuild_index

if TYPE_CHECKING:
    from newsletter.audience.subscribers.fold import FoldMutation
    from newsletter.audience.subscribers.rows import SubscriberRow
    from newsletter.audience.subscribers.store import SubscriberStore

#: One Ledger and one RowIndex per file in a process: their write locks must be shared.
_OPEN: dict[Path, Ledger | RowIndex] = {}
_OPEN_LOCK: Final = threading.Lock()


def _shared(path: Path, kind: type[Ledger] | type[RowIndex]) -> Ledger | RowIndex:
    with _OPEN_LOCK:
        found = _OPEN.get(path)
        if not isinstance(found, kind):
            found = _OPEN[path] = kind(path)
        return found


def close_ledgers() -> None:
    """Close this thread's connections to the shared ledgers (a command that ends): the
    last connection to a ledger checkpoints its WAL into the file and removes it."""
    with _OPEN_LOCK:
        for opened in _OPEN.values():
            if isinstance(opened, Ledger):
                opened.close()


#: A decision: given the address's row now (None: not listed) and its hold, the change
#: to record (None: nothing to record).
Decide = Callable[[RowState | None, Hold | None], Change | None]


@dataclass(frozen=True, slots=True)
class Decision:
    before: RowState | None  # the status the change was decided against
    change: Change | None  # None when nothing needed recording


class LiveList:
    """One subscriber file's index and ledger (``state_dir/{index,ledger}.sqlite3``)."""

    def __init__(self, store: SubscriberStore, state_dir: Path) -> None:
        self.store = store
        ledger = _shared((state_dir / "ledger.sqlite3").resolve(), Ledger)
        index = _shared((state_dir / INDEX_NAME).resolve(), RowIndex)
        assert isinstance(ledger, Ledger) and isinstance(index, RowIndex)
        self.ledger = ledger
        self.index = index
        #: the file's resolved path, as the index records it (resolved once: each
        #: resolve is a system call per path component, on every look-up)
        self._path = str(store.path.resolve())
        #: rebuild a stale index inside a look-up (a CLI); ``serve`` turns it off and
        #: rebuilds in the background, so a request never waits for a rebuild
        self.inline_rebuild = True
        #: look-ups of addresses a stale index does not know (``serve``, during a rebuild)
        self.unindexed = UnindexedRows(store)

    # The index ------------------------------------------------------------------------
    def index_is_current(self) -> bool:
        signature, _seq, path = self.index.meta()
        return path == self._path and signature == signature_text(file_signature(self.store.path))

    def refresh_index(self, *, force: bool = False) -> bool:
        """Rebuild the index if the file changed since it was built; True if rebuilt."""
        with self.index.rebuild_lock, self.index.locked():
            if not force and self.index_is_current():
                return False  # (another process rebuilt it while this one waited)
            seq = self.ledger.folded_seq()  # before the read: later folds are re-overlaid
            rebuild_index(self.index, self.store, seq)
            return True

    def _ensure_index(self) -> int:
        """The ledger seq the index includes; rebuilds it first when allowed (or never built)."""
        signature, seq, path = self.index.meta()
        never = not signature or path != self._path
        if never or self.inline_rebuild:
            now = signature_text(file_signature(self.store.path))
            if never or signature != now:
                self.refresh_index()
                return self.index.meta()[1]
        return seq

    # The effective state -------------------------------------------------------------
    def state(self, key: str) -> RowState | None:
        """The address's row now: the index, its unfolded changes, its hold."""
        return self._state_and_hold(key)[0]

    def _state_and_hold(self, key: str) -> tuple[RowState | None, Hold | None]:
        seq = self._ensure_index()
        state = self.index.lookup(key)
        if state is None and not self.inline_rebuild:
            state = self.unindexed.lookup(key, self.index.meta()[0])  # a row added by hand?
        for change in self.ledger.changes_after(seq, key):
            state = apply_change(change, state)
        hold = self.ledger.hold(key)
        return enforce_hold(hold, state), hold

    def unfolded_subscriber(self, key: str) -> Subscriber | None:
        """The row an unfolded signup (or import) adds for the address, as it stands now."""
        folded = self.ledger.folded_seq()
        new = [c for c in self.ledger.changes_after(folded, key) if c.op in ("request", "add")]
        added = next((c for c in new if not c.before), None)
        state = self.state(key)
        if state is None or added is None:
            return None
        return Subscriber(
            state.email, added.name, state.status, added.source, 0,
            subscribed_at=added.at, updated_at=state.updated_at, note=added.note,
            confirmed_at=state.updated_at if state.status == "active" else "",
            language=state.language,
        )  # fmt: skip

    def held(self, keys: Iterable[str]) -> dict[str, Hold]:
        """The holds among ``keys`` (the send loop's check before a hand-off)."""
        return self.ledger.holds(keys)

    def decide(self, key: str, decide: Decide) -> Decision:
        """Record what ``decide`` makes of the address's state (see :meth:`decide_many`)."""
        return self.decide_many({key: decide})[key]

    def decide_many(
        self, decisions: Mapping[str, Decide], *, precheck: bool = True
    ) -> dict[str, Decision]:
        """Several addresses' decisions in one transaction, shared with concurrent callers
        (one fsync for all); a decision that records nothing (a replay) takes no lock.
        ``precheck=False`` skips that first look for callers whose changes are mostly new
        (the web's unsubscribes: replays are answered before they get here)."""
        done: dict[str, Decision] = {}
        todo = {}
        for key, decide in decisions.items():
            if not precheck:
                todo[key] = decide
                continue
            before, hold = self._state_and_hold(key)
            if decide(before, hold) is None:
                done[key] = Decision(before, None)
            else:
                todo[key] = decide
        if todo:

            def record(conn: sqlite3.Connection) -> dict[str, Decision]:
                decided = {}
                for key, decide in todo.items():
                    before, hold = self._state_and_hold(key)  # again, now that writers wait
                    change = decide(before, hold)
                    if change is not None:
                        change = self.ledger.insert(conn, change)
                    decided[key] = Decision(before, change)
                return decided

            done.update(self.ledger.commit_group(record))
        return done

    def suppress(
        self,
        changes: Mapping[str, tuple[str, str]],
        *,
        only_open: bool,
        source: str,
        at: str,
        precheck: bool = True,
    ) -> dict[str, str | None]:
        """Record suppressions in one transaction; each address's status before (None: unlisted)."""
        decisions: dict[str, Decide] = {}
        for email, (status, note) in changes.items():
            address = normalize_address(email)
            decisions[address.lower()] = wanted_suppression(
                address, check_status(status), note, only_open=only_open, at=at, source=source
            )
        done = self.decide_many(decisions, precheck=precheck)
        return {key: (d.before.status if d.before else None) for key, d in done.items()}

    def release(self, emails: Iterable[str], *, note: str) -> None:
        """An admin lifted these addresses' holds (``import --force``)."""
        with self.ledger.transaction() as conn:
            for email in emails:
                key = address_key(email)
                if self.ledger.hold(key) is not None:
                    self.ledger.insert(conn, Change(key, email, "release", "", note=note))

    def overlay(self) -> Overlay:
        """What readers of the file add to it: unfolded changes and holds."""
        return Overlay(
            self.ledger.changes_between(self.ledger.folded_seq(), self.ledger.last_seq()),
            self.ledger.holds(),
        )

    # Folding ---------------------------------------------------------------------------
    def _fast_pass(
        self, mutation: FoldMutation, keys: frozenset[str], out: IO[str]
    ) -> tuple[bool, FileSignature | None]:
        """The fold's pass: only the rows it names are parsed (:mod:`.fastpass`)."""
        binary = _binary(out)
        try:
            fh = self.store.path.open("rb")
        except FileNotFoundError:
            fh = None
        if fh is None or binary is None or self.store.encoding != "utf-8":
            if fh is not None:
                fh.close()
            return self.store.apply_pass(mutation, out)
        with fh:
            signature = FileSignature.of(os.fstat(fh.fileno()))
            if signature.size == 0:
                return self.store.apply_pass(mutation, out)
            out.flush()
            now = self.store.clock()
            from newsletter.audience.subscribers.fastpass import run_fast_pass

            changed = run_fast_pass(mutation, fh, keys, now, binary, self.store.display)
            return changed, signature

    def fold(self) -> FoldReport:
        """Write the ledger's new changes (and any reverted ones) into the CSV: one rewrite."""
        ledger = self.ledger
        after, upto = ledger.folded_seq(), ledger.last_seq()
        signature = file_signature(self.store.path)
        report = FoldReport()
        if upto == after and signature_text(signature) == ledger.meta("fold_signature"):
            return report  # nothing new, and the file is as the last fold left it
        # the fold's code loads only when there is something to fold (start-up time)
        import logging

        from newsletter.audience.subscribers import importledger
        from newsletter.audience.subscribers.fold import RECHECK_SECONDS, FoldMutation

        log = logging.getLogger("newsletter.subscribers")
        since = datetime.fromtimestamp(time.time() - RECHECK_SECONDS, UTC)
        changes = ledger.changes_for_fold(upto, since.strftime("%Y-%m-%dT%H:%M:%SZ"))
        history = ledger.history(changes)
        adds = [c.seq for cs in changes.values() for c in cs if c.op == "add"]
        mutation = FoldMutation(
            self.store.display, changes, ledger.holds(), history, after,
            importledger.load(ledger, adds), importledger.fold_times(ledger, history),
        )  # fmt: skip
        read: list[FileSignature | None] = []

        keys = frozenset(changes) | frozenset(mutation.holds)

        def write_pass(out: IO[str]) -> tuple[bool, FileSignature | None]:
            changed, sig = self._fast_pass(mutation, keys, out)
            read.append(sig)
            return changed, sig

        report_wrote = self.store.rewrite(write_pass) if changes or ledger.holds_count() else False
        report = mutation.report
        report.wrote = report_wrote
        report.folded = upto - after
        now_sig = signature_text(file_signature(self.store.path))
        if mutation.touched:
            ledger.note_folded(
                {k: (pre, post) for k, (_s, pre, post) in mutation.touched.items()},
                window=RECHECK_SECONDS,
            )
            updated = self.index.update(
                {k: s for k, (s, _pre, _post) in mutation.touched.items()},
                signature=now_sig,
                seq=upto,
                expected=signature_text(read[-1]) if read else "",
            )
            if not updated:
                log.info("subscriber index is stale; it is rebuilt from the file")
        ledger.set_folded(upto, now_sig)
        for line in report.reapplied:
            log.info("fold: re-applied: %s", line)
        return report


class Overlay:
    """A row of the file as the ledger sees it (the status after its changes and hold)."""

    def __init__(self, changes: dict[str, list[Change]], holds: dict[str, Hold]) -> None:
        self.changes = changes
        self.holds = holds

    def row(self, row: SubscriberRow) -> SubscriberRow:
        sub = row.subscriber
        key = row.key  # (sub.key, lowercased once by the validator)
        if sub is None or (key not in self.changes and key not in self.holds):
            return row
        state: RowState | None = RowState(
            sub.email, sub.status, sub.updated_at, row.line, sub.language
        )
        for change in self.changes.get(sub.key, []):
            state = apply_change(change, state)
        state = enforce_hold(self.holds.get(sub.key), state)
        if state is None or state.status == sub.status:
            return row
        confirmed = state.updated_at if state.status == "active" else sub.confirmed_at
        return row._replace(
            subscriber=replace(
                sub, status=state.status, updated_at=state.updated_at, confirmed_at=confirmed
            )
        )


def _binary(out: IO[str]) -> IO[bytes] | None:
    """The byte stream under a text file (the fast pass copies rows as bytes)."""
    buffer = getattr(out, "buffer", None)
    return cast("IO[bytes]", buffer) if isinstance(buffer, io.BufferedIOBase) else None


def wanted_suppression(
    email: str, status: str, note: str, *, only_open: bool, at: str, source: str = ""
) -> Decide:
    """A suppression, recorded unless the address already has that status or stronger."""
    key = email.lower()

    def decide(state: RowState | None, hold: Hold | None) -> Change | None:
        change = Change(
            key,
            email,
            "suppress-open" if only_open else "suppress",
            status,
            before=state.status if state else "",
            note=note,
            source=source,
            at=at,
        )
        if state is not None:
            # already that status or stronger (a replay): nothing to record
            return None if apply_change(change, state) is state else change
        if hold is not None and RANK[hold.status] >= RANK[status]:
            return None
        return change  # not listed now: kept as a hold, in case the row comes back

    return decide
