"""A streamed send: the transport drives, the campaign journals (:func:`run_streamed`).

A transport that keeps many messages moving on one thread (the pipelined SMTP engine,
:mod:`.transports.smtp_pipeline`) pulls recipients from a :class:`Feed` and hands back
outcomes; the feed keeps the campaign's guarantees:

* ``take(n)``: the next recipients, read ahead from the journal; whoever the consent
  ledger holds is skipped, asked per small window (the transport's concurrency) right
  before the window's messages leave; a changed subscriber file is re-read first.
* ``commit(outcomes, in_flight)``: one transaction records the outcomes known so far and
  marks ``in_flight`` the recipients whose message is about to leave. The transport sends
  a message only after it is committed in flight, and holds at most one in flight per
  connection, so after a kill -9 at most ``concurrency`` recipients are in doubt.
"""

from __future__ import annotations

import contextlib
import queue
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from newsletter.delivery.journal import NO_CHECKPOINT, Journal, first_claims
from newsletter.delivery.plan import Report
from newsletter.delivery.transports.base import Outcome, RecipientLike, Status

if TYPE_CHECKING:

    from newsletter.delivery.campaign import Campaign, Progress
    from newsletter.delivery.journal import Delivery

#: seconds a busy thread keeps the GIL from the journal thread, at most (during a send)
SWITCH_INTERVAL = 0.0002
#: seconds a window's ledger check stays good: older (every connection was reopening,
#: a backoff of up to a minute), the ledger is asked again before the window leaves
CHECK_FRESH_FOR = 1.0


class Feed:
    """The campaign's side of a streamed run (see the module docstring)."""

    def __init__(
        self,
        campaign: Campaign,
        report: Report,
        *,
        run_id: int,
        limit: int | None,
        progress: Progress | None,
        window: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.campaign = campaign
        self._clock = clock
        self.report = report
        self.run_id = run_id
        self.progress = progress
        self.window = max(1, window)
        self._remaining = limit
        self._queue: deque[Delivery] = deque()  # pending rows read ahead, journal order
        self._ready: deque[tuple[str, RecipientLike]] = deque()  # ledger-checked
        self._checked_at = 0.0  # when the ledger was asked about ``_ready`` (one window)
        self._cursor = 0
        self._exhausted = False
        self._since_check = 0
        #: keys committed in flight whose outcome is not committed yet
        self.in_flight: set[str] = set()
        #: every key handed out this run: a re-read after the list changed (from the
        #: journal's start) must not hand out again one the engine still holds
        self._taken: set[str] = set()
        self._writer = _JournalWriter(campaign.journal, campaign.issue, run_id)
        self._submitted: _Work | None = None

    @property
    def stopping(self) -> bool:
        c = self.campaign
        return c.stopping or c.fatal is not None or c.transport.fatal is not None

    def take(self, n: int) -> list[tuple[str, RecipientLike]]:
        """Up to ``n`` (key, recipient) pairs, none held by the ledger; [] when done."""
        out: list[tuple[str, RecipientLike]] = []
        while len(out) < n and not self.stopping:
            if not self._ready and not self._fill():
                break
            if self._clock() - self._checked_at > CHECK_FRESH_FOR:
                self._check_ready_again()
                continue
            out.append(self._ready.popleft())
        return out

    def _check_ready_again(self) -> None:
        """Ask the ledger again about the window waiting in ``_ready``: it was checked
        before a wait (every connection reopening), and whoever left meanwhile is skipped."""
        held_of = getattr(self.campaign.store, "held", None)
        gone = held_of([key for key, _ in self._ready]) if held_of is not None else set()
        if gone:
            c = self.campaign
            self.report.skipped += c.journal.mark_skipped(c.issue, sorted(gone))
            self._ready = deque(item for item in self._ready if item[0] not in gone)
        self._checked_at = self._clock()

    def _fill(self) -> bool:
        """The next window of recipients, checked against the ledger now."""
        from newsletter.delivery.campaign import READ_AHEAD, RECHECK_EVERY, _file_signature

        c = self.campaign
        while not self._ready:
            if self._exhausted or (self._remaining is not None and self._remaining <= 0):
                return False
            # the subscriber file is looked at every RECHECK_EVERY recipients (a stat per
            # message would cost more than the send)
            if self._since_check <= 0:
                self._since_check = RECHECK_EVERY
                if _file_signature(c.store_path) != c._signature:
                    if c._shrank():
                        return False
                    self.report.skipped += c._sync()
                    self._queue.clear()  # read ahead before the change: read again
                    self._cursor = 0
            size = self.window if self._remaining is None else min(self.window, self._remaining)
            if len(self._queue) < size:
                more = c.journal.next_pending(c.issue, max(size * 4, READ_AHEAD), self._cursor)
                if more:
                    self._cursor = more[-1].id
                    self._queue.extend(more)
            if not self._queue:
                self._exhausted = True
                return False
            rows = [self._queue.popleft() for _ in range(min(size, len(self._queue)))]
            self._since_check -= len(rows)
            rows = [row for row in rows if row.key not in self._taken]
            rows = c._still_subscribed(rows, self.report)  # the ledger, right now
            self._checked_at = self._clock()
            self._taken.update(row.key for row in rows)
            if self._remaining is not None:
                self._remaining -= len(rows)
            self._ready.extend((row.key, c.make_recipient(row.email, row.name)) for row in rows)
        return True

    def still_subscribed(self, key: str) -> bool:
        """Asked again of a recipient about to be tried again after a wait."""
        held_of = getattr(self.campaign.store, "held", None)
        if held_of is None or not held_of([key]):
            return True
        self.report.skipped += self.campaign.journal.mark_skipped(self.campaign.issue, [key])
        return False

    # Commits ------------------------------------------------------------------------
    def commit(
        self,
        outcomes: Sequence[Outcome],
        in_flight: Sequence[str],
        released: Sequence[Outcome] = (),
    ) -> None:
        """One transaction, now, on this thread: ``outcomes`` recorded, ``in_flight``
        marked before they leave, ``released`` (not sent after all, or refused for now and
        to be tried again) pending again and not reported."""
        if not outcomes and not in_flight and not released:
            return
        c = self.campaign
        claimed = c.journal.advance(c.issue, [*outcomes, *released], in_flight, self.run_id)
        self._committed(outcomes, _claimed(in_flight, claimed), released)

    @property
    def busy(self) -> bool:
        """A commit is under way in the journal thread."""
        return self._submitted is not None

    @property
    def wakeup(self) -> socket.socket:
        """Readable when the commit under way is done (for a selector)."""
        return self._writer.wake_r

    def submit(
        self, outcomes: Sequence[Outcome], in_flight: Sequence[str], released: Sequence[Outcome]
    ) -> None:
        """Start :meth:`commit`'s transaction in the journal thread: its fsync no longer
        holds up the connections (one commit at a time; see :meth:`completed`)."""
        assert self._submitted is None
        work = (list(outcomes), list(in_flight), list(released))
        self._submitted = work
        self._writer.put(work)

    def completed(self) -> list[str]:
        """The keys the commit just done put in flight (their bodies may leave now; a key
        it did not, such as a second copy, must not); the outcomes it recorded are
        counted. Raises what the commit raised."""
        self._writer.drain()
        if self._submitted is None or not self._writer.results:
            return []
        return self._finish(self._writer.results.popleft())

    def settle(self) -> list[str] | None:
        """Wait for the commit under way, if any: the keys it put in flight."""
        if self._submitted is None:
            return None
        return self._finish(self._writer.wait())

    def _finish(self, result: BaseException | set[str]) -> list[str]:
        work, self._submitted = self._submitted, None
        assert work is not None
        if isinstance(result, BaseException):
            raise result
        outcomes, in_flight, released = work
        claimed = _claimed(in_flight, result)
        self._committed(outcomes, claimed, released)
        return claimed

    def _committed(
        self, outcomes: Sequence[Outcome], in_flight: Sequence[str], released: Sequence[Outcome]
    ) -> None:
        self.in_flight.difference_update(o.email.strip().lower() for o in outcomes)
        self.in_flight.difference_update(o.email.strip().lower() for o in released)
        self.in_flight.update(in_flight)
        if outcomes:
            c = self.campaign
            done = list(outcomes)
            self.report.attempted += sum(o.status is not Status.NOT_ATTEMPTED for o in done)
            self.report.add(done)
            c._mark_bounced(done, self.report)
            if self.progress is not None:
                self.progress(done)

    def close(self) -> None:
        self._writer.close()


def _claimed(in_flight: Sequence[str], claimed: set[str]) -> list[str]:
    return [in_flight[n] for n in first_claims(in_flight, set(claimed))]


class _JournalWriter:
    """A thread with its own connection to the journal that runs one commit at a time
    (SQLite waits for the disk without the GIL, so the engine goes on meanwhile)."""

    def __init__(self, journal: Journal, issue: str, run_id: int) -> None:
        self.path, self.issue, self.run_id = journal.path, issue, run_id
        self.before_first_hand_off = journal.before_first_hand_off  # (called once at most)
        self.wake_r, self._wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self._work: queue.SimpleQueue[_Work | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[BaseException | set[str]] = queue.SimpleQueue()
        self.results: deque[BaseException | set[str]] = deque()
        self._thread: threading.Thread | None = None

    def put(self, work: _Work) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="journal", daemon=True)
            self._thread.start()
        self._work.put(work)

    def _run(self) -> None:
        journal: Journal | None = None
        while (work := self._work.get()) is not None:
            outcomes, in_flight, released = work
            result: BaseException | set[str]
            try:
                if journal is None:
                    journal = Journal(self.path)
                    journal.before_first_hand_off = self.before_first_hand_off
                    # no checkpoint part-way through the run (Journal.checkpoints_held)
                    journal.db.execute(f"PRAGMA wal_autocheckpoint={NO_CHECKPOINT}")
                result = journal.advance(
                    self.issue, [*outcomes, *released], in_flight, self.run_id
                )
            except BaseException as exc:  # handed to the engine's thread, raised there
                result = exc
            self._done.put(result)
            with contextlib.suppress(OSError):
                self._wake_w.send(b"x")
        if journal is not None:
            journal.close()

    def drain(self) -> None:
        """Take the wake-up bytes and every finished commit's result."""
        with contextlib.suppress(BlockingIOError, OSError):
            self.wake_r.recv(4096)
        while True:
            try:
                self.results.append(self._done.get_nowait())
            except queue.Empty:
                return

    def wait(self) -> BaseException | set[str]:
        if self.results:
            return self.results.popleft()
        return self._done.get()

    def close(self) -> None:
        if self._thread is not None:
            self._work.put(None)
            self._thread.join()
        self.wake_r.close()
        self._wake_w.close()


_Work = tuple[list[Outcome], list[str], list[Outcome]]


def run_streamed(
    campaign: Campaign, *, run_id: int, limit: int | None, progress: Progress | None
) -> Report:
    """:meth:`Campaign.run` for a transport with ``stream(feed)``."""
    report = Report(campaign.issue)
    transport = campaign.transport
    feed = Feed(
        campaign,
        report,
        run_id=run_id,
        limit=limit,
        progress=progress,
        window=transport.concurrency,
    )
    started = time.perf_counter()
    # The journal thread needs the GIL back after each fsync; with the engine busy
    # (building, signing) it would wait the default 5 ms switch interval every time.
    interval = sys.getswitchinterval()
    sys.setswitchinterval(min(interval, SWITCH_INTERVAL))
    try:
        transport.stream(feed)  # type: ignore[attr-defined]
        if transport.fatal is not None or campaign.fatal is not None:
            report.fatal = transport.fatal or campaign.fatal
    except BaseException:
        # killed mid hand-off (second Ctrl-C, a bug): what is in flight is uncertain
        campaign.stop()
        if feed.in_flight:
            campaign.journal.mark_uncertain(campaign.issue, sorted(feed.in_flight))
        raise
    finally:
        sys.setswitchinterval(interval)
        feed.close()
        report.stopped = campaign.stopping
        report.elapsed = time.perf_counter() - started
    return report
