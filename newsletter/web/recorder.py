"""The web's unsubscribes, recorded in the consent ledger by one thread, in batches.

A burst of readers pressing "unsubscribe" (or a provider's RFC 8058 POSTs) used to take
one worker thread each from the pool: each thread opened its own SQLite connections,
and every SQLite call let go of the interpreter lock and waited for it again, behind the
event loop, so fifty of them queued far longer than their work took.
:class:`UnsubscribeRecorder` has one thread with one connection: it takes every
unsubscribe waiting when it wakes and records them together (one ledger transaction,
one fsync: :func:`record_unsubscribes`);
those that arrive meanwhile form the next batch. Each caller's answer comes when the
batch's commit is durable, as before. A batch that fails is retried one address at a
time, so one bad address cannot fail the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers.addresses import address_key

if TYPE_CHECKING:
    from newsletter.audience.subscribers.store import SubscriberStore


@dataclass(slots=True)
class _Waiting:
    email: str
    note: str
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[bool]


def _settle(future: asyncio.Future[bool], value: bool | BaseException) -> None:
    if future.done():  # the caller went away (a cancelled request)
        return
    if isinstance(value, BaseException):
        future.set_exception(value)
    else:
        future.set_result(value)


class UnsubscribeRecorder:
    """Records unsubscribes from one thread, batching those that wait together."""

    def __init__(
        self,
        store: SubscriberStore,
        *,
        record: Callable[..., set[str]] | None = None,
        idle: float | None = 60.0,
    ) -> None:
        self.store = store
        #: seconds without work before the thread ends (the next caller starts another);
        #: None: it runs until :meth:`stop` (as :meth:`start` leaves it)
        self.idle = idle
        self._given = record
        self._cond = threading.Condition()
        self._waiting: list[_Waiting] = []
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = 0  # transactions written (for tests and the bench)

    def start(self) -> None:
        """Start the thread for good and open its connections now (``serve``'s start-up):
        a burst must not wait for them (the first batches took about 100 ms without)."""
        with self._cond:
            self.idle = None
            self._start_thread(warm=True)

    async def unsubscribe(self, email: str, note: str) -> bool:
        """Record the unsubscribe; True if the address is on the list. Durable on return."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[bool] = loop.create_future()
        with self._cond:
            self._start_thread(warm=False)
            self._waiting.append(_Waiting(email, note, loop, future))
            self._cond.notify()
        return await future

    def _start_thread(self, *, warm: bool) -> None:
        if self._thread is None:
            self._stopping = False
            self._thread = threading.Thread(
                target=self._run, args=(warm,), name="newsletter-unsubscribes", daemon=True
            )
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Finish what waits, then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _run(self, warm: bool) -> None:
        if warm and self.store.live is not None:
            # this thread's connections to the ledger and the index, and their first pages
            with contextlib.suppress(Exception):
                self.store.live.state("")
        while True:
            with self._cond:
                while not self._waiting and not self._stopping:
                    if not self._cond.wait(self.idle) and not self._waiting:
                        break
                if not self._waiting:  # stopped, or idle: the next caller starts a thread
                    self._thread = None
                    return
                batch, self._waiting = self._waiting, []
            for item, value in self._write(batch):
                with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits
                    item.loop.call_soon_threadsafe(_settle, item.future, value)

    def _record(self, store: SubscriberStore, changes: dict[str, tuple[str, str]]) -> set[str]:
        # looked up at each call, so a test can count the writes
        return (self._given or record_unsubscribes)(store, changes)

    def _write(self, batch: list[_Waiting]) -> list[tuple[_Waiting, bool | BaseException]]:
        changes: dict[str, tuple[str, str]] = {}
        for item in batch:
            changes.setdefault(item.email, ("unsubscribed", item.note))
        try:
            found = self._record(self.store, changes)
            self.batches += 1
            return [(item, _key(item.email) in found) for item in batch]
        except Exception as exc:
            if len(changes) == 1:
                return [(item, exc) for item in batch]
        # a failed batch: each address alone, so one bad address does not fail the rest
        done: list[tuple[_Waiting, bool | BaseException]] = []
        for item in batch:
            try:
                found = self._record(self.store, {item.email: ("unsubscribed", item.note)})
                self.batches += 1
                done.append((item, bool(found)))
            except Exception as exc:
                done.append((item, exc))
        return done


def record_unsubscribes(store: SubscriberStore, changes: Mapping[str, tuple[str, str]]) -> set[str]:
    """Record ``{email: ("unsubscribed", note)}`` in one transaction; the keys found in
    the list. As :func:`~newsletter.audience.events.apply_suppressions` (the same source
    recorded), but decided inside the transaction only: replays of a done unsubscribe are
    answered before they get here, so a first look outside it would be read twice."""
    live = store.live
    if live is None:
        return apply_suppressions(store, changes)
    before = live.suppress(
        changes, only_open=False, source="webhook", at=store.clock(), precheck=False
    )
    return {key for key, status in before.items() if status is not None}


def _key(email: str) -> str:
    try:
        return address_key(email)
    except ValueError:
        return email.lower()
