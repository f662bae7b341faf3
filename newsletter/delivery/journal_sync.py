"""The journal's sync: the subscribers active now matched into the send journal in one
transaction, streamed (:meth:`JournalSync.sync`), from rows or from their JSON text
(:meth:`JournalSync.sync_json`, rows read and encoded by another process)."""

from __future__ import annotations

import json
import queue
import sqlite3
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from newsletter.database import rollback
from newsletter.delivery.collector import fewer_collections

#: rows :meth:`JournalSync.sync` writes per statement
SYNC_CHUNK = 5000
Chunk = str | list[tuple[str, str, str]]


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


class SyncAborted(Exception):
    """The subscriber rows could not all be read: the sync writes nothing."""


@dataclass(frozen=True, slots=True)
class SyncResult:
    added: int
    skipped: int
    restored: int


class JournalSync:
    """The sync of :class:`~.journal.Journal` (a mixin over its connection)."""

    db: sqlite3.Connection

    def sync(self, issue: str, active: Iterable[tuple[str, str, str]]) -> SyncResult:
        """Match the journal to the subscribers active now: ``(key, email, name)`` rows.

        New subscribers are added as pending; pending rows no longer active are skipped;
        skipped rows active again are pending again. Streams: memory stays flat. The
        rows are written by a second thread in chunks of :data:`SYNC_CHUNK` while this
        one reads them (SQLite works without the GIL): the list's parsing and its
        writing overlap, on two cores where there are two.
        """

        def chunks() -> Iterator[list[tuple[str, str, str]]]:
            chunk: list[tuple[str, str, str]] = []
            for row in active:
                chunk.append(row)
                if len(chunk) >= SYNC_CHUNK:
                    yield chunk
                    chunk = []
            if chunk:
                yield chunk

        return self.sync_json(issue, chunks())

    def sync_json(self, issue: str, chunks: Iterable[Chunk]) -> SyncResult:
        """:meth:`sync` from chunks of rows, each a list or its JSON text (rows read and
        encoded by another process): the same transaction, the same result."""
        queued: queue.Queue[Chunk | None] = queue.Queue(maxsize=4)
        done: list[SyncResult | BaseException] = []
        writer = threading.Thread(
            target=self._sync_writer, args=(issue, queued, done), name="journal-sync"
        )
        writer.start()
        try:
            with fewer_collections():
                for chunk in chunks:
                    self._put(queued, chunk, writer)
            self._put(queued, None, writer)  # the end: commit
        except BaseException:
            done.append(SyncAborted())  # the rows could not be read: roll back
            self._put(queued, None, writer)
            writer.join()
            raise
        writer.join()
        if isinstance(done[0], BaseException):
            raise done[0]
        return done[0]

    @staticmethod
    def _put(
        chunks: queue.Queue[Chunk | None],
        item: Chunk | None,
        writer: threading.Thread,
    ) -> None:
        while writer.is_alive():
            try:
                chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    def _sync_writer(
        self,
        issue: str,
        chunks: queue.Queue[Chunk | None],
        done: list[SyncResult | BaseException],
    ) -> None:
        """The writing half of :meth:`sync`, on its own thread and this connection (the
        reading half does not touch the database meanwhile)."""
        db = self.db
        ended = False  # the reading half's last put (None) was taken
        try:
            db.execute(
                "CREATE TEMP TABLE IF NOT EXISTS active_now "
                "(key TEXT NOT NULL PRIMARY KEY, email TEXT NOT NULL, name TEXT NOT NULL)"
            )
            now = _now()
            db.execute("BEGIN IMMEDIATE")
            db.execute("DELETE FROM active_now")
            # An issue's first sync has no rows to skip or restore: its rows go straight
            # in (the same rows, ids and order), not through active_now and its index too.
            first = db.execute(
                "SELECT 1 FROM deliveries WHERE issue = ? LIMIT 1", (issue,)
            ).fetchone() is None
            added, last = 0, 0
            while (chunk := chunks.get()) is not None:
                text = chunk if isinstance(chunk, str) else json.dumps(chunk)
                if first:
                    added += db.execute(
                        "INSERT OR IGNORE INTO deliveries (issue, key, email, name, state, "
                        "updated_at) SELECT ?, json_extract(value, '$[0]'), "
                        "json_extract(value, '$[1]'), json_extract(value, '$[2]'), "
                        "'pending', ? FROM json_each(?) ORDER BY json_each.key",  # list order
                        (issue, now, text),
                    ).rowcount
                    continue
                # one statement a chunk: the GIL is taken back once, not once a row
                db.execute(
                    "INSERT OR IGNORE INTO active_now SELECT json_extract(value, '$[0]'), "
                    "json_extract(value, '$[1]'), json_extract(value, '$[2]') "
                    "FROM json_each(?)",
                    (text,),
                )
                # the new recipients of this chunk now, in list order, while the next
                # chunk is read (not all at the end, when nothing else is left to do)
                added += db.execute(
                    "INSERT OR IGNORE INTO deliveries (issue, key, email, name, state, "
                    "updated_at) SELECT ?, key, email, name, 'pending', ? FROM active_now "
                    "WHERE rowid > ? ORDER BY rowid",
                    (issue, now, last),
                ).rowcount
                (top,) = db.execute("SELECT max(rowid) FROM active_now").fetchone()
                last = top or last
            ended = True
            if done:  # the reading half failed: write nothing
                raise SyncAborted()
            if first:
                db.execute("COMMIT")
                done.append(SyncResult(added, 0, 0))
                return
            skipped = db.execute(
                "UPDATE deliveries SET state = 'skipped', updated_at = ?, "
                "reason = 'no longer active in the subscriber list' "
                "WHERE issue = ? AND state = 'pending' "
                "AND key NOT IN (SELECT key FROM active_now)",
                (now, issue),
            ).rowcount
            restored = db.execute(
                "UPDATE deliveries SET state = 'pending', reason = NULL, updated_at = ? "
                "WHERE issue = ? AND state = 'skipped' AND key IN (SELECT key FROM active_now)",
                (now, issue),
            ).rowcount
            db.execute("DELETE FROM active_now")
            db.execute("COMMIT")
            done.append(SyncResult(added, skipped, restored))
        except BaseException as exc:
            rollback(db)
            if not done:
                done.append(exc)
            while not ended and chunks.get() is not None:  # let the reading half finish
                pass
