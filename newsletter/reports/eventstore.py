"""The event table: every event tied to an issue and a reader, once.

One row per ``(issue, reader, kind)``: the first time it happened, where it came from
and a short detail. So a reader who bounces in SendGrid's webhook and again in a DSN in
the mailbox is one hard bounce, and a retried webhook batch changes nothing. A tally
per ``(issue, kind)`` is kept in the same transaction, so a report over a hundred
issues of a hundred thousand readers reads a few hundred rows, not millions.
``sources`` remembers how far each feeding source has been read.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from newsletter.database import open_database, rollback

EVENTS_NAME: Final = "events.sqlite3"
#: The kinds of event, in the order reports show them.
KINDS: Final = (
    "sent",  # handed to the transport (journal)
    "delivered",  # accepted by the reader's mail server (SendGrid)
    "uncertain",  # handed off, no answer (journal)
    "failed_temporary",  # refused for now at hand-off, not yet sent (journal)
    "failed_permanent",  # refused for good at hand-off: SMTP 5xx, SendGrid 4xx (journal)
    "bounce_soft",  # after hand-off: deferred, blocked, a 4.x.x DSN
    "bounce_hard",  # after hand-off: SendGrid bounce or drop, a 5.x.x DSN
    "complaint",
    "unsubscribe",
    "open",
    "click",
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    issue   TEXT NOT NULL,
    reader  TEXT NOT NULL,
    kind    TEXT NOT NULL,
    at      TEXT NOT NULL,
    source  TEXT NOT NULL,
    detail  TEXT NOT NULL DEFAULT '',
    PRIMARY KEY (issue, reader, kind)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS events_by_reader ON events (reader, kind, at);
CREATE TABLE IF NOT EXISTS tally (
    issue   TEXT NOT NULL,
    kind    TEXT NOT NULL,
    readers INTEGER NOT NULL,
    PRIMARY KEY (issue, kind)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS issues (
    issue      TEXT PRIMARY KEY,
    first_sent TEXT NOT NULL,
    list_size  INTEGER
);
CREATE TABLE IF NOT EXISTS sources (
    name  TEXT PRIMARY KEY,
    mark  TEXT NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class Event:
    """One event: ``kind`` for ``reader`` (the lowercased address) in ``issue``."""

    issue: str
    reader: str
    kind: str
    at: str  # ISO 8601 UTC
    source: str  # journal, sendgrid, mailbox, list
    detail: str = ""


class EventStore:
    """The event database at ``path`` (usually ``.newsletter/events.sqlite3``)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_database(path, _SCHEMA, what="the report event store")

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> EventStore:
        return cls(state_dir / EVENTS_NAME)

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> EventStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Writing --------------------------------------------------------------------------
    def add(self, events: Iterable[Event], *, chunk: int = 50_000) -> int:
        """Record events not seen before (by issue, reader and kind); how many were new.

        One transaction; the tally moves with the rows, so the two always agree. Rows go
        in by ``(issue, kind)`` group, so SQLite's change count says how many of each
        group were new without a round trip per row.
        """
        db = self.db
        new: dict[tuple[str, str], int] = {}
        groups: dict[tuple[str, str], list[tuple[str, str, str, str, str, str]]] = {}
        pending = 0

        def flush() -> None:
            for group, rows in groups.items():
                before = db.total_changes
                db.executemany("INSERT OR IGNORE INTO events VALUES (?, ?, ?, ?, ?, ?)", rows)
                new[group] = new.get(group, 0) + db.total_changes - before
            groups.clear()

        db.execute("BEGIN IMMEDIATE")
        try:
            for e in events:
                groups.setdefault((e.issue, e.kind), []).append(
                    (e.issue, e.reader, e.kind, e.at, e.source, e.detail[:300])
                )
                pending += 1
                if pending >= chunk:
                    flush()
                    pending = 0
            flush()
            _bump(db, new)
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return sum(new.values())

    def note_issue(self, issue: str, first_sent: str, list_size: int | None = None) -> None:
        """When an issue first went out, and how many active readers the list had then."""
        self.db.execute(
            "INSERT INTO issues VALUES (?, ?, ?) ON CONFLICT (issue) DO UPDATE SET "
            "first_sent = min(first_sent, excluded.first_sent), "
            "list_size = coalesce(excluded.list_size, list_size)",
            (issue, first_sent, list_size),
        )

    def mark(self, name: str) -> str | None:
        row = self.db.execute("SELECT mark FROM sources WHERE name = ?", (name,)).fetchone()
        return None if row is None else str(row[0])

    def set_mark(self, name: str, mark: str) -> None:
        self.db.execute(
            "INSERT INTO sources VALUES (?, ?) ON CONFLICT (name) DO UPDATE SET mark = ?",
            (name, mark, mark),
        )

    def purge(self, reader: str) -> int:
        """Forget every event of ``reader`` (a data-protection request); how many rows."""
        db = self.db
        key = reader.strip().lower()
        db.execute("BEGIN IMMEDIATE")
        try:
            gone: dict[tuple[str, str], int] = {}
            for issue, kind in db.execute(
                "SELECT issue, kind FROM events WHERE reader = ?", (key,)
            ).fetchall():
                gone[(issue, kind)] = gone.get((issue, kind), 0) - 1
            db.execute("DELETE FROM events WHERE reader = ?", (key,))
            _bump(db, gone)
            db.execute("COMMIT")
        except BaseException:
            rollback(db)
            raise
        return -sum(gone.values())

    # Reading --------------------------------------------------------------------------
    def tallies(self) -> dict[str, dict[str, int]]:
        """``{issue: {kind: readers}}`` for every issue with events."""
        result: dict[str, dict[str, int]] = {}
        for issue, kind, readers in self.db.execute("SELECT issue, kind, readers FROM tally"):
            result.setdefault(issue, {})[kind] = int(readers)
        return result

    def issues(self) -> list[tuple[str, str, int | None]]:
        """``(issue, first sent, list size then)``, oldest first."""
        return [
            (str(i), str(f), None if n is None else int(n))
            for i, f, n in self.db.execute(
                "SELECT issue, first_sent, list_size FROM issues ORDER BY first_sent, issue"
            )
        ]

    def history(self, reader: str) -> list[Event]:
        """Every event of one reader, oldest first."""
        rows = self.db.execute(
            "SELECT issue, reader, kind, at, source, detail FROM events WHERE reader = ? "
            "ORDER BY at, issue, kind",
            (reader.strip().lower(),),
        )
        return [Event(*row) for row in rows]

    def last_sent_before(self, reader: str, at: str) -> str | None:
        """The issue last sent to ``reader`` at or before ``at`` (None: none was)."""
        row = self.db.execute(
            "SELECT issue FROM events WHERE reader = ? AND kind = 'sent' AND at <= ? "
            "ORDER BY at DESC LIMIT 1",
            (reader, at),
        ).fetchone()
        return None if row is None else str(row[0])

    def readers(self, issue: str, kind: str) -> Iterator[str]:
        for (reader,) in self.db.execute(
            "SELECT reader FROM events WHERE issue = ? AND kind = ?", (issue, kind)
        ):
            yield str(reader)


def _bump(db: sqlite3.Connection, changes: dict[tuple[str, str], int]) -> None:
    db.executemany(
        "INSERT INTO tally VALUES (?, ?, ?) ON CONFLICT (issue, kind) "
        "DO UPDATE SET readers = readers + excluded.readers",
        [(issue, kind, n) for (issue, kind), n in changes.items() if n],
    )
