"""Opening the project's SQLite files (send journal, inbound records, webhook ledger)
the same way: WAL so readers never block the writer, synchronous=FULL so a committed
state survives a power cut, autocommit (explicit transactions), a 30 s busy timeout."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

from newsletter.errors import NewsletterError


def open_database(
    path: Path, schema: str, *, what: str, read_only: bool = False, any_thread: bool = False
) -> sqlite3.Connection:
    """Open (creating if needed) the database at ``path`` with ``schema`` applied.

    ``what`` names it in the one error a failure raises ("the send journal").
    ``read_only`` opens an existing file without creating or changing anything.
    ``any_thread``: the owner hands the connection to another thread for a while (never
    to two at once).
    """
    try:
        if read_only:
            uri = path.resolve().as_uri() + "?mode=ro"
            return sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(
            str(path), isolation_level=None, timeout=30.0, check_same_thread=not any_thread
        )
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=FULL")
        db.executescript(schema)
        return db
    except (sqlite3.Error, OSError) as exc:
        raise NewsletterError(f"{path}: cannot open {what}: {exc}") from exc


def rollback(db: sqlite3.Connection) -> None:
    """Undo the open transaction, if SQLite has not already: after SQLITE_FULL or an I/O
    error it rolls back by itself, and a second ROLLBACK would raise "no transaction is
    active" in place of the real error (a full disk reported as a rollback problem)."""
    if db.in_transaction:
        with contextlib.suppress(sqlite3.Error):  # the error being handled is the one to report
            db.execute("ROLLBACK")


def reconnect(path: Path, synchronous: str, *, what: str) -> sqlite3.Connection:
    """One more connection to a database this process opened with :func:`open_database`
    (WAL persists in the file): no schema statements, so many threads open at once."""
    try:
        conn = sqlite3.connect(str(path), isolation_level=None, timeout=30.0)
        conn.execute(f"PRAGMA synchronous={synchronous}")
        return conn
    except sqlite3.Error as exc:
        raise NewsletterError(f"{path}: cannot open {what}: {exc}") from exc
