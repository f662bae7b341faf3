"""The send journal: one SQLite row per (issue, recipient), written before and after
every hand-off, so a send is idempotent and resumes after kill -9, Ctrl-C or a power cut.

States::

    pending ──> in_flight ──> sent        (provider id, time)
                    │    ├──> failed      (reason; permanent: never retried, else retried
                    │    │                 by the next run)
                    │    └──> uncertain   (handed off, no answer: may have been delivered)
                    └─ (process died) ──> uncertain   (found by the next run)
    pending ──> skipped   (unsubscribed, bounced or removed since the send began)

``uncertain`` rows are resent only on request (``--resend-uncertain``). The database is
in WAL mode with ``synchronous=FULL``: a committed state survives a power cut.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsletter.database import open_database, rollback
from newsletter.delivery.journal_reads import Delivery as Delivery  # the send loop's rows
from newsletter.delivery.journal_reads import JournalReads
from newsletter.delivery.journal_sync import SYNC_CHUNK as SYNC_CHUNK
from newsletter.delivery.journal_sync import JournalSync
from newsletter.delivery.journal_sync import SyncAborted as SyncAborted
from newsletter.delivery.journal_sync import SyncResult as SyncResult
from newsletter.delivery.transports.base import Outcome, Status

#: wal_autocheckpoint while a run hands off
NO_CHECKPOINT = 0
INTERRUPTED = "the send stopped while this message was being handed off; it may have been delivered"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS deliveries (
    id          INTEGER PRIMARY KEY,
    issue       TEXT NOT NULL,
    key         TEXT NOT NULL,
    email       TEXT NOT NULL,
    name        TEXT NOT NULL DEFAULT '',
    state       TEXT NOT NULL CHECK (state IN
                  ('pending','in_flight','sent','failed','uncertain','skipped')),
    provider_id TEXT,
    reason      TEXT,
    permanent   INTEGER NOT NULL DEFAULT 0,
    attempts    INTEGER NOT NULL DEFAULT 0,
    run         INTEGER,
    updated_at  TEXT NOT NULL,
    UNIQUE (issue, key)
);
CREATE INDEX IF NOT EXISTS deliveries_by_state ON deliveries (issue, state);
CREATE TABLE IF NOT EXISTS runs (
    id          INTEGER PRIMARY KEY,
    issue       TEXT NOT NULL,
    transport   TEXT NOT NULL,
    pid         INTEGER NOT NULL,
    started_at  TEXT NOT NULL,
    finished_at TEXT,
    result      TEXT
);
"""


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def first_claims(keys: Sequence[Any], claimed: set[Any]) -> list[int]:
    """Positions in ``keys`` to hand off: each key the journal put in flight, once (taken
    out of ``claimed``; a key listed twice, or not pending any more, has no second)."""
    out = []
    for n, key in enumerate(keys):
        if key in claimed:
            claimed.discard(key)
            out.append(n)
    return out


class Journal(JournalReads, JournalSync):
    """The journal database at ``path`` (usually ``.newsletter/journal.sqlite3``)."""

    def __init__(self, path: Path, *, create: bool = True) -> None:
        self.path = path
        self.db = open_database(
            path, _SCHEMA, what="the send journal", read_only=not create, any_thread=True
        )
        self._focused = False
        #: called with (run id, run's start) at each run's first claim, inside its
        #: transaction: the send notes the run apart from this file before anything
        #: leaves, and a note that fails claims nothing (set by the CLI)
        self.before_first_hand_off: Callable[[int, str], None] | None = None
        self._noted_run: int | None = None

    @classmethod
    def exists(cls, path: Path) -> bool:
        return path.exists()

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Runs ---------------------------------------------------------------------------
    def begin_run(self, issue: str, transport: str) -> int:
        cur = self.db.execute(
            "INSERT INTO runs (issue, transport, pid, started_at) VALUES (?, ?, ?, ?)",
            (issue, transport, os.getpid(), _now()),
        )
        return int(cur.lastrowid or 0)

    @contextmanager
    def checkpoints_held(self) -> Iterator[None]:
        """No automatic checkpoint while a run hands off (on this connection; the streamed
        engine's own one holds them too), one when it ends. Should the -wal be lost after
        a kill -9 (a crash, a copy of the file alone), the file is then as it was before
        the run began: the send record's run is missing from it and the next send refuses.
        A checkpoint part-way would have left half the run in the file, and the next send
        would have mailed again whoever the other half reached."""
        self.db.execute(f"PRAGMA wal_autocheckpoint={NO_CHECKPOINT}")
        try:
            yield
        finally:
            self.db.execute("PRAGMA wal_autocheckpoint=1000")  # (SQLite's default)
            with contextlib.suppress(sqlite3.Error):  # (a reader may hold part of it back)
                self.db.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def end_run(self, run: int, result: str) -> None:
        self.db.execute(
            "UPDATE runs SET finished_at = ?, result = ? WHERE id = ?", (_now(), result, run)
        )

    # State changes, each committed on return ----------------------------------------
    def recover(self, issue: str) -> int:
        """Rows a dead run left in flight become uncertain; returns how many."""
        cur = self.db.execute(
            "UPDATE deliveries SET state = 'uncertain', reason = ?, updated_at = ? "
            "WHERE issue = ? AND state = 'in_flight'",
            (INTERRUPTED, _now(), issue),
        )
        return cur.rowcount

    def requeue_failed(self, issue: str, *, include_permanent: bool = False) -> int:
        """Failed rows that may succeed now (not permanent) go back to pending; with
        ``include_permanent`` the permanent ones too (the cause was fixed: --retry-failed)."""
        cur = self.db.execute(
            "UPDATE deliveries SET state = 'pending', permanent = 0, updated_at = ? "
            "WHERE issue = ? AND state = 'failed' AND (permanent = 0 OR ?)",
            (_now(), issue, int(include_permanent)),
        )
        return cur.rowcount

    def requeue_uncertain(self, issue: str) -> int:
        cur = self.db.execute(
            "UPDATE deliveries SET state = 'pending', updated_at = ? "
            "WHERE issue = ? AND state = 'uncertain'",
            (_now(), issue),
        )
        return cur.rowcount

    def focus(self, keys: Iterable[str] | None) -> None:
        """Hand out only these recipients as pending (a canary or the seed list goes
        first); None hands out everyone again. The others stay pending, untouched."""
        self.db.execute("CREATE TEMP TABLE IF NOT EXISTS focus (key TEXT PRIMARY KEY)")
        self.db.execute("DELETE FROM focus")
        self._focused = keys is not None
        if keys is not None:
            self.db.executemany("INSERT OR IGNORE INTO focus VALUES (?)", ((k,) for k in keys))

    def mark_in_flight(self, issue: str, keys: Sequence[str], run: int) -> set[str]:
        """Committed before the hand-off of ``keys``: from here on they may be delivered.
        Returns those it marked (only pending rows are)."""
        return self.advance(issue, (), keys, run)

    def record(self, issue: str, outcomes: Sequence[Outcome]) -> None:
        """Write each outcome of a hand-off; one transaction."""
        self.advance(issue, outcomes, (), 0)

    def advance(
        self, issue: str, outcomes: Sequence[Outcome], in_flight: Sequence[str], run: int
    ) -> set[str]:
        """One transaction (a group commit): record the outcomes of finished hand-offs
        and mark the next recipients ``in_flight`` before they are handed off.

        Concurrent hand-offs share one commit (one fsync) this way, yet every recipient
        is still journaled before it leaves and again once its fate is known (keys go in
        as one JSON array per statement: a statement per row waits for the GIL per row).
        Returns the keys it put in flight: only pending rows (see :func:`first_claims`).
        """
        pairs = [(o.email.strip().lower(), o) for o in outcomes]
        return set(self._advance(issue, "issue = ? AND key", pairs, list(in_flight), run, "key"))

    def advance_rows(
        self,
        issue: str,
        outcomes: Sequence[tuple[int, Outcome]],
        in_flight: Sequence[int],
        run: int,
    ) -> set[int]:
        """:meth:`advance` by journal row id (as :meth:`pending_rows` gives them): a
        row-id look-up per row instead of one in the (issue, key) index, a fifth less
        of SQLite's time for SendGrid's 2,000 rows a request."""
        claimed: set[int] = self._advance(
            issue, "+issue = ? AND id", outcomes, list(in_flight), run, "id"
        )
        return claimed

    def _advance(
        self,
        issue: str,
        where: str,
        outcomes: Sequence[tuple[str | int, Outcome]],
        in_flight: list[str] | list[int],
        run: int,
        column: str,
    ) -> Any:
        now = _now()
        groups: dict[tuple[str, str | None, str | None, int], list[str | int]] = {}
        for row, o in outcomes:
            if o.status is Status.SENT:
                what: tuple[str, str | None, str | None, int] = ("sent", o.provider_id, None, 0)
            elif o.status is Status.FAILED:
                what = ("failed", None, o.reason, int(o.permanent))
            elif o.status is Status.RETRY:
                what = ("failed", None, o.reason, 0)
            elif o.status is Status.UNCERTAIN:
                what = ("uncertain", None, o.reason, 0)
            else:
                what = ("pending", None, o.reason or None, 0)
            groups.setdefault(what, []).append(row)
        if not groups and not in_flight:
            return set()
        claimed: set[Any] = set()
        db = self.db
        db.execute("BEGIN IMMEDIATE")
        try:
            for (state, provider_id, reason, permanent), rows in groups.items():
                db.execute(
                    "UPDATE deliveries SET state = ?, provider_id = ?, reason = ?, "
                    f"permanent = ?, updated_at = ? WHERE {where} IN "
                    "(SELECT value FROM json_each(?))",
                    (state, provider_id, reason, permanent, now, issue, json.dumps(rows)),
                )
            if in_flight:
                # which of them are pending, as one JSON row, then those put in flight (in
                # this transaction nothing else writes): an UPDATE ... RETURNING would give
                # a row per recipient, and SQLite lets the GIL go and takes it back per row
                (pending,) = db.execute(
                    f"SELECT json_group_array({column}) FROM deliveries WHERE {where} IN "
                    "(SELECT value FROM json_each(?)) AND +state = 'pending'",
                    (issue, json.dumps(in_flight)),
                ).fetchone()
                db.execute(
                    "UPDATE deliveries SET state = 'in_flight', run = ?, "
                    f"attempts = attempts + 1, updated_at = ? WHERE {where} IN "
                    "(SELECT value FROM json_each(?)) AND +state = 'pending'",
                    (run, now, issue, pending),
                )
                claimed = set(json.loads(pending))
                if claimed and run != self._noted_run and self.before_first_hand_off:
                    (started,) = db.execute(
                        "SELECT started_at FROM runs WHERE id = ?", (run,)
                    ).fetchone() or ("",)
                    self.before_first_hand_off(run, started)
                    self._noted_run = run
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return claimed

    def mark_skipped(self, issue: str, keys: Sequence[str]) -> int:
        """Pending rows whose address left the list during the send: never handed off."""
        cursor = self.db.executemany(
            "UPDATE deliveries SET state = 'skipped', updated_at = ? "
            "WHERE issue = ? AND key = ? AND state = 'pending'",
            [(_now(), issue, key) for key in keys],
        )
        return cursor.rowcount

    def mark_uncertain(self, issue: str, keys: Sequence[str]) -> None:
        self.db.executemany(
            "UPDATE deliveries SET state = 'uncertain', reason = ?, updated_at = ? "
            "WHERE issue = ? AND key = ? AND state = 'in_flight'",
            [(INTERRUPTED, _now(), issue, key) for key in keys],
        )

    def forget(self, key: str) -> int:
        """Delete every row of one recipient, in every issue (a data-protection request:
        ``subscribers remove --purge``); how many. Their address is gone from the list
        too, so no resumed send adds them back."""
        cur = self.db.execute("DELETE FROM deliveries WHERE key = ?", (key.strip().lower(),))
        return cur.rowcount

    # Reading ------------------------------------------------------------------------
    def unsend_run(self, issue: str, run: int) -> int:
        """A run whose hand-offs were cancelled before delivery (a SendGrid schedule):
        its recipients are pending again, so a later send reaches them."""
        cur = self.db.execute(
            "UPDATE deliveries SET state = 'pending', provider_id = NULL, reason = NULL, "
            "updated_at = ? WHERE issue = ? AND run = ? AND state IN ('sent', 'uncertain')",
            (_now(), issue, run),
        )
        return cur.rowcount
