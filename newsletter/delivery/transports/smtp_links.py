"""The pipelined SMTP engine's connections (:mod:`.smtp_pipeline`): taken from the
transport's pool, watched by one selector, reopened after a loss, handed back at the end
(a broken one as None, so the pool keeps its size)."""

from __future__ import annotations

import contextlib
import selectors
import smtplib
import time
from typing import TYPE_CHECKING

from newsletter.delivery.transports.smtp_connection import close_quietly
from newsletter.delivery.transports.smtp_wire import Link
from newsletter.errors import TransportError

if TYPE_CHECKING:
    from newsletter.delivery.transports.smtp import SmtpTransport


class Connections:
    """``transport.concurrency`` links, one selector over them."""

    def __init__(self, transport: SmtpTransport) -> None:
        self.t = transport
        self.sel = selectors.DefaultSelector()
        self.links: list[Link] = []
        self._failures = 0  # connection attempts failed in a row

    def take(self) -> list[Link]:
        """Every connection of the transport's pool (opened by its ``open``)."""
        for item in [self.t._pool.get() for _ in range(self.t.concurrency)]:
            link = Link(None)
            if item is not None:
                self.attach(link, item.smtp)
            self.links.append(link)
        return self.links

    def attach(self, link: Link, smtp: smtplib.SMTP) -> None:
        self.sel.register(link.attach(smtp), selectors.EVENT_READ, link)

    def revive(self, link: Link, now: float) -> bool:
        """Open a new connection for ``link``; after ``max_attempts`` failures in a row
        the transport's error is fatal (the send stops)."""
        t = self.t
        try:
            smtp = t._connect()
        except TransportError as exc:
            self._failures += 1
            if self._failures >= t.max_attempts and t.fatal is None:
                t.fatal = exc
            link.revive_at = now + min(t.max_backoff, t.backoff * 2**self._failures)
            return False
        self._failures = 0
        if not smtp.has_extn("pipelining"):
            close_quietly(smtp)
            if t.fatal is None:
                t.fatal = TransportError(f"{t.where}: the server stopped offering PIPELINING")
            return False
        self.attach(link, smtp)
        return True

    def watch(self, link: Link) -> None:
        """Wait for the socket to take more when something is left to write."""
        if link.smtp is not None and link.smtp.sock is not None:
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if link.wbuf else 0)
            self.sel.modify(link.smtp.sock, events, link)

    def close(self, link: Link) -> None:
        if link.smtp is not None:
            if link.smtp.sock is not None:
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.unregister(link.smtp.sock)
            close_quietly(link.smtp)
        link.smtp = None
        link.expect.clear()
        link.wbuf.clear()
        link.ready = link.closing = False

    def hand_back(self) -> None:
        """Every connection back to the transport's pool (a broken one as None)."""
        t = self.t
        now = time.monotonic()
        for link in self.links:
            smtp = link.smtp
            clean = smtp is not None and not (link.expect or link.wbuf or link.envelope)
            if smtp is not None and smtp.sock is not None and clean:
                with contextlib.suppress(KeyError, ValueError):
                    self.sel.unregister(smtp.sock)
                smtp.sock.settimeout(t.timeout)
                if link.needs_rset:
                    try:
                        smtp.rset()
                    except (smtplib.SMTPException, OSError):
                        clean = False
                if clean:
                    t._checkin_smtp(smtp, now)
                    continue
            if smtp is not None:
                self.close(link)
            t._checkin(None)
        self.sel.close()
