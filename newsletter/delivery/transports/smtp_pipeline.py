"""The pipelined SMTP engine: every connection driven from one thread, one round trip a
message, each message journaled in flight before its body leaves.

With PIPELINING (RFC 2920) a message's body, its end-of-data dot and the next message's
MAIL, RCPT and DATA go out in one write; the four replies come back together (250 for
the message, then 250, 250, 354 for the next). One thread drives all ``concurrency``
connections with non-blocking sockets, so no thread waits for the GIL, and builds each
message while the server reads the one before.

The journal rules, kept (:class:`~newsletter.delivery.stream.Feed`):

* the next message's envelope may go out before it is journaled: no message is
  delivered without its body, and a connection that drops with an envelope open (or a
  stop) leaves the recipient pending, nothing delivered;
* its body goes out only after a commit marks it in flight (only a pending row is), in
  the same transaction as the connection's previous outcome: at most ``concurrency`` in doubt;
* what the replies mean is the same as the threaded path's (:mod:`.smtp`): 4xx retried
  with backoff, 5xx failed (bounced when about the address), a lost answer after the
  body uncertain, a refused sender or a run of policy refusals stops the send.
"""

from __future__ import annotations

import contextlib
import heapq
import random
import selectors
import time
from collections import Counter
from typing import TYPE_CHECKING

from newsletter.compose.message import ascii_address
from newsletter.delivery.transports.base import Outcome, RecipientLike
from newsletter.delivery.transports.smtp_connection import reply_text
from newsletter.delivery.transports.smtp_links import Connections
from newsletter.delivery.transports.smtp_replies import end_of_data, refusal
from newsletter.delivery.transports.smtp_wire import (
    Feed,
    Job,
    Link,
    Stuffer,
    parse_replies,
    stuffed,
)
from newsletter.errors import HeaderError

if TYPE_CHECKING:
    from newsletter.delivery.transports.smtp import SmtpTransport

#: longest wait in select, so a stop (a signal handler sets a flag) is seen soon
_TICK = 0.2
_DOT = b".\r\n"
#: how long a connection ready for its in-flight commit waits for others to share it
BATCH_WAIT = 0.0005


class PipelinedSender:
    """Runs one streamed send over ``transport``'s connections (see the module docstring)."""

    def __init__(self, transport: SmtpTransport, feed: Feed) -> None:
        self.t = transport
        self.feed = feed
        self.conns = Connections(transport)
        self.sel = self.conns.sel
        self.links: list[Link] = []
        self.done: list[Outcome] = []
        #: in flight no more, back to pending (a 4xx after the body): not reported
        self.released: list[Outcome] = []
        self.waiting: list[Link] = []  # 354 came: in flight with the next commit
        self.waiting_since = 0.0  # when the first of them came
        self.committing: list[tuple[Link, Job]] = []  # in the commit under way
        self.retries: list[tuple[float, int, Job]] = []
        self._seq = 0
        self.exhausted = False
        self.stuff = Stuffer()

    # The loop --------------------------------------------------------------------------
    def run(self) -> None:
        self.links = self.conns.take()
        self.sel.register(self.feed.wakeup, selectors.EVENT_READ, None)
        try:
            self._loop()
            self._finish()
        except BaseException:
            # record what is known; the feed marks the rest of what is in flight uncertain
            with contextlib.suppress(Exception):
                self._finish()
            raise
        finally:
            self.conns.hand_back()

    def _loop(self) -> None:
        feed = self.feed
        while True:
            now = time.monotonic()
            stopping = feed.stopping or self.t.stop_event.is_set()
            if stopping:
                self._wind_down()
            else:
                self._assign(now)
            pending = self.waiting or self.done or self.released
            if pending and not feed.busy and self._batch_full(now):
                self._submit()
            busy = [link for link in self.links if link.expect or link.wbuf]
            if not (busy or feed.busy or self.waiting or self.done or self.released) and (
                stopping or (self.exhausted and not self.retries)
            ):
                return
            timeout = _TICK
            if self.waiting_since and not feed.busy:
                timeout = max(0.0, self.waiting_since + BATCH_WAIT - now)
            if self.retries and not stopping:
                timeout = min(timeout, max(0.0, self.retries[0][0] - now))
            for link in busy:
                timeout = min(timeout, max(0.0, link.deadline - now))
            for key, mask in self.sel.select(timeout):
                link = key.data
                if link is None:  # the journal committed
                    self._send_committed(feed.completed())  # (raises what it raised)
                    continue
                if mask & selectors.EVENT_WRITE:
                    self._flush(link)
                if mask & selectors.EVENT_READ and link.smtp is not None:
                    self._read(link)
            now = time.monotonic()
            for link in busy:
                if link.smtp is not None and (link.expect or link.wbuf) and now > link.deadline:
                    self._lost(link, f"no answer in {self.t.timeout:g} s")

    def _batch_full(self, now: float) -> bool:
        """Commit now, or wait a moment for more connections to be ready for theirs: a
        commit costs about the same for one message as for eight (its pages, its fsync)."""
        if not self.waiting or len(self.waiting) * 2 >= len(self.links):
            return True
        if now - self.waiting_since >= BATCH_WAIT:
            return True
        # nothing else can become ready before a reply comes: no point waiting
        return not any(link.envelope is not None and not link.ready for link in self.links)

    def _submit(self) -> None:
        """Start one commit (in the feed's journal thread): the outcomes known so far, and
        the messages whose 354 has come, in flight; their bodies leave once it is done."""
        ready = [(link, link.envelope) for link in self.waiting if link.ready and link.envelope]
        self.waiting, self.waiting_since = [], 0.0
        if ready and (self.feed.stopping or self.t.stop_event.is_set()):
            for link, _ in ready:  # in DATA with no body sent: drop it, nothing is delivered
                self._drop(link)
            ready = []
        self.committing = [(link, job) for link, job in ready if job is not None]
        done, released = self.done, self.released
        self.done, self.released = [], []
        self.feed.submit(done, [job.key for _, job in self.committing], released)

    def _send_committed(self, claimed: list[str]) -> None:
        """The commit is done: the bodies it put in flight leave now; one it did not (its
        row was not pending: another copy's, or it left) never does, and records nothing."""
        committing, self.committing = self.committing, []
        stopping = self.feed.stopping or self.t.stop_event.is_set()
        now = time.monotonic()
        left = Counter(claimed)
        for link, job in committing:
            if left[job.key] <= 0:
                if link.envelope is job:
                    self._drop(link)  # in DATA with no body sent: nothing is delivered
                continue
            left[job.key] -= 1
            if stopping:  # in flight, never sent: pending again
                self.released.append(Outcome.not_attempted(job.email, "not sent"))
                if link.envelope is job:
                    self._drop(link)
                continue
            if link.envelope is not job or link.smtp is None:
                # its connection was lost during the commit: pending again until it is
                # tried again (or given up: then ``retry`` is its outcome)
                if self._requeue(job, now, job.reason):
                    self.released.append(Outcome.not_attempted(job.email, job.reason))
                continue
            link.envelope, link.ready, link.body = None, False, job
            link.expect.append(("body", job))
            chunks: list[bytes | memoryview] = [*job.payload, _DOT]
            nxt = self._next_job(time.monotonic())
            if nxt is not None:  # the next message's envelope rides along
                chunks.append(self._open_envelope(link, nxt))
            self._write(link, chunks)

    def _finish(self) -> None:
        """The last commit; what a commit still under way put in flight never left."""
        left = Counter(self.feed.settle() or [])
        for _, job in self.committing:  # only a row this run put in flight is its to release
            if left[job.key] > 0:
                left[job.key] -= 1
                self.released.append(Outcome.not_attempted(job.email, "not sent"))
        self.committing = []
        self.feed.commit(self.done, [], self.released)

    # Handing out work --------------------------------------------------------------------
    def _assign(self, now: float) -> None:
        for link in self.links:
            if link.envelope is not None or link.closing:
                continue
            if link.smtp is None:
                if now < link.revive_at or not self._has_work(now):
                    continue
                if not self.conns.revive(link, now):
                    continue
            job = self._next_job(now)
            if job is None:
                return
            self._write(link, [self._open_envelope(link, job)])

    def _has_work(self, now: float) -> bool:
        return not self.exhausted or bool(self.retries and self.retries[0][0] <= now)

    def _next_job(self, now: float) -> Job | None:
        while self.retries and self.retries[0][0] <= now:
            job = heapq.heappop(self.retries)[2]
            if self.feed.still_subscribed(job.key):  # the ledger, asked again after the wait
                return job
        while not self.exhausted:
            taken = self.feed.take(1)
            if not taken:
                self.exhausted = True
                break
            built = self._build(*taken[0])
            if built is not None:
                return built
        return None

    def _build(self, key: str, r: RecipientLike) -> Job | None:
        t = self.t
        try:
            chunks = t.builder.to_chunks(r)
            rcpt_to = ascii_address(r.email)
            verp = t.builder.envelope_sender(r)  # per-recipient Return-Path, when VERP is on
            mail_from = ascii_address(verp) if verp else t._envelope_from
        except HeaderError as exc:
            reason = f"cannot build the message: {exc.message}"
            self.done.append(Outcome.failed(r.email, reason, permanent=True))
            return None
        # DKIM signs the whole message, so a signed one is stuffed in one piece
        payload = self.stuff(chunks) if t.sign is None else [stuffed(t.sign(b"".join(chunks)))]
        envelope = f"MAIL FROM:<{mail_from}>\r\nRCPT TO:<{rcpt_to}>\r\nDATA\r\n".encode("ascii")
        return Job(key, r.email, payload, envelope)

    def _open_envelope(self, link: Link, job: Job) -> bytes:
        link.envelope, job.refusal = job, None
        if link.needs_rset:
            link.needs_rset = False
            link.expect.append(("rset", None))
            data = b"RSET\r\n" + job.envelope
        else:
            data = job.envelope
        link.expect.extend((("mail", job), ("rcpt", job), ("data", job)))
        return data

    def _requeue(self, job: Job, now: float, reason: str = "") -> bool:
        """Try ``job`` again after a backoff (True), or give up: ``retry`` (False)."""
        t = self.t
        reason = reason or job.reason
        if job.attempt >= t.max_attempts or self.feed.stopping:
            self.done.append(Outcome.retry(job.email, reason or "not sent"))
            return False
        delay = min(t.max_backoff, t.backoff * (2 ** (job.attempt - 1)))
        delay *= 0.5 + random.random() / 2
        if t._sleep is not None:  # tests: record the pause instead of waiting
            t._sleep(delay)
            delay = 0.0
        job.attempt += 1
        job.reason = reason
        self._seq += 1
        heapq.heappush(self.retries, (now + delay, self._seq, job))
        return True

    # Replies -----------------------------------------------------------------------------
    def _read(self, link: Link) -> None:
        sock = link.smtp.sock if link.smtp is not None else None
        if sock is None:
            return
        try:
            if not link.read_some(sock):
                self._lost(link, "the server closed the connection")
                return
        except OSError as exc:
            self._lost(link, str(exc) or type(exc).__name__)
            return
        link.deadline = time.monotonic() + self.t.timeout
        for code, text in parse_replies(link.inbuf):
            if not link.expect:
                self._lost(link, f"an unexpected reply: {reply_text(code, text)}")
                return
            kind, job = link.expect.popleft()
            self._reply(link, kind, job, code, text)
            if link.smtp is None:
                return
        if link.closing and not link.expect:
            self._lost(link, "the server closed the connection (421)")

    def _reply(self, link: Link, kind: str, job: Job | None, code: int, text: bytes) -> None:
        if code == 421:
            link.closing = True
        if kind == "body":
            assert job is not None
            link.body = None
            self._ended(job, code, text)
            if code == -1:
                self._lost(link, "an unreadable reply after the message")
        elif kind == "rset":
            if code != 250:
                self._lost(link, f"RSET: {reply_text(code, text)}")
        elif job is not None and kind in ("mail", "rcpt"):
            accepted = code == 250 or (kind == "rcpt" and code == 251)
            if not accepted and job.refusal is None:
                job.refusal = ("MAIL FROM" if kind == "mail" else "RCPT TO", code, text)
        elif job is not None and kind == "data":
            if code == 354 and job.refusal is None:
                if self.feed.stopping or self.t.stop_event.is_set():
                    self._drop(link)  # no body will follow: end the connection instead
                elif link.closing:
                    self._lost(link, "the server is closing the connection (421)")
                else:
                    link.ready = True
                    self.waiting_since = self.waiting_since or time.monotonic()
                    self.waiting.append(link)
                return
            if code == 354:  # a non-conforming server opened DATA anyway: end it empty
                link.expect.append(("dot", None))
                self._write(link, [_DOT])
            link.envelope, link.needs_rset = None, True
            self._refused(job, *(job.refusal or ("DATA", code, text)))

    def _ended(self, job: Job, code: int, text: bytes) -> None:
        """The reply to the end of a message's data."""
        outcome = end_of_data(self.t, job.email, code, text)
        if not isinstance(outcome, str):
            self.done.append(outcome)
        elif self._requeue(job, time.monotonic(), outcome):
            # refused for now, surely not delivered: pending again (not in doubt) until it
            # is tried again, journaled in flight once more
            self.released.append(Outcome.not_attempted(job.email, job.reason))

    def _refused(self, job: Job, stage: str, code: int, resp: bytes) -> None:
        sender = job.envelope.split(b">", 1)[0][11:].decode("ascii")
        outcome = refusal(self.t, job.email, sender, stage, code, resp)
        if isinstance(outcome, str):
            self._requeue(job, time.monotonic(), outcome)
        else:
            self.done.append(outcome)

    def _write(self, link: Link, chunks: list[bytes | memoryview]) -> None:
        link.wbuf.extend(chunks)
        link.deadline = time.monotonic() + self.t.timeout
        self._flush(link)

    def _flush(self, link: Link) -> None:
        sock = link.smtp.sock if link.smtp is not None else None
        if sock is None:
            return
        try:
            link.write_some(sock)
        except OSError as exc:
            self._lost(link, str(exc) or type(exc).__name__)
            return
        self.conns.watch(link)

    def _lost(self, link: Link, why: str) -> None:
        """The connection is gone: the body awaiting an answer is uncertain, the message
        whose body never left is tried again (on another connection, or this one reopened)."""
        now = time.monotonic()
        if link.body is not None:
            reason = f"{self.t.where}: no reply after the message: {why}"
            self.done.append(Outcome.uncertain(link.body.email, reason))
            link.body = None
        if link.envelope is not None:
            job, link.envelope = link.envelope, None
            job.reason = f"connection lost: {why}"
            if not any(job is queued for _, queued in self.committing):
                self._requeue(job, now)  # (one in the commit under way: once it is done)
        if link in self.waiting:
            self.waiting.remove(link)
            self.waiting_since = self.waiting_since if self.waiting else 0.0
        self.conns.close(link)
        link.revive_at = now

    def _drop(self, link: Link) -> None:
        """Close a connection whose open envelope will not be followed by a body (a stop):
        the recipient stays pending, nothing was delivered."""
        link.envelope = None
        if link.body is None:
            self.conns.close(link)
        else:  # wait for the answer to the body first
            link.closing = True

    def _wind_down(self) -> None:
        """Stopping: no new envelopes; drop the ones whose body has not left."""
        for link in self.links:
            if link.envelope is not None and link.body is None and not link.ready:
                self._drop(link)
        while self.retries:
            job = heapq.heappop(self.retries)[2]
            self.done.append(Outcome.retry(job.email, job.reason or "not sent"))
