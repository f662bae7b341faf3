"""The index of the CSV: address key -> line, status, last change, language.

Derived data (rebuilt whenever the file's :class:`~.lockedfile.FileSignature` changes,
so it may be lost at any time): it lets a web request answer from one indexed look-up
instead of reading a million-row file.

A rebuild writes a new SQLite file, ``state_dir/index-<generation>.sqlite3``, with
what a bulk load wants and a live database must not have (no journal, no fsync until
the end, the table filled in one transaction, its index created after), then points
``state_dir/index.current`` at it by an atomic rename. Readers keep the old file until
their next look-up sees the new pointer; nothing ever rewrites a file a reader has
open. Rebuilds take ``index.lock`` (one at a time across processes) and delete the
generations before the one they replace.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Final

from newsletter.audience.subscribers.ledger import RowState
from newsletter.errors import NewsletterError
from newsletter.files import fsync_dir

if TYPE_CHECKING:
    import filelock

    from newsletter.audience.subscribers.lockedfile import FileSignature
    from newsletter.audience.subscribers.scan import Entry

#: The pointer to the current generation (its name keys the process's shared RowIndex).
INDEX_NAME: Final = "index.current"
_PREFIX: Final = "index-"
_SCHEMA: Final = """
CREATE TABLE rows (key TEXT NOT NULL, line INTEGER NOT NULL, state TEXT NOT NULL);
CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
"""
#: The first row of an address is its row (a later one is a duplicate with problems).
_LOOKUP: Final = "SELECT line, state FROM rows WHERE key = ? ORDER BY line LIMIT 1"


def pack(state: RowState) -> str:
    """A row's state as one text: ``status, updated_at, email ('' when it is the key),
    language``, tab-separated (a bulk load binds one value, not four: half its time).
    Only the language, last, could hold a tab."""
    email = "" if state.email == state.email.lower() else state.email
    return f"{state.status}\t{state.updated_at}\t{email}\t{state.language}"


def unpack(key: str, line: int, packed: str) -> RowState:
    status, updated_at, email, language = packed.split("\t", 3)
    return RowState(email or key, status, updated_at, line, language)


def signature_text(signature: FileSignature | None) -> str:
    if signature is None:
        return "missing"
    return f"{signature.device}:{signature.inode}:{signature.size}:{signature.mtime_ns}"


def _error(path: Path, exc: BaseException) -> NewsletterError:
    return NewsletterError(f"{path}: the subscriber index: {exc}")


class _Local(threading.local):
    conn: sqlite3.Connection | None = None
    pointer: tuple[int, int, int] | None = None  # the pointer file's stat when connected


class RowIndex:
    """The current generation of the index; one connection per thread."""

    def __init__(self, path: Path) -> None:
        self.path = path  # the pointer file
        self.folder = path.parent
        self._local = _Local()
        self.rebuild_lock = threading.Lock()

    @property
    def lock_path(self) -> Path:
        return self.folder / "index.lock"

    def _pointer(self) -> tuple[tuple[int, int, int] | None, str]:
        try:
            st = self.path.stat()
            name = self.path.read_text(encoding="utf-8").strip()
        except FileNotFoundError:
            return None, ""
        return (st.st_ino, st.st_mtime_ns, st.st_size), name

    def connection(self) -> sqlite3.Connection | None:
        """This thread's connection to the current generation (None: no index yet)."""
        local = self._local
        for _attempt in range(3):
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self.close()
                return None
            if local.conn is not None and local.pointer == (st.st_ino, st.st_mtime_ns, st.st_size):
                return local.conn
            self.close()
            pointer, name = self._pointer()
            if pointer is None:
                return None
            try:  # mode=rw: never create a generation a rebuild just deleted
                uri = (self.folder / name).as_uri() + "?mode=rw"
                conn = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0)
                conn.execute("PRAGMA synchronous=NORMAL")  # derived data: rebuilt if lost
            except sqlite3.Error:
                continue  # replaced meanwhile: read the pointer again
            local.conn, local.pointer = conn, pointer
            return conn
        return None

    def meta(self) -> tuple[str, int, str]:
        """(signature of the file indexed, ledger seq it includes, path of that file)."""
        conn = self.connection()
        if conn is None:
            return "", 0, ""
        try:
            values = dict(conn.execute("SELECT name, value FROM meta").fetchall())
        except sqlite3.Error:
            return "", 0, ""  # unreadable: treated as never built, so it is rebuilt
        return values.get("signature", ""), int(values.get("seq", "0")), values.get("path", "")

    def lookup(self, key: str) -> RowState | None:
        conn = self.connection()
        if conn is None:
            return None
        row = conn.execute(_LOOKUP, (key,)).fetchone()
        return unpack(key, *row) if row else None

    def count(self) -> int:
        conn = self.connection()
        if conn is None:
            return 0
        return int(conn.execute("SELECT COUNT(DISTINCT key) FROM rows").fetchone()[0])

    def update(
        self,
        states: Mapping[str, RowState],
        *,
        signature: str,
        seq: int,
        expected: str,
    ) -> bool:
        """After a fold: the changed rows, if the index was of the file the fold read.

        False (nothing done) when it was not: the index is stale and is rebuilt.
        """
        conn = self.connection()
        if conn is None:
            return False
        conn.execute("BEGIN IMMEDIATE")
        try:
            held = conn.execute("SELECT value FROM meta WHERE name = 'signature'").fetchone()
            if held is None or held[0] != expected:
                conn.execute("ROLLBACK")
                return False
            conn.executemany("DELETE FROM rows WHERE key = ?", [(key,) for key in states])
            conn.executemany(
                "INSERT INTO rows VALUES (?, ?, ?)",
                [(key, s.line, pack(s)) for key, s in states.items()],
            )
            _set_meta(conn, signature, seq)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return True

    def forget(self, key: str) -> None:
        """Drop an address purged from the file, so the next rebuild does not take its row
        for one deleted by hand (and keep a suppression for it)."""
        conn = self.connection()
        if conn is not None:
            conn.execute("DELETE FROM rows WHERE key = ?", (key,))

    def rebuild(
        self, entries: Iterable[Entry], *, signature: str, seq: int, path: str
    ) -> list[tuple[str, str, str]]:
        """A new generation holding ``entries``, then the pointer moved to it (the caller
        holds :meth:`locked`). Returns the suppressed rows of the previous generation (of
        the same file) that the new one lacks: ``(key, email, status)``, rows deleted by
        hand whose suppression must outlive them."""
        import secrets  # here: a command that only reads the index never needs it

        name = f"{_PREFIX}{time.time_ns():x}-{os.getpid()}-{secrets.token_hex(3)}.sqlite3"
        target = self.folder / name
        self.folder.mkdir(parents=True, exist_ok=True)
        _, current = self._pointer()
        try:
            _build(target, entries, signature=signature, seq=seq, path=path)
            vanished = _vanished(target, self.folder / current, path) if current else []
            tmp = self.folder / f".{INDEX_NAME}.{secrets.token_hex(4)}"
            with tmp.open("w", encoding="utf-8") as out:
                out.write(name + "\n")
                out.flush()
                os.fsync(out.fileno())
            _, previous = self._pointer()
            os.replace(tmp, self.path)
            fsync_dir(self.folder)
        except BaseException:
            _remove(target)
            raise
        self._sweep(keep={name, previous})
        return vanished

    def _sweep(self, keep: set[str]) -> None:
        """Delete generations older than the last two (a reader may still be opening the
        previous one; older ones have no reader left that has not seen the pointer move)."""
        for old in self.folder.glob(f"{_PREFIX}*.sqlite3"):
            if old.name not in keep:
                _remove(old)
        (self.folder / "index.sqlite3").unlink(missing_ok=True)  # the single-file layout
        for suffix in ("-wal", "-shm"):
            (self.folder / f"index.sqlite3{suffix}").unlink(missing_ok=True)

    def locked(self, timeout: float = 300.0) -> filelock.BaseFileLock:
        """The lock one rebuild holds (across processes)."""
        import filelock  # (start-up: a command that only reads never rebuilds)

        self.folder.mkdir(parents=True, exist_ok=True)
        return filelock.FileLock(str(self.lock_path), timeout=timeout)

    def close(self) -> None:
        local = self._local
        if local.conn is not None:
            local.conn.close()
        local.conn, local.pointer = None, None


def _set_meta(conn: sqlite3.Connection, signature: str, seq: int, path: str | None = None) -> None:
    values = [("signature", signature), ("seq", str(seq))]
    if path is not None:
        values.append(("path", path))
    conn.executemany("INSERT OR REPLACE INTO meta VALUES (?, ?)", values)


def _build(target: Path, entries: Iterable[Entry], *, signature: str, seq: int, path: str) -> None:
    """Fill a new file: no journal and no fsync while loading (a crash leaves a file no
    pointer names), rows in one transaction, the look-up index created after them."""
    try:
        conn = sqlite3.connect(str(target), isolation_level=None)
    except sqlite3.Error as exc:
        raise _error(target, exc) from exc
    try:
        conn.execute("PRAGMA journal_mode=OFF")
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-32000")  # 32 MB: the sort for the index after
        conn.execute("BEGIN")
        for statement in _SCHEMA.split(";"):
            if statement.strip():
                conn.execute(statement)
        conn.executemany("INSERT INTO rows VALUES (?, ?, ?)", entries)
        conn.execute("CREATE INDEX rows_by_key ON rows (key, line)")
        _set_meta(conn, signature, seq, path)
        conn.execute("COMMIT")
        conn.execute("PRAGMA journal_mode=WAL")  # readers and the fold's updates from now on
    except sqlite3.Error as exc:
        raise _error(target, exc) from exc
    finally:
        conn.close()
    fd = os.open(target, os.O_RDONLY)
    try:
        os.fsync(fd)  # durable before the pointer names it
    finally:
        os.close(fd)


def _vanished(target: Path, previous: Path, path: str) -> list[tuple[str, str, str]]:
    """Suppressed rows of ``previous`` (an index of ``path`` too) that ``target`` lacks."""
    try:
        conn = sqlite3.connect(str(target), isolation_level=None)
    except sqlite3.Error as exc:
        raise _error(target, exc) from exc
    try:
        conn.execute("ATTACH DATABASE ? AS old", (previous.as_uri() + "?mode=ro",))
        held = conn.execute("SELECT value FROM old.meta WHERE name = 'path'").fetchone()
        if held is None or held[0] != path:
            return []
        found = conn.execute(
            "SELECT o.key, o.line, o.state FROM old.rows AS o "
            "WHERE substr(o.state, 1, 4) IN ('unsu', 'boun', 'comp') "
            "AND NOT EXISTS (SELECT 1 FROM main.rows AS m WHERE m.key = o.key)"
        ).fetchall()
        states = [(k, unpack(k, line, packed)) for k, line, packed in found]
        return [(k, s.email, s.status) for k, s in states]
    except sqlite3.Error:
        return []  # no previous generation to compare with (deleted, or unreadable)
    finally:
        conn.close()


def _remove(target: Path) -> None:
    for suffix in ("", "-wal", "-shm", "-journal"):
        with contextlib.suppress(FileNotFoundError):
            Path(f"{target}{suffix}").unlink()
