"""The index of the CSV: address key -> line, status, last change, a stamp of the row's text.

``state_dir/index.sqlite3`` is derived data (rebuilt whenever the file's
:class:`~.lockedfile.FileSignature` changes, so it may be lost at any time): it lets a
web request answer from one indexed look-up instead of reading a million-row file. A
rebuild streams the file into a new table in chunks and swaps it in with one short
transaction, so readers keep the old table until then and memory stays flat.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import sqlite3
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from newsletter.audience.subscribers.ledger import RowState
from newsletter.database import open_database, reconnect

if TYPE_CHECKING:
    from newsletter.audience.subscribers.lockedfile import FileSignature
    from newsletter.audience.subscribers.rows import SubscriberRow

INDEX_NAME: Final = "index.sqlite3"
CHUNK: Final = 20_000
_SCHEMA = """
CREATE TABLE IF NOT EXISTS rows (
    key TEXT PRIMARY KEY, email TEXT NOT NULL, line INTEGER NOT NULL, status TEXT NOT NULL,
    updated_at TEXT NOT NULL, stamp INTEGER NOT NULL, language TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""


def signature_text(signature: FileSignature | None) -> str:
    if signature is None:
        return "missing"
    return f"{signature.device}:{signature.inode}:{signature.size}:{signature.mtime_ns}"


def row_stamp(raw: str) -> int:
    """A 63-bit digest of a row's exact text: tells a hand-edited row from the one indexed."""
    digest = hashlib.blake2b(raw.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


Entry = tuple[str, str, int, str, str, int, str]


def index_entry(row: SubscriberRow) -> Entry | None:
    """The index row of a CSV record (None for a record without a valid address)."""
    if row.key is None:
        return None
    sub = row.subscriber
    if sub is None:  # a row with problems: listed, never sent to
        return (row.key, row.key, row.line, "problem", "", row_stamp(row.raw), "")
    stamp = row_stamp(row.raw)
    return (sub.key, sub.email, row.line, sub.status, sub.updated_at, stamp, sub.language)


class RowIndex:
    """The index file; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self.rebuild_lock = threading.Lock()
        self._ready_lock = threading.Lock()
        self._ready = False

    def connection(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            with self._ready_lock:
                if not self._ready:
                    conn = open_database(self.path, _SCHEMA, what="the subscriber index")
                    conn.execute("PRAGMA synchronous=NORMAL")  # derived data: rebuilt if lost
                    self._ready = True
            if conn is None:
                conn = reconnect(self.path, "NORMAL", what="the subscriber index")
            self._local.conn = conn
        return conn

    def meta(self) -> tuple[str, int, str]:
        """(signature of the file indexed, ledger seq it includes, path of that file)."""
        values = dict(self.connection().execute("SELECT name, value FROM meta").fetchall())
        return values.get("signature", ""), int(values.get("seq", "0")), values.get("path", "")

    def lookup(self, key: str) -> RowState | None:
        sql = "SELECT email, status, updated_at, line, language FROM rows WHERE key = ?"
        row = self.connection().execute(sql, (key,)).fetchone()
        return RowState(*row) if row else None

    def count(self) -> int:
        return int(self.connection().execute("SELECT COUNT(*) FROM rows").fetchone()[0])

    def begin_rebuild(self) -> IndexBuilder:
        return IndexBuilder(self.connection())

    def update(
        self,
        states: Mapping[str, tuple[RowState, int]],
        *,
        signature: str,
        seq: int,
        expected: str,
    ) -> bool:
        """After a fold: the changed rows, if the index was of the file the fold read.

        False (nothing done) when it was not: the index is stale and is rebuilt.
        """
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            held = conn.execute("SELECT value FROM meta WHERE name = 'signature'").fetchone()
            if held is None or held[0] != expected:
                conn.execute("ROLLBACK")
                return False
            conn.executemany(
                "INSERT OR REPLACE INTO rows VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    (key, s.email, s.line, s.status, s.updated_at, stamp, s.language)
                    for key, (s, stamp) in states.items()
                ],
            )
            _set_meta(conn, signature, seq)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return True

    def close(self) -> None:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def _set_meta(conn: sqlite3.Connection, signature: str, seq: int, path: str | None = None) -> None:
    values = [("signature", signature), ("seq", str(seq))]
    if path is not None:
        values.append(("path", path))
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values)


class IndexBuilder:
    """Fills a new table chunk by chunk (each its own short transaction), then swaps."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.batch: list[Entry] = []
        # a name of its own: another process may be rebuilding at the same time
        self.table = f"rows_next_{os.getpid()}_{secrets.token_hex(4)}"
        conn.execute(
            f"CREATE TABLE {self.table} (key TEXT PRIMARY KEY, email TEXT NOT NULL, "
            "line INTEGER NOT NULL, status TEXT NOT NULL, updated_at TEXT NOT NULL, "
            "stamp INTEGER NOT NULL, language TEXT NOT NULL) WITHOUT ROWID"
        )

    def add(self, entry: Entry) -> None:
        self.batch.append(entry)
        if len(self.batch) >= CHUNK:
            self._flush()

    def _flush(self) -> None:
        if self.batch:
            self.conn.execute("BEGIN")
            # the first row of an address is its row (later ones are duplicates)
            self.conn.executemany(
                f"INSERT OR IGNORE INTO {self.table} VALUES (?,?,?,?,?,?,?)", self.batch
            )
            self.conn.execute("COMMIT")
            self.batch.clear()

    def finish(self, *, signature: str, seq: int, path: str) -> None:
        self._flush()
        self.conn.execute("BEGIN IMMEDIATE")
        try:
            self.conn.execute("DROP TABLE rows")
            self.conn.execute(f"ALTER TABLE {self.table} RENAME TO rows")
            _set_meta(self.conn, signature, seq, path)
        except BaseException:
            self.conn.execute("ROLLBACK")
            raise
        self.conn.execute("COMMIT")

    def abandon(self) -> None:
        self.batch.clear()
        self.conn.execute(f"DROP TABLE IF EXISTS {self.table}")
