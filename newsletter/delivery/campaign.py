"""The send loop: journal first, then hand off, then journal the outcome.

:class:`Campaign` ties one rendered issue (through its message builder), one transport,
the journal and the subscriber store together::

    plan()  recover a dead run's in-flight rows (-> uncertain), requeue retryable
            failures, match the journal to the subscribers active now, count
    run()   for each batch: re-check the list if the file changed, skip whoever the
            consent ledger says left since, mark it in_flight (committed), hand it
            off, record each outcome (committed), record refused addresses bounced;
            a transport that streams (SMTP with PIPELINING) drives the same steps
            itself through a :class:`~newsletter.delivery.stream.Feed`
    rehearse()  the dry run: builds every message, hands off nothing, writes nothing
Stopping (:meth:`Campaign.stop`, from a signal handler) lets the current hand-off finish
and hands off nothing more; the CLI then says how to resume.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from newsletter.delivery.active import FileSignature, Presynced, active_rows, file_signature
from newsletter.delivery.journal import Delivery, Journal, first_claims
from newsletter.delivery.plan import Plan as Plan
from newsletter.delivery.plan import Report as Report
from newsletter.delivery.plan import StoreLike as StoreLike
from newsletter.delivery.transports.base import (
    LEFT_WHILE_WAITING,
    BuilderLike,
    Outcome,
    RecipientLike,
    Status,
    Transport,
)
from newsletter.errors import NewsletterError, Problem, SendRefusedError, TransportError

RecipientFactory = Callable[[str, str], RecipientLike]
_file_signature = file_signature  # (the loops' name for it)
Progress = Callable[[list[Outcome]], None]
#: pending journal rows read at once (the send loop takes its batches from them)
READ_AHEAD = 256
#: single-message hand-offs between two looks at the subscriber file for changes
RECHECK_EVERY = 32
#: a list that loses more than this share of its readers (and SHRINK_MIN) mid-send stops it
SHRINK_SHARE = 0.10
SHRINK_MIN = 20


@dataclass(kw_only=True, eq=False)
class Campaign:
    """Sends one issue to the active subscribers, exactly once each."""

    issue: str
    builder: BuilderLike
    transport: Transport
    journal: Journal
    store: StoreLike
    store_path: Path
    make_recipient: RecipientFactory
    invalid: list[Problem] = field(default_factory=list, init=False)
    duplicates: list[Problem] = field(default_factory=list, init=False)
    _stop: threading.Event = field(default_factory=threading.Event, init=False, repr=False)
    _signature: FileSignature | None = field(default=None, init=False, repr=False)
    #: active readers when the send was planned, and as last counted
    _planned: int = field(default=0, init=False, repr=False)
    _counted: int = field(default=0, init=False, repr=False)
    #: why the loop itself stopped the send (the list shrank under it)
    fatal: NewsletterError | None = field(default=None, init=False, repr=False)
    #: the first sync's rows read ahead (the CLI's read of the list in a forked child):
    #: it syncs the journal from them and says so, or returns None to read the file here
    presync: Callable[[Campaign], Presynced | None] | None = field(default=None, repr=False)

    def stop(self) -> None:
        """Hand off nothing more; the hand-off under way finishes and is recorded."""
        self._stop.set()
        self.transport.stop_event.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _active(self) -> Iterator[tuple[str, str, str]]:
        """Active subscribers as journal rows; rows with problems are collected, not lost."""
        self.invalid, self.duplicates = [], []
        self._counted = 0
        for row in self._active_rows():
            self._counted += 1
            yield row

    def _active_rows(self) -> Iterator[tuple[str, str, str]]:
        return active_rows(self.store, self.invalid, self.duplicates)

    def _sync(self) -> int:
        """Match the journal to the subscriber file; returns how many were skipped."""
        presync, self.presync = self.presync, None  # (the first sync only)
        done = presync(self) if presync is not None else None
        if done is not None:  # the list as read ahead, and the file is still that file
            self._signature, self._counted = done.signature, done.counted
            self.invalid, self.duplicates = done.invalid, done.duplicates
            return done.skipped
        self._signature = _file_signature(self.store_path)
        return self.journal.sync(self.issue, self._active()).skipped

    def plan(self, *, resend_uncertain: bool = False, retry_failed: bool = False) -> Plan:
        """Recover, requeue and count: what :meth:`run` would hand off."""
        recovered = self.journal.recover(self.issue)
        requeued = self.journal.requeue_failed(self.issue, include_permanent=retry_failed)
        if resend_uncertain:
            requeued += self.journal.requeue_uncertain(self.issue)
        self._sync()
        self._planned = self._counted
        counts = self.journal.counts(self.issue)
        return Plan(
            issue=self.issue,
            new=counts["pending"],
            sent=counts["sent"],
            uncertain=counts["uncertain"],
            failed=counts["failed_permanent"],
            skipped=counts["skipped"],
            recovered=recovered,
            requeued=requeued,
            invalid=list(self.invalid),
            duplicates=list(self.duplicates),
        )

    def run(
        self, *, run_id: int, limit: int | None = None, progress: Progress | None = None
    ) -> Report:
        """Hand off every pending recipient (at most ``limit``), journaling each batch.

        Up to ``transport.concurrency`` batches are handed off at once, each on its own
        thread; this thread alone writes the journal. Each commit records the batches that
        finished and marks the next ones in flight before they leave (a group commit), so
        after a kill -9 only the batches actually in flight are in doubt.
        """
        held_of = getattr(self.store, "held", None)
        if held_of is not None:  # asked again by a hand-off that waited (a 4xx, a 429)
            self.transport.recheck = partial(_left, held_of)
        if getattr(self.transport, "pipelined", False):  # one thread drives every connection
            from newsletter.delivery.stream import run_streamed

            return run_streamed(self, run_id=run_id, limit=limit, progress=progress)
        report = Report(self.issue)
        started = time.perf_counter()
        transport = self.transport
        if hasattr(transport, "send_prepared"):  # requests written ahead: .pipeline
            from newsletter.delivery.pipeline import AheadLoop

            return AheadLoop(self, report, run_id, limit).run(progress, started)
        slots = max(1, transport.concurrency)
        queue: deque[Delivery] = deque()  # pending rows read ahead, in journal order
        cursor = 0
        remaining = limit
        exhausted = False
        since_check = RECHECK_EVERY  # look before the first batch
        in_flight: dict[Future[list[Outcome]], list[str]] = {}
        finished: list[tuple[list[str], list[Outcome]]] = []
        pool = ThreadPoolExecutor(max_workers=slots, thread_name_prefix=transport.name)
        try:
            while True:
                # 1. the next batches for the free slots
                starting: list[tuple[list[str], list[RecipientLike]]] = []
                while (
                    len(in_flight) + len(starting) < slots
                    and not exhausted
                    and not self.stopping
                    and transport.fatal is None
                    and self.fatal is None
                    and (remaining is None or remaining > 0)
                ):
                    # A change to the list (an unsubscribe) is looked for before each
                    # batch, and every RECHECK_EVERY recipients when batches are single
                    # messages (a stat per SMTP message would cost more than the send).
                    since_check += 1 if transport.batch_size == 1 else RECHECK_EVERY
                    if since_check >= RECHECK_EVERY:
                        since_check = 0
                        if _file_signature(self.store_path) != self._signature:
                            if self._shrank():
                                break
                            report.skipped += self._sync()
                            queue.clear()  # read ahead before the change: read again
                            cursor = 0
                    size = (
                        transport.batch_size
                        if remaining is None
                        else min(transport.batch_size, remaining)
                    )
                    if len(queue) < size:
                        ahead = max(size * slots, READ_AHEAD)
                        more = self.journal.next_pending(self.issue, ahead, cursor)
                        if more:
                            cursor = more[-1].id
                            queue.extend(more)
                    if not queue:
                        exhausted = True
                        break
                    rows = [queue.popleft() for _ in range(min(size, len(queue)))]
                    rows = self._still_subscribed(rows, report)  # the ledger, right now
                    if not rows:
                        continue
                    batch = [self.make_recipient(row.email, row.name) for row in rows]
                    starting.append(([row.key for row in rows], batch))
                    if remaining is not None:
                        remaining -= len(batch)
                # 2. one commit: outcomes of the finished batches, the new ones in flight
                outcomes = [o for _, batch_outcomes in finished for o in batch_outcomes]
                claimed = self.journal.advance(
                    self.issue, outcomes, [k for keys, _ in starting for k in keys], run_id
                )
                left = [o.email.lower() for o in outcomes if o.reason == LEFT_WHILE_WAITING]
                if left:  # pending again by that commit: skipped, as the loop skips leavers
                    report.skipped += self.journal.mark_skipped(self.issue, left)
                for _, batch_outcomes in finished:
                    self._account(batch_outcomes, report, progress)
                finished.clear()
                # 3. hand them off: only what the journal put in flight, each once (a
                # re-read after the list changed may have taken a reader twice)
                for keys, batch in starting:
                    mine = first_claims(keys, claimed)
                    if mine:
                        batch_keys = [keys[i] for i in mine]
                        handed = [batch[i] for i in mine]
                        in_flight[pool.submit(transport.send, handed)] = batch_keys
                if not in_flight:
                    break
                # 4. wait for at least one hand-off to finish
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
                        self.journal.mark_uncertain(self.issue, keys)
                        failure = failure or error
                    else:
                        finished.append((keys, future.result()))
                if failure is not None:
                    raise failure
            if transport.fatal is not None or self.fatal is not None:
                report.fatal = transport.fatal or self.fatal
        except BaseException:
            # Killed mid hand-off (second Ctrl-C, a bug): what is in flight is uncertain,
            # what finished is recorded.
            self.stop()
            outcomes = [o for _, batch_outcomes in finished for o in batch_outcomes]
            self.journal.record(self.issue, outcomes)
            for keys in in_flight.values():
                self.journal.mark_uncertain(self.issue, keys)
            raise
        finally:
            pool.shutdown(wait=False, cancel_futures=True)
            report.stopped = self.stopping
            report.elapsed = time.perf_counter() - started
        return report

    def _shrank(self) -> bool:
        """Whether the file lost more readers than a send should shrug off (a truncated
        or header-only copy saved over it); if so the send stops before skipping them."""
        now = sum(1 for _ in self._active())
        lost = self._planned - now
        if lost <= max(SHRINK_MIN, self._planned * SHRINK_SHARE):
            return False
        self.fatal = SendRefusedError(
            f"{self.issue}: {self.store_path} went from {self._planned:,} to {now:,} active "
            "readers during the send; stopped before skipping anyone",
            hint="if a truncated or header-only copy was saved over it, restore it "
            "(.newsletter/backups/); if those readers really left, re-run the send",
        )
        return True

    def _still_subscribed(self, rows: list[Delivery], report: Report) -> list[Delivery]:
        """``rows`` less whoever left the list (the ledger's holds), asked right before the
        hand-off: an unsubscribe made during the send stops a copy that has not left."""
        held_of = getattr(self.store, "held", None)
        gone = held_of([row.key for row in rows]) if held_of is not None else set()
        if gone:
            report.skipped += self.journal.mark_skipped(self.issue, sorted(gone))
        return [row for row in rows if row.key not in gone] if gone else rows

    def _account(self, outcomes: list[Outcome], report: Report, progress: Progress | None) -> None:
        """After an outcome is committed: count it, mark refused addresses bounced."""
        report.attempted += sum(o.status is not Status.NOT_ATTEMPTED for o in outcomes)
        report.add(outcomes)
        self._mark_bounced(outcomes, report)
        if progress is not None:
            progress(outcomes)

    def _mark_bounced(self, outcomes: list[Outcome], report: Report) -> None:
        changes: dict[str, tuple[str, str | None]] = {
            o.email: ("bounced", f"{self.issue}: {o.reason}") for o in outcomes if o.bounce
        }
        if not changes:
            return
        suppress = getattr(self.store, "suppress", None)  # the ledger: the file untouched
        before = _file_signature(self.store_path)
        try:
            if suppress is not None:
                recorded = suppress({e: (s, n or "") for e, (s, n) in changes.items()})
                report.bounced += sum(1 for status in recorded.values() if status is not None)
            else:
                report.bounced += len(self.store.set_statuses(changes))
        except (NewsletterError, OSError) as exc:
            why = exc.message if isinstance(exc, NewsletterError) else str(exc)
            report.warnings.append(
                f"could not mark {len(changes)} refused address(es) bounced: {why}"
            )
        # Our own write changed the file. If nobody else had changed it since the last
        # sync, that alone needs no re-check; otherwise keep the old signature so the
        # next batch re-syncs and sees their edit (an unsubscribe, a new subscriber).
        if suppress is None and before == self._signature:
            self._signature = _file_signature(self.store_path)

    def rehearse(self, *, limit: int | None = None, progress: Progress | None = None) -> Report:
        """The dry run: build every message that :meth:`run` would hand off; write nothing."""
        report = Report(self.issue, dry_run=True)
        started = time.perf_counter()
        rehearse = getattr(self.transport, "rehearse", None)
        chunk: list[tuple[str, str, str]] = []

        def flush() -> None:
            known = self.journal.states_of(self.issue, [key for key, _, _ in chunk])
            batch = []
            for key, email, name in chunk:
                state = known.get(key)
                if (
                    state is None
                    or state[0] == "pending"
                    or (state[0] == "failed" and not state[1])
                ):
                    batch.append(self.make_recipient(email, name))
            if batch:
                if callable(rehearse):
                    report.bytes += int(rehearse(batch))
                else:
                    report.bytes += sum(len(self.builder.to_bytes(r)) for r in batch)
                report.attempted += len(batch)
                if progress is not None:
                    progress([Outcome.not_attempted(r.email, "dry run") for r in batch])
            chunk.clear()

        for row in self._active():
            if self.stopping or (limit is not None and report.attempted + len(chunk) >= limit):
                break
            chunk.append(row)
            if len(chunk) >= max(self.transport.batch_size, 100):
                flush()
        if chunk and not self.stopping:
            flush()
        report.stopped = self.stopping
        report.elapsed = time.perf_counter() - started
        return report


def _left(held_of: Callable[[list[str]], Mapping[str, object]], emails: list[str]) -> set[str]:
    """Those of ``emails`` the consent ledger holds now (they left the list)."""
    held = held_of([email.strip().lower() for email in emails])
    return {email for email in emails if email.strip().lower() in held}
