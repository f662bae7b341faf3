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

import sys
import time
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import ExitStack
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

from newsletter.delivery.campaign import _file_signature
from newsletter.delivery.collector import fewer_collections
from newsletter.delivery.forked import ForkedCall
from newsletter.delivery.journal import first_claims
from newsletter.delivery.transports.base import LEFT_WHILE_WAITING, Outcome
from newsletter.errors import TransportError

if TYPE_CHECKING:
    from newsletter.delivery.campaign import Campaign, Progress
    from newsletter.delivery.plan import Report

#: journal rows read at once, in requests (each read is one short query)
READ_REQUESTS = 4
#: seconds a thread that wants the GIL waits before asking the holder to let go
SWITCH_INTERVAL = 0.0005
#: requests a send must have (read ahead at its start) for them to be written in a
#: forked child (:mod:`.forked`): a fork costs a few milliseconds
FORK_REQUESTS = 2


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
    ids: list[int]  # the journal rows, in the same order
    prepared: PreparedLike


@dataclass(slots=True)
class _Order:
    """A request given to the writer thread: its journal keys and the request to be."""

    keys: list[str]
    ids: list[int]
    future: Future[PreparedLike]


class AheadLoop:
    """One run of :meth:`.Campaign.run` for a :class:`PreparingTransport`."""

    def __init__(self, campaign: Campaign, report: Report, run_id: int, limit: int | None) -> None:
        self.campaign = campaign
        self.report = report
        self.run_id = run_id
        self.remaining = limit
        self.rows: deque[tuple[int, str, str, str]] = deque()  # (id, key, email, name)
        self.cursor = 0  # the journal id of the last row read
        self.exhausted = False  # no pending row left after the cursor
        self.orders: deque[_Order] = deque()  # being written or written, in journal order
        self.prepare: Callable[[Sequence[tuple[str, str]]], PreparedLike] = (
            campaign.transport.prepare  # type: ignore[attr-defined]
        )

    # Writing ahead ---------------------------------------------------------------------
    def _take(self) -> list[tuple[int, str, str, str]]:
        """The pending rows of the next request (none when the journal has no more)."""
        c = self.campaign
        size = c.transport.batch_size
        if self.remaining is not None:
            size = min(size, self.remaining)
        if size <= 0:
            return []
        if len(self.rows) < size:
            self._read_ahead(size)
        taken = [self.rows.popleft() for _ in range(min(size, len(self.rows)))]
        if self.remaining is not None:
            self.remaining -= len(taken)
        return taken

    def _read_ahead(self, size: int) -> None:
        """The next pending rows from the journal, READ_REQUESTS requests of them."""
        c = self.campaign
        if self.exhausted:
            return
        found = c.journal.pending_rows(c.issue, size * READ_REQUESTS, self.cursor)
        if found:
            self.cursor = found[-1][0]
            self.rows.extend(found)
        else:
            self.exhausted = True

    def _fork_writer(self, stack: ExitStack) -> None:
        """Write the requests in a forked child when the transport allows it and the send
        has FORK_REQUESTS of them (their CPU time then leaves this process's GIL).
        Called before any thread of the loop starts: the child copies a quiet process."""
        transport = self.campaign.transport
        # only a transport whose prepare() is a pure function of the rows says so
        if not getattr(transport, "prepare_in_child", False):
            return
        size = transport.batch_size
        if self.remaining is not None:
            size = min(size, self.remaining)
        if size <= 0:
            return
        self._read_ahead(size)
        if len(self.rows) >= FORK_REQUESTS * size:
            self.prepare = stack.enter_context(ForkedCall(self.prepare))

    def _order(self, writer: ThreadPoolExecutor, ahead: int) -> None:
        """Give the writer thread requests until ``ahead`` are written or being written."""
        prepare = self.prepare
        while len(self.orders) < ahead and not self.campaign.stopping:
            taken = self._take()
            if not taken:
                return
            rows = [(email, name) for _, _, email, name in taken]
            keys = [key for _, key, _, _ in taken]
            ids = [row_id for row_id, _, _, _ in taken]
            self.orders.append(_Order(keys, ids, writer.submit(prepare, rows)))

    def _restart(self) -> None:
        """The file changed and the journal was re-synced: read everything again."""
        if self.remaining is not None:  # rows read ahead were never counted against it
            self.remaining += sum(len(o.keys) for o in self.orders)
        for order in self.orders:
            order.future.cancel()
        self.orders.clear()
        self.rows.clear()
        self.cursor = 0
        self.exhausted = False

    @property
    def _more(self) -> bool:
        """Whether rows may be left to write requests of."""
        left = self.remaining is None or self.remaining > 0
        return left and (bool(self.rows) or not self.exhausted)

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
        keys = [key for i, key in enumerate(request.keys) if i not in drop]
        ids = [row for i, row in enumerate(request.ids) if i not in drop]
        return _Request(keys, ids, request.prepared.without(drop)) if keys else None

    @property
    def _may_start(self) -> bool:
        c = self.campaign
        return not c.stopping and c.transport.fatal is None and c.fatal is None

    def _next_ready(self) -> _Request | None:
        """The next written request, checked against the file and the ledger right now;
        None when none is written yet (or the file changed and all is read again)."""
        c = self.campaign
        while self._may_start and self.orders and self.orders[0].future.done():
            if _file_signature(c.store_path) != c._signature:
                if not c._shrank():
                    self.report.skipped += c._sync()
                    self._restart()
                return None
            order = self.orders.popleft()
            request = self._checked(_Request(order.keys, order.ids, order.future.result()))
            if request is not None:
                return request
        return None

    def run(self, progress: Progress | None, started: float) -> Report:
        """Hand off every pending recipient (at most the limit); the run's report."""
        switch = sys.getswitchinterval()
        # This thread mostly waits on SQLite and sockets while the writer computes: let
        # it have the GIL back soon after each wait, not after the default 5 ms.
        sys.setswitchinterval(SWITCH_INTERVAL)
        try:
            with fewer_collections():
                self._run(progress)
            c = self.campaign
            if c.transport.fatal is not None or c.fatal is not None:
                self.report.fatal = c.transport.fatal or c.fatal
        finally:
            sys.setswitchinterval(switch)
            self.report.stopped = self.campaign.stopping
            self.report.elapsed = time.perf_counter() - started
        return self.report

    def _run(self, progress: Progress | None) -> None:
        c = self.campaign
        transport = c.transport
        slots = max(1, transport.concurrency)
        send = transport.send_prepared  # type: ignore[attr-defined]
        in_flight: dict[Future[list[Outcome]], _Request] = {}
        finished: list[tuple[list[int], list[Outcome]]] = []
        stack = ExitStack()
        self._fork_writer(stack)  # (first: no thread of this loop runs yet)
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=transport.name)
        writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"{transport.name}-write")
        try:
            self._order(writer, slots)
            while True:
                # 1. written requests for the free slots, each checked right before it leaves
                starting: list[_Request] = []
                while len(in_flight) + len(starting) < slots:
                    request = self._next_ready()
                    if request is None:
                        break
                    starting.append(request)
                # 2. one commit: the finished requests' outcomes, the new ones in flight
                outcomes = [
                    pair for ids, batch in finished for pair in zip(ids, batch, strict=True)
                ]
                ids = [i for r in starting for i in r.ids]
                claimed = c.journal.advance_rows(c.issue, outcomes, ids, self.run_id)
                # only rows the journal put in flight leave (it takes pending rows only)
                starting = [r for r in map(partial(_claimed, claimed), starting) if r]
                left = [o.email.lower() for _, o in outcomes if o.reason == LEFT_WHILE_WAITING]
                if left:  # pending again by that commit: skipped, as the loop skips leavers
                    self.report.skipped += c.journal.mark_skipped(c.issue, left)
                for _, batch in finished:
                    c._account(batch, self.report, progress)
                finished.clear()
                # 3. on the wire
                for request in starting:
                    in_flight[pool.submit(send, request.prepared)] = request
                self._order(writer, slots)  # the writer works while these wait
                # 4. wait for an answer, or for the next request to be written
                waiting: set[Future[Any]] = set(in_flight)
                if self.orders and len(in_flight) < slots and self._may_start:
                    waiting.add(self.orders[0].future)
                if not waiting:
                    if self._may_start and (self.orders or self._more):
                        continue  # the file changed: the requests are written again
                    break
                done, _ = wait(waiting, return_when=FIRST_COMPLETED)
                failure: BaseException | None = None
                for future in done:
                    if future not in in_flight:
                        continue  # a written request: handed off at the top
                    request = in_flight.pop(future)
                    error = future.exception()
                    if error is None and len(future.result()) != len(request.ids):
                        error = TransportError(  # a transport bug: be honest about it
                            f"{transport.name}: returned {len(future.result())} outcomes "
                            f"for {len(request.ids)}"
                        )
                    if error is not None:
                        c.journal.mark_uncertain(c.issue, request.keys)
                        failure = failure or error
                    else:  # one outcome per recipient, in order: the rows are the request's
                        finished.append((request.ids, future.result()))
                if failure is not None:
                    raise failure
        except BaseException:
            # Killed mid hand-off (second Ctrl-C, a bug): what is in flight is uncertain,
            # what finished is recorded.
            c.stop()
            c.journal.record(c.issue, [o for _, batch in finished for o in batch])
            for request in in_flight.values():
                c.journal.mark_uncertain(c.issue, request.keys)
            raise
        finally:
            writer.shutdown(wait=False, cancel_futures=True)
            pool.shutdown(wait=False, cancel_futures=True)
            stack.close()  # the writing child, if any, ends


def _claimed(claimed: set[int], request: _Request) -> _Request | None:
    """``request`` less the rows the journal did not put in flight, each row once (taken
    out of ``claimed``); None when none is left."""
    keep = first_claims(request.ids, claimed)
    if len(keep) == len(request.ids):
        return request
    if not keep:
        return None
    drop = set(range(len(request.ids))) - set(keep)
    ids, keys = [request.ids[n] for n in keep], [request.keys[n] for n in keep]
    return _Request(keys, ids, request.prepared.without(drop))
