"""The send loop for transports that write whole requests ahead (SendGrid).

:meth:`.Campaign.run` hands this loop a transport that offers ``prepare(rows)`` and
``send_prepared(request)``. Up to ``concurrency`` requests are in flight, each on a
thread of its own that only speaks HTTP; this thread does everything else, and uses the
time the requests spend waiting for their answers to read the next rows from the journal
and write their requests (the per-recipient tokens and JSON). When a slot frees, what
stands between the next request and the wire is what must: the consent ledger asked
about its recipients right then, and one commit that records the finished requests'
outcomes and marks the next one ``in_flight`` (a group commit: one fsync). So a kill -9
leaves in doubt at most the requests in flight, exactly as the general loop does.

A request written before the subscriber file changed is thrown away and written again
from the journal after the re-sync (it may name someone who is now skipped).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from newsletter.delivery.campaign import _file_signature
from newsletter.delivery.transports.base import Outcome
from newsletter.errors import TransportError

if TYPE_CHECKING:
    from newsletter.delivery.campaign import Campaign, Progress
    from newsletter.delivery.plan import Report

#: journal rows read at once, in requests (each read is one short query)
READ_REQUESTS = 4


class PreparedLike(Protocol):
    emails: list[str]

    def __len__(self) -> int: ...
    def without(self, drop: set[int]) -> PreparedLike: ...


class PreparingTransport(Protocol):
    """What this loop needs of a transport beyond :class:`.Transport`."""

    def prepare(self, rows: Sequence[tuple[str, str]]) -> PreparedLike: ...
    def send_prepared(self, prepared: PreparedLike) -> list[Outcome]: ...


@dataclass(slots=True)
class _Request:
    keys: list[str]
    prepared: PreparedLike


class AheadLoop:
    """One run of :meth:`.Campaign.run` for a :class:`PreparingTransport`."""

    def __init__(self, campaign: Campaign, report: Report, run_id: int, limit: int | None) -> None:
        self.campaign = campaign
        self.report = report
        self.run_id = run_id
        self.remaining = limit
        self.rows: deque[tuple[str, str, str]] = deque()  # (key, email, name) read ahead
        self.cursor = 0  # the journal id of the last row read
        self.exhausted = False  # no pending row left after the cursor
        self.ready: deque[_Request] = deque()  # written, not yet checked nor in flight

    # Writing ahead ---------------------------------------------------------------------
    def _read(self, size: int) -> None:
        c = self.campaign
        found = c.journal.pending_rows(c.issue, size * READ_REQUESTS, self.cursor)
        if found:
            self.cursor = found[-1][0]
            self.rows.extend((key, email, name) for _, key, email, name in found)
        else:
            self.exhausted = True

    def write_one(self) -> bool:
        """Write the next request from the journal's pending rows; False if none is left."""
        transport = self.campaign.transport
        size = transport.batch_size
        if self.remaining is not None:
            size = min(size, self.remaining)
        if size <= 0:
            return False
        if len(self.rows) < size and not self.exhausted:
            self._read(size)
        if not self.rows:
            return False
        taken = [self.rows.popleft() for _ in range(min(size, len(self.rows)))]
        if self.remaining is not None:
            self.remaining -= len(taken)
        prepared = transport.prepare([(email, name) for _, email, name in taken])  # type: ignore[attr-defined]
        self.ready.append(_Request([key for key, _, _ in taken], prepared))
        return True

    def restart(self) -> None:
        """The file changed and the journal was re-synced: read everything again."""
        if self.remaining is not None:
            self.remaining += sum(len(r.keys) for r in self.ready) + len(self.rows)
        self.ready.clear()
        self.rows.clear()
        self.cursor = 0
        self.exhausted = False

    @property
    def can_write(self) -> bool:
        return (bool(self.rows) or not self.exhausted) and (
            self.remaining is None or self.remaining > 0
        )

    # Handing off -----------------------------------------------------------------------
    def _checked(self, request: _Request) -> _Request | None:
        """``request`` less whoever the ledger says left the list, asked right now."""
        c = self.campaign
        held_of = getattr(c.store, "held", None)
        gone = held_of(request.keys) if held_of is not None else set()
        if not gone:
            return request
        self.report.skipped += c.journal.mark_skipped(c.issue, sorted(gone))
        if self.remaining is not None:
            self.remaining += len(gone)  # not handed off: the limit may take others
        drop = {i for i, key in enumerate(request.keys) if key in gone}
        keys = [key for key in request.keys if key not in gone]
        return _Request(keys, request.prepared.without(drop)) if keys else None

    def _next_checked(self) -> _Request | None:
        """The next request to hand off, checked against the file and the ledger."""
        c = self.campaign
        while not c.stopping and c.transport.fatal is None and c.fatal is None:
            if _file_signature(c.store_path) != c._signature:
                if c._shrank():
                    return None
                self.report.skipped += c._sync()
                self.restart()
            if not self.ready and not self.write_one():
                return None
            request = self._checked(self.ready.popleft())
            if request is not None:
                return request
        return None

    def run(self, progress: Progress | None, started: float) -> Report:
        """Hand off every pending recipient (at most the limit); the run's report."""
        try:
            self._run(progress)
            c = self.campaign
            if c.transport.fatal is not None or c.fatal is not None:
                self.report.fatal = c.transport.fatal or c.fatal
        finally:
            self.report.stopped = self.campaign.stopping
            self.report.elapsed = time.perf_counter() - started
        return self.report

    def _run(self, progress: Progress | None) -> None:
        c = self.campaign
        transport = c.transport
        slots = max(1, transport.concurrency)
        send = transport.send_prepared  # type: ignore[attr-defined]
        in_flight: dict[Future[list[Outcome]], list[str]] = {}
        finished: list[list[Outcome]] = []
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=transport.name)
        try:
            while True:
                # 1. requests for the free slots, each checked right before it leaves
                starting: list[_Request] = []
                while len(in_flight) + len(starting) < slots:
                    request = self._next_checked()
                    if request is None:
                        break
                    starting.append(request)
                # 2. one commit: the finished requests' outcomes, the new ones in flight
                outcomes = [o for batch in finished for o in batch]
                keys = [k for r in starting for k in r.keys]
                c.journal.advance(c.issue, outcomes, keys, self.run_id)
                for batch in finished:
                    c._account(batch, self.report, progress)
                finished.clear()
                # 3. on the wire
                for request in starting:
                    in_flight[pool.submit(send, request.prepared)] = request.keys
                if not in_flight:
                    break
                # 4. write the next requests while these wait for their answers
                done: set[Future[list[Outcome]]] = set()
                while len(self.ready) < slots and self.can_write and not c.stopping:
                    self.write_one()
                    done = {f for f in in_flight if f.done()}
                    if done:
                        break
                if not done:
                    done, _ = wait(in_flight, return_when=FIRST_COMPLETED)
                failure: BaseException | None = None
                for future in done:
                    keys = in_flight.pop(future)
                    error = future.exception()
                    if error is None and len(future.result()) != len(keys):
                        error = TransportError(  # a transport bug: be honest about it
                            f"{transport.name}: returned {len(future.result())} outcomes "
                            f"for {len(keys)}"
                        )
                    if error is not None:
                        c.journal.mark_uncertain(c.issue, keys)
                        failure = failure or error
                    else:
                        finished.append(future.result())
                if failure is not None:
                    raise failure
        except BaseException:
            # Killed mid hand-off (second Ctrl-C, a bug): what is in flight is uncertain,
            # what finished is recorded.
            c.stop()
            c.journal.record(c.issue, [o for batch in finished for o in batch])
            for keys in in_flight.values():
                c.journal.mark_uncertain(c.issue, keys)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
