"""SMTP transport: a pool of reused connections, 4xx retried, 5xx recorded.

Each of ``concurrency`` worker threads keeps one connection (plain, STARTTLS or implicit
TLS; optional AUTH) and sends one message per transaction: MAIL, RCPT, DATA. After a
refused transaction the connection is RSET and reused; a connection idle for a while is
checked with NOOP and reopened when the server dropped it.

What each reply means for the recipient:

* 250 after the message body: sent (the reply text, e.g. "queued as 4F2A", is kept)
* 4xx anywhere: retried with capped exponential backoff, then ``retry`` (not delivered)
* 5xx at RCPT: ``failed``, permanent, and the address bounced
* 5xx at MAIL or DATA: ``failed``, permanent (the message or sender was refused)
* connection lost before the body was sent: reconnect and try again
* connection lost or timed out after the body was sent: ``uncertain``
* 535 at AUTH: :class:`~newsletter.errors.TransportAuthError`, nothing is sent

Opening a connection and the commands of a transaction are :mod:`.smtp_connection`'s.
A send to a server that offers PIPELINING goes through :meth:`SmtpTransport.stream`
instead: one thread drives every connection, one round trip a message
(:mod:`.smtp_pipeline`); the replies mean the same there. :meth:`SmtpTransport.send`
(test copies, servers without PIPELINING) runs a thread per connection.
"""

from __future__ import annotations

import queue
import re
import smtplib
import ssl
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from newsletter.compose.message import ascii_address
from newsletter.delivery.transports.base import (
    LEFT_WHILE_WAITING,
    BuilderLike,
    Outcome,
    RecipientLike,
    Sleep,
    Transport,
    message_or_failure,
)
from newsletter.delivery.transports.smtp_connection import (
    DEFAULT_PORTS,
    Dropped,
    close_quietly,
    data_payload,
    open_connection,
    reply_text,
    send_envelope,
)
from newsletter.delivery.transports.smtp_pipeline import PipelinedSender
from newsletter.delivery.transports.smtp_wire import Feed
from newsletter.errors import HeaderError, TransportError
from newsletter.oauth import TokenSource

IDLE_CHECK_SECONDS = 5.0


@dataclass(slots=True)
class _Connection:
    smtp: smtplib.SMTP
    last_used: float


class SmtpTransport(Transport):
    name = "smtp"

    def __init__(
        self,
        builder: BuilderLike,
        *,
        host: str,
        port: int | None = None,
        security: str = "starttls",
        username: str | None = None,
        password: str | None = None,
        oauth: TokenSource | None = None,
        oauth_mechanism: str = "xoauth2",
        timeout: float = 30.0,
        concurrency: int = 4,
        ssl_context: ssl.SSLContext | None = None,
        envelope_from: str | None = None,
        max_attempts: int = 4,
        backoff: float = 1.0,
        max_backoff: float = 30.0,
        sleep: Sleep | None = None,
        sign: Callable[[bytes], bytes] | None = None,
    ) -> None:
        super().__init__()
        if security not in DEFAULT_PORTS:
            raise TransportError(f"SMTP_SECURITY: unknown value {security!r}")
        self.builder = builder
        self.host = host
        self.port = port or DEFAULT_PORTS[security]
        self.security = security
        self.username = username
        self.password = password
        self.oauth = oauth
        self.oauth_mechanism = oauth_mechanism
        self.timeout = timeout
        self.concurrency = max(1, concurrency)
        # One message per hand-off: the send loop runs ``concurrency`` of them at once and
        # journals each outcome as it comes, so a kill -9 leaves at most that many in doubt.
        self.batch_size = 1
        self.ssl_context = ssl_context
        self.envelope_from = envelope_from or builder.from_address
        self._envelope_from = ascii_address(self.envelope_from)
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self._sleep = sleep
        #: applied to each recipient's message bytes before they go (DKIM signing)
        self.sign = sign
        self._pool: queue.LifoQueue[_Connection | None] = queue.LifoQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._all: list[smtplib.SMTP] = []
        self._lock = threading.Lock()
        self._policy_streak = 0  # consecutive policy refusals at RCPT (see _policy_refusal)
        self._local_hostname = "localhost"
        self.connections_opened = 0
        #: the server offers PIPELINING: the send loop streams through :meth:`stream`
        self.pipelined = False

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def description(self) -> str:
        auth = f", as {self.username}" if self.username else ""
        if self.oauth is not None:
            auth += f" ({self.oauth_mechanism.upper()})"
        return f"smtp ({self.where}, {self.security}{auth}, {self.concurrency} connections)"

    # Connections --------------------------------------------------------------------
    def _connect(self) -> smtplib.SMTP:
        conn = open_connection(
            self.host,
            self.port,
            security=self.security,
            username=self.username,
            password=self.password,
            timeout=self.timeout,
            ssl_context=self.ssl_context,
            local_hostname=self._local_hostname,
            oauth=self.oauth,
            mechanism=self.oauth_mechanism,
        )
        with self._lock:
            self.connections_opened += 1
            self._all.append(conn)
        return conn

    def open(self) -> None:
        self.stop_event.clear()
        self.fatal = None
        # Open every connection now: a wrong host or password fails before anything leaves.
        conns = [self._connect()]
        with ThreadPoolExecutor(max_workers=self.concurrency) as pool:
            futures = [pool.submit(self._connect) for _ in range(self.concurrency - 1)]
            for fut in futures:
                try:
                    conns.append(fut.result())
                except TransportError:
                    conns.append(None)  # type: ignore[arg-type]  # opened on first use
        now = time.monotonic()
        for conn in conns:
            self._pool.put(_Connection(conn, now) if conn is not None else None)
        # every message of a send on one thread, one round trip each (smtp_pipeline.py)
        self.pipelined = all(c is None or c.has_extn("pipelining") for c in conns)
        self._executor = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="smtp")

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        while True:
            try:
                item = self._pool.get_nowait()
            except queue.Empty:
                break
            if item is not None:
                try:
                    item.smtp.quit()
                except (smtplib.SMTPException, OSError):
                    close_quietly(item.smtp)
        with self._lock:
            for conn in self._all:
                close_quietly(conn)
            self._all.clear()

    def _checkout(self) -> _Connection:
        item = self._pool.get()
        if item is not None and time.monotonic() - item.last_used > IDLE_CHECK_SECONDS:
            try:
                code, _ = item.smtp.noop()
                if code != 250:
                    raise smtplib.SMTPServerDisconnected(f"NOOP answered {code}")
            except (smtplib.SMTPException, OSError):
                close_quietly(item.smtp)
                item = None
        if item is None:
            try:
                item = _Connection(self._connect(), time.monotonic())
            except BaseException:
                self._pool.put(None)
                raise
        return item

    def _checkin_smtp(self, smtp: smtplib.SMTP, now: float) -> None:
        self._pool.put(_Connection(smtp, now))

    def _checkin(self, item: _Connection | None) -> None:
        if item is not None:
            item.last_used = time.monotonic()
        self._pool.put(item)

    # Sending ------------------------------------------------------------------------
    def stream(self, feed: Feed) -> None:
        """Send everything ``feed`` hands out, every connection on this thread, one round
        trip a message (:mod:`.smtp_pipeline`); the server must offer PIPELINING."""
        if self._executor is None:
            raise TransportError("the SMTP transport is not open")
        PipelinedSender(self, feed).run()

    def send(self, batch: Sequence[RecipientLike]) -> list[Outcome]:
        if self._executor is None:
            raise TransportError("the SMTP transport is not open")
        if len(batch) == 1:  # the send loop's case: it runs the hand-offs side by side
            return [self._deliver(batch[0])]
        futures = [self._executor.submit(self._deliver, r) for r in batch]
        return [f.result() for f in futures]

    def _deliver(self, r: RecipientLike) -> Outcome:
        if self.stop_event.is_set():
            return Outcome.not_attempted(r.email, "stopped")
        if self.fatal is not None:
            return Outcome.not_attempted(r.email, str(self.fatal))
        built = message_or_failure(self.builder, r)
        if isinstance(built, Outcome):
            return built
        if self.sign is not None:
            built = self.sign(built)
        payload = data_payload(built)
        verp = self.builder.envelope_sender(r)  # per-recipient Return-Path, when VERP is on
        mail_from = ascii_address(verp) if verp else self._envelope_from
        last = ""
        attempt = 0
        while True:
            attempt += 1
            try:
                item = self._checkout()
            except TransportError as exc:
                if attempt < self.max_attempts and not self.pause(attempt):
                    continue
                if self.fatal is None:
                    self.fatal = exc
                return Outcome.not_attempted(r.email, str(exc))
            try:
                outcome, reuse = self._transaction(item.smtp, r.email, payload, mail_from)
            except Dropped as exc:
                close_quietly(item.smtp)
                self._checkin(None)
                last = f"connection lost: {exc}"
                if attempt < self.max_attempts and not self.pause(attempt):
                    continue
                return Outcome.retry(r.email, last)
            except BaseException:
                close_quietly(item.smtp)
                self._checkin(None)
                raise
            self._checkin(item if reuse else None)
            if isinstance(outcome, Outcome):
                return outcome
            # a 4xx (outcome is its reply text): back off and try again, if still wanted
            if attempt >= self.max_attempts or self.pause(attempt):
                return Outcome.retry(r.email, outcome)
            if self.recheck is not None and self.recheck([r.email]):
                return Outcome.not_attempted(r.email, LEFT_WHILE_WAITING)

    def _transaction(
        self, conn: smtplib.SMTP, rcpt: str, payload: bytes, mail_from: str
    ) -> tuple[Outcome | str, bool]:
        """One MAIL/RCPT/DATA: (outcome, or a 4xx reply to retry on; connection reusable).

        Raises :class:`Dropped` when the connection is lost before the message is sent.
        """
        try:
            envelope_to = ascii_address(rcpt)
        except HeaderError as exc:
            return Outcome.failed(rcpt, str(exc), permanent=True), True
        replies = send_envelope(conn, mail_from, envelope_to)
        (mcode, mresp), (rcode, rresp), (dcode, dresp) = replies
        if mcode != 250:
            if 500 <= mcode < 600:
                # the sender itself is refused: every message would fail the same way
                self._stop(f"the server refuses the sender {mail_from}", mcode, mresp)
            return self._refused(conn, rcpt, "MAIL FROM", mcode, mresp, bounce=False)
        if rcode not in (250, 251):
            bounce = _is_address_refusal(rcode, rresp)
            if 500 <= rcode < 600 and not bounce:
                self._policy_refusal(rcode, rresp)
            return self._refused(conn, rcpt, "RCPT TO", rcode, rresp, bounce=bounce)
        if dcode != 354:
            return self._refused(conn, rcpt, "DATA", dcode, dresp, bounce=False)
        # From here on the message may reach the server: any loss makes it uncertain.
        try:
            conn.send(payload)
            code, resp = conn.getreply()
        except (smtplib.SMTPException, OSError) as exc:
            close_quietly(conn)
            why = str(exc) or type(exc).__name__
            reason = f"{self.where}: no reply after the message: {why}"
            return Outcome.uncertain(rcpt, reason), False
        if code == 250:
            with self._lock:
                self._policy_streak = 0
            return Outcome.sent(rcpt, reply_text(code, resp)), True
        if code == -1:  # an unreadable answer to the message itself: it may have been taken
            close_quietly(conn)
            reason = f"{self.where}: unreadable reply after the message: {reply_text(code, resp)}"
            return Outcome.uncertain(rcpt, reason), False
        return self._refused(conn, rcpt, "end of DATA", code, resp, bounce=False)

    def _stop(self, what: str, code: int, resp: bytes) -> None:
        if self.fatal is None:
            self.fatal = TransportError(
                f"{self.where}: {what}: {reply_text(code, resp)}",
                hint="fix the server or the settings, then re-run the send to resume",
            )

    def _policy_refusal(self, code: int, resp: bytes) -> None:
        """A 5xx at RCPT that is not about the address (relay denied, policy): after a run
        of them the server refuses everyone, so stop instead of failing the whole list."""
        with self._lock:
            self._policy_streak += 1
            streak = self._policy_streak
        if streak >= POLICY_STREAK_LIMIT:
            self._stop(f"{streak} recipients in a row refused for policy", code, resp)

    def _refused(
        self, conn: smtplib.SMTP, rcpt: str, stage: str, code: int, resp: bytes, *, bounce: bool
    ) -> tuple[Outcome | str, bool]:
        text = reply_text(code, resp)
        reusable = code != 421 and code != -1
        if reusable:
            try:
                conn.rset()
            except (smtplib.SMTPException, OSError):
                reusable = False
        if 400 <= code < 500 or code == -1:
            if not reusable:
                close_quietly(conn)
            return f"{stage}: {text}", reusable
        if not reusable:
            close_quietly(conn)
        return Outcome.failed(rcpt, f"{stage}: {text}", permanent=True, bounce=bounce), reusable


#: consecutive non-address 5xx refusals at RCPT after which the send stops
POLICY_STREAK_LIMIT = 5
_ENHANCED = re.compile(rb"\b([245])\.(\d{1,3})\.(\d{1,3})\b")


def _is_address_refusal(code: int, resp: bytes) -> bool:
    """Does a 5xx at RCPT say the *address* is bad (a bounce), not a policy or relay refusal?

    With an enhanced status code (RFC 3463): 5.1.x is about the address and 5.2.1 says the
    mailbox is disabled; a full mailbox (5.2.2) often empties, and 5.7.x (relay denied,
    policy) is about us, not the address: those are failures but not bounces.
    Without one: 550, 551 and 553 are address refusals; 554 and others are not.
    """
    if not 500 <= code < 600:
        return False
    found = _ENHANCED.search(resp)
    if found is not None:
        cls, subject, detail = found.groups()
        return cls == b"5" and (subject == b"1" or (subject == b"2" and detail == b"1"))
    return code in (550, 551, 553)
