"""The consent ledger: every machine change to the list, durable before it is answered.

Web unsubscribes and confirmations, signup requests, bounces and complaints (mailbox,
webhook, send loop) are rows of ``changes`` in ``state_dir/ledger.sqlite3`` (WAL,
synchronous=FULL): a change is durable when its row commits, milliseconds, whatever the
size of the CSV. :mod:`.fold` later writes them into the CSV in batches.

``holds`` is the record of consent: for each address, the strongest suppression
(unsubscribed < bounced < complained) recorded since its last confirmation. A fold
re-applies a hold to a row a hand edit (a spreadsheet save) turned back, so nothing but
the reader's own confirmation (or an admin's explicit ``--force``) undoes it.

What each kind of change does to a row is the pure :func:`apply_change`, used both when
a change is decided (against the effective row: CSV index + unfolded changes + holds)
and when it is folded into the file (against the row as it is then).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Final, Literal, TypeVar

from newsletter.audience.subscribers.groupcommit import GroupCommit
from newsletter.database import open_database, reconnect
from newsletter.errors import NewsletterError

LEDGER_NAME: Final = "ledger.sqlite3"
#: How strong a status is: a suppression never replaces a stronger one.
RANK: Final[Mapping[str, int]] = {
    "pending": 0,
    "active": 0,
    "unsubscribed": 1,
    "bounced": 2,
    "complained": 3,
}
Op = Literal["suppress", "suppress-open", "activate", "request", "add", "release"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS changes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    key TEXT NOT NULL,
    email TEXT NOT NULL,
    op TEXT NOT NULL,
    status TEXT NOT NULL,
    before TEXT NOT NULL,
    note TEXT NOT NULL,
    name TEXT NOT NULL,
    source TEXT NOT NULL,
    at TEXT NOT NULL,
    language TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS changes_by_key ON changes (key, seq);
CREATE TABLE IF NOT EXISTS holds (
    key TEXT PRIMARY KEY,
    email TEXT NOT NULL,
    status TEXT NOT NULL,
    note TEXT NOT NULL,
    at TEXT NOT NULL,
    seq INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS folded_rows (
    key TEXT PRIMARY KEY,
    stamps TEXT NOT NULL,
    at REAL NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS changes_by_time ON changes (at);
"""


@dataclass(frozen=True, slots=True)
class Change:
    """One machine change. ``before`` is the status it was decided against ("" = absent)."""

    key: str
    email: str
    op: Op
    status: str
    before: str = ""
    note: str = ""
    name: str = ""
    source: str = ""
    at: str = ""
    seq: int = 0
    language: str = ""  # a new row's language (the request was written in it)


@dataclass(frozen=True, slots=True)
class RowState:
    """What a decision needs to know of a row: its status and when it last changed."""

    email: str
    status: str
    updated_at: str = ""
    line: int = 0
    language: str = ""


@dataclass(frozen=True, slots=True)
class Hold:
    key: str
    email: str
    status: str
    note: str
    at: str
    seq: int


def apply_change(change: Change, state: RowState | None) -> RowState | None:
    """The row after ``change`` (the same object when it changes nothing).

    * ``suppress``: a stronger status replaces a weaker one; ``suppress-open`` only
      changes a pending or active row (a bounce does not hide an unsubscribe).
    * ``activate``: compare and set: the row still holds the status the confirmation
      was checked against (pending, or unsubscribed with a fresh token) -> active. A row
      changed since (by hand, or by a later suppression) keeps its status.
    * ``request``: a new pending row when absent; ``before`` bounced/complained (a
      human approved it) -> pending when the row still holds that status.
    * ``add``: a new row with ``status`` when absent (an admin's import).
    * ``release``: changes no row (an admin's ``--force`` lifted a hold).
    """
    op = change.op
    if op == "release":
        return state
    if op == "add":
        return RowState(change.email, change.status, change.at) if state is None else state
    if op == "request":
        if state is None:
            return RowState(change.email, "pending", change.at, language=change.language)
        if change.before and change.before != "pending" and state.status == change.before:
            return replace(state, status="pending", updated_at=change.at)
        return state
    if state is None:
        return None
    if op == "activate":
        if state.status == change.before and change.before in ("pending", "unsubscribed"):
            return replace(state, status="active", updated_at=change.at)
        return state
    if op == "suppress-open" and state.status not in ("pending", "active"):
        return state
    if RANK.get(state.status, 0) < RANK[change.status]:
        return replace(state, status=change.status, updated_at=change.at)
    return state


def enforce_hold(hold: Hold | None, state: RowState | None) -> RowState | None:
    """``state`` with ``hold`` applied if it is weaker (a reverted suppression)."""
    if hold is None or state is None or RANK.get(state.status, 0) >= RANK[hold.status]:
        return state
    return replace(state, status=hold.status, updated_at=hold.at)


def _change(row: tuple[Any, ...]) -> Change:
    seq, key, email, op, status, before, note, name, source, at, language = row
    return Change(key, email, op, status, before, note, name, source, at, seq, language)


_COLUMNS: Final = "seq, key, email, op, status, before, note, name, source, at, language"


T = TypeVar("T")


class Ledger:
    """The SQLite file of changes, holds and the fold watermark.

    One connection per thread; writes in this process are serialised by a lock so
    SQLite's busy handler (which sleeps) only ever waits for another process.
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._group = GroupCommit()
        self._ready = False  # the schema is in place (this process opened it once)
        self.listeners: list[Callable[[], None]] = []  # told after every commit

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> Ledger:
        return cls(state_dir / LEDGER_NAME)

    def connection(self) -> sqlite3.Connection:
        """This thread's connection; only the process's first one applies the schema (so a
        burst of new request threads does not queue on schema statements)."""
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._write_lock:
                if not self._ready:
                    conn = open_database(self.path, _SCHEMA, what="the consent ledger")
                    self._ready = True
            if conn is None:
                conn = reconnect(self.path, "FULL", what="the consent ledger")
            self._local.conn = conn
        return conn

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (BEGIN IMMEDIATE), committed when the block succeeds."""
        conn = self.connection()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield conn
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise NewsletterError(f"{self.path}: the consent ledger: {exc}") from exc
        for listener in self.listeners:
            listener()

    def commit_group(self, work: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``work`` in a write transaction shared with concurrent callers (one fsync
        for all of them; see :class:`~.groupcommit.GroupCommit`)."""
        try:
            return self._group.run(self.transaction, work)
        except sqlite3.Error as exc:
            raise NewsletterError(f"{self.path}: the consent ledger: {exc}") from exc

    # Reading --------------------------------------------------------------------------
    def meta(self, name: str, default: str = "") -> str:
        row = self.connection().execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
        return str(row[0]) if row else default

    def folded_seq(self) -> int:
        return int(self.meta("folded_seq", "0"))

    def last_seq(self) -> int:
        row = self.connection().execute("SELECT MAX(seq) FROM changes").fetchone()
        return int(row[0] or 0)

    def unfolded_count(self) -> int:
        row = (
            self.connection()
            .execute("SELECT COUNT(*) FROM changes WHERE seq > ?", (self.folded_seq(),))
            .fetchone()
        )
        return int(row[0])

    def changes_after(self, seq: int, key: str | None = None) -> list[Change]:
        """Changes with a higher ``seq``, in order (for one ``key``, or all)."""
        conn = self.connection()
        if key is None:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM changes WHERE seq > ? ORDER BY seq", (seq,)
            ).fetchall()
        else:
            rows = conn.execute(
                f"SELECT {_COLUMNS} FROM changes WHERE key = ? AND seq > ? ORDER BY seq",
                (key, seq),
            ).fetchall()
        return [_change(r) for r in rows]

    def changes_between(self, after: int, upto: int) -> dict[str, list[Change]]:
        grouped: dict[str, list[Change]] = {}
        rows = self.connection().execute(
            f"SELECT {_COLUMNS} FROM changes WHERE seq > ? AND seq <= ? ORDER BY seq",
            (after, upto),
        )
        for row in rows:
            change = _change(row)
            grouped.setdefault(change.key, []).append(change)
        return grouped

    def hold(self, key: str) -> Hold | None:
        row = (
            self.connection()
            .execute("SELECT key, email, status, note, at, seq FROM holds WHERE key = ?", (key,))
            .fetchone()
        )
        return Hold(*row) if row else None

    def holds(self, keys: Iterable[str] | None = None) -> dict[str, Hold]:
        """Every hold (or those of ``keys``), by address key."""
        conn = self.connection()
        sql = "SELECT key, email, status, note, at, seq FROM holds"
        if keys is None:
            return {row[0]: Hold(*row) for row in conn.execute(sql)}
        wanted = list(dict.fromkeys(keys))
        if len(wanted) == 1:  # a replay's check, on the event loop: one indexed read
            one = self.hold(wanted[0])
            return {one.key: one} if one is not None else {}
        found: dict[str, Hold] = {}
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(f"{sql} WHERE key IN ({marks})", chunk):
                found[row[0]] = Hold(*row)
        return found

    def holds_count(self) -> int:
        return int(self.connection().execute("SELECT COUNT(*) FROM holds").fetchone()[0])

    def changes_for_fold(self, upto: int, since: str) -> dict[str, list[Change]]:
        """Per address, in order: the changes not folded yet and those made since ``since``."""
        grouped: dict[str, list[Change]] = {}
        rows = self.connection().execute(
            f"SELECT {_COLUMNS} FROM changes WHERE seq <= ? AND (seq > ? OR at >= ?) ORDER BY seq",
            (upto, self.folded_seq(), since),
        )
        for row in rows:
            change = _change(row)
            grouped.setdefault(change.key, []).append(change)
        return grouped

    def history(self, keys: Iterable[str]) -> dict[str, list[int]]:
        """The row stamps recent folds saw and left for each of ``keys`` (0: no row)."""
        wanted = list(keys)
        found: dict[str, list[int]] = {}
        conn = self.connection()
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            marks = ",".join("?" * len(chunk))
            sql = f"SELECT key, stamps FROM folded_rows WHERE key IN ({marks})"
            for key, stamps in conn.execute(sql, chunk):
                found[key] = [int(s) for s in stamps.split(",")]
        return found

    def note_folded(self, rows: Mapping[str, tuple[int, int]], *, window: float) -> None:
        """Remember each row's text stamp before and after a fold, for the next folds."""
        now = time.time()
        with self.transaction() as conn:
            conn.execute("DELETE FROM folded_rows WHERE at < ?", (now - window,))
            for key, (pre, post) in rows.items():
                held = conn.execute(
                    "SELECT stamps FROM folded_rows WHERE key = ?", (key,)
                ).fetchone()
                stamps = [int(s) for s in held[0].split(",")] if held else []
                if not stamps or stamps[-1] != pre:
                    stamps = [pre]
                stamps.append(post)
                conn.execute(
                    "INSERT OR REPLACE INTO folded_rows VALUES (?, ?, ?)",
                    (key, ",".join(map(str, stamps[-50:])), now),
                )

    def pending_requests(self) -> list[Change]:
        """Unfolded requests that add a row (for readers that list the file)."""
        return [
            c for c in self.changes_after(self.folded_seq()) if c.op == "request" and not c.before
        ]

    # Writing --------------------------------------------------------------------------
    def insert(self, conn: sqlite3.Connection, change: Change) -> Change:
        """Record ``change`` inside a :meth:`transaction`; keeps ``holds`` in step."""
        cursor = conn.execute(
            "INSERT INTO changes (key, email, op, status, before, note, name, source, at, "
            "language) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (change.key, change.email, change.op, change.status, change.before, change.note,
             change.name, change.source, change.at, change.language),
        )  # fmt: skip
        seq = int(cursor.lastrowid or 0)
        if change.op in ("suppress", "suppress-open"):
            held = conn.execute("SELECT status FROM holds WHERE key = ?", (change.key,)).fetchone()
            if held is None or RANK[str(held[0])] < RANK[change.status]:
                conn.execute(
                    "INSERT OR REPLACE INTO holds VALUES (?, ?, ?, ?, ?, ?)",
                    (change.key, change.email, change.status, change.note, change.at, seq),
                )
        elif change.op in ("release", "activate") or (
            change.op == "request" and change.before in ("bounced", "complained")
        ):  # the reader's own confirmation, or a human's explicit decision
            conn.execute("DELETE FROM holds WHERE key = ?", (change.key,))
        return replace(change, seq=seq)

    def set_folded(self, seq: int, signature: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO meta VALUES ('folded_seq', ?), ('fold_signature', ?)",
                (str(max(seq, self.folded_seq())), signature),
            )

    def forget(self, key: str) -> None:
        """Drop everything recorded for ``key`` (a data-protection purge)."""
        with self.transaction() as conn:
            conn.execute("DELETE FROM holds WHERE key = ?", (key,))
            conn.execute("DELETE FROM changes WHERE key = ?", (key,))

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None
