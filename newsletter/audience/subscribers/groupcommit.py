"""Group commit: concurrent writers share one transaction, so they share one fsync.

With synchronous=FULL every commit waits for the disk (milliseconds). Fifty readers
pressing "unsubscribe" at once would queue for fifty of them; instead the first writer
to arrive leads: it takes every piece of work queued by then, runs each in its own
savepoint inside one transaction, commits once, and wakes the others with their results.
Work that arrives meanwhile forms the next group.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any, Generic, TypeVar, cast

T = TypeVar("T")


class _Slot(Generic[T]):
    """One caller's work in a group, and what became of it."""

    def __init__(self, work: Callable[[sqlite3.Connection], T]) -> None:
        self.work = work
        self.done = False
        self.value: T | None = None
        self.error: BaseException | None = None

    def result(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.value)


class GroupCommit:
    """The queue and the leader of one database's writers."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: list[_Slot[Any]] = []
        self._leading = False

    def run(
        self,
        transaction: Callable[[], AbstractContextManager[sqlite3.Connection]],
        work: Callable[[sqlite3.Connection], T],
    ) -> T:
        """``work(conn)`` committed with whatever else is queued; its result or its error."""
        slot = _Slot(work)
        with self._cond:
            self._queue.append(slot)
            while not slot.done and self._leading:
                self._cond.wait()
            if slot.done:
                return slot.result()
            self._leading = True
            batch, self._queue = self._queue, []
        try:
            with transaction() as conn:
                for item in batch:
                    conn.execute("SAVEPOINT work")
                    try:
                        item.value = item.work(conn)
                    except Exception as exc:  # this caller's error only
                        conn.execute("ROLLBACK TO work")
                        item.error = exc
                    conn.execute("RELEASE work")
        except BaseException as exc:  # the commit failed: nothing of the group is recorded
            for item in batch:
                item.error = item.error or exc
        finally:
            with self._cond:
                for item in batch:
                    item.done = True
                self._leading = False
                self._cond.notify_all()
        return slot.result()
