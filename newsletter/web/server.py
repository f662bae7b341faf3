"""The HTTP server under the app: uvicorn, configured for the public internet.

uvicorn's defaults trust a connection for as long as it stays open: one that never
sends a complete request head is kept forever, so one client holding a thousand idle
connections exhausts the file descriptors (or ``limit_concurrency``) and everyone else
waits. The guarded protocols close a connection that has no complete request head
within :attr:`ConnectionLimits.header_timeout` seconds (on a fresh connection and
between keep-alive requests, so trickling a head byte by byte does not help), and cap
open connections per client address (a /64 for IPv6); trusted proxies are exempt, they
multiplex everyone. Beyond :attr:`ConnectionLimits.total` connections a new one gets a
503. The answers the server writes itself (a malformed request: 400, a head past
:attr:`ConnectionLimits.max_head`, the 503) carry the app's security headers. Slow
*bodies* are the app's business (:class:`~.limits.BodyGuard`).

Two parsers, the same guards: :class:`GuardedHttpToolsProtocol` (httptools, llhttp in C:
the default, a request head costs microseconds) and :class:`GuardedH11Protocol` (h11,
pure Python, about ten times the cost per request).

:func:`server_config` is what ``newsletter serve`` runs and what the tests run.
"""

from __future__ import annotations

import asyncio
import resource
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, ClassVar, Final

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from newsletter.web.guards import error_headers
from newsletter.web.proxy import IPNetwork, client_key, is_trusted, parse_networks


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection limits of the server (the app's own are :class:`~.app.Limits`)."""

    header_timeout: float = 10.0  # seconds to send a complete request head
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    per_client: int = 64  # open connections per client address (/64 for IPv6)
    total: int = 4096  # open connections in all: beyond it, 503 (a memory backstop)
    max_head: int = 16 * 1024  # bytes of request line and headers


#: The HTTP/1.1 parsers: httptools (llhttp, in C) by default; h11 (pure Python) works too.
PARSERS: Final = ("httptools", "h11")


@dataclass(slots=True)
class GuardRules:
    """One server's limits and its count of open connections per client."""

    header_timeout: float = 10.0
    per_client: int = 64
    total: int = 4096
    max_head: int = 16 * 1024
    trusted: tuple[IPNetwork, ...] = ()
    open_by_client: dict[str, int] = field(default_factory=dict)


class ConnectionGuard:
    """One connection's guard: its place in the per-client count and its head deadline."""

    __slots__ = ("_busy", "_counted", "_timer", "loop", "rules", "transport")

    def __init__(
        self,
        rules: GuardRules,
        loop: asyncio.AbstractEventLoop,
        transport: asyncio.Transport,
        busy: Callable[[], bool],
    ) -> None:
        self.rules = rules
        self.loop = loop
        self.transport = transport
        self._busy = busy  # True while a request is being answered
        self._counted: str | None = None
        self._timer: asyncio.TimerHandle | None = None

    def admit(self, host: str) -> bool:
        """Count the connection against its client; False when over the client's cap."""
        if host and not is_trusted(host, self.rules.trusted):
            key = client_key(host)
            counts = self.rules.open_by_client
            if counts.get(key, 0) >= self.rules.per_client:
                return False
            counts[key] = counts.get(key, 0) + 1
            self._counted = key
        self.arm()
        return True

    def arm(self) -> None:
        """The next request head is due within ``header_timeout`` seconds."""
        if self._timer is not None:
            self._timer.cancel()
        self._timer = self.loop.call_later(self.rules.header_timeout, self._timed_out)

    def _timed_out(self) -> None:
        self._timer = None
        if not self._busy() and not self.transport.is_closing():
            self.transport.close()

    def release(self) -> None:
        if self._counted is not None:
            counts = self.rules.open_by_client
            left = counts.get(self._counted, 1) - 1
            if left > 0:
                counts[self._counted] = left
            else:
                counts.pop(self._counted, None)
            self._counted = None
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None


def refusal(status: int, text: str, *, https: bool, extra: list[tuple[bytes, bytes]]) -> bytes:
    """A whole plain-text answer the server writes itself, with the app's security headers."""
    body = text.encode("ascii")
    lines = [f"HTTP/1.1 {status} {HTTPStatus(status).phrase}".encode("ascii")]
    headers = [
        *extra,  # uvicorn's own (the Date)
        (b"content-type", b"text/plain; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"connection", b"close"),
        *error_headers(https=https),
    ]
    lines.extend(name + b": " + value for name, value in headers)
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


class GuardedH11Protocol(H11Protocol):
    """h11 (pure Python) with a request-head deadline, per-client and total connection
    caps, and security headers on the answers it writes itself."""

    rules: ClassVar[GuardRules] = GuardRules()
    _guard: ConnectionGuard | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard = _open(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard is not None:
            self._guard.release()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._guard is not None:
            self._guard.arm()  # the next request head has the same deadline

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def send_400_response(self, msg: str) -> None:
        _refuse(self, 400, msg)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """httptools (llhttp, in C) with the same guards as :class:`GuardedH11Protocol`; llhttp
    has no limit on the size of a request head, so it is counted here (431 beyond it)."""

    rules: ClassVar[GuardRules] = GuardRules()
    _guard: ConnectionGuard | None = None
    _head_open = True  # the bytes arriving belong to a request head not complete yet
    _head_bytes = 0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._guard = _open(self, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        if self._guard is not None:
            self._guard.release()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._head_open:
            self._head_bytes += len(data)
        super().data_received(data)
        if (
            self._head_open
            and self._head_bytes > self.rules.max_head
            and not self.transport.is_closing()
        ):
            _refuse(self, 431, "Request header fields too large.")

    def on_headers_complete(self) -> None:
        self._head_open = False
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._head_open, self._head_bytes = True, 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self._guard is not None:
            self._guard.arm()

    def _busy(self) -> bool:
        return self.cycle is not None and not self.cycle.response_complete

    def send_400_response(self, msg: str) -> None:
        _refuse(self, 400, msg)


Guarded = GuardedH11Protocol | GuardedHttpToolsProtocol


def _open(protocol: Guarded, transport: asyncio.Transport) -> ConnectionGuard | None:
    """Admit a new connection, or turn it away: silently when its client holds too many
    already (nothing for a flood to read), with a 503 when the server is full."""
    guard = ConnectionGuard(protocol.rules, protocol.loop, transport, protocol._busy)
    if not guard.admit(protocol.client[0] if protocol.client else ""):
        transport.close()
        return None
    if len(protocol.connections) > protocol.rules.total:
        guard.release()
        _refuse(protocol, 503, "Service unavailable: too many connections.")
        return None
    return guard


def _refuse(protocol: Guarded, status: int, text: str) -> None:
    extra = protocol.server_state.default_headers
    protocol.transport.write(refusal(status, text, https=protocol.scheme == "https", extra=extra))
    protocol.transport.close()


def guarded_protocol(
    limits: ConnectionLimits, trusted: tuple[IPNetwork, ...], parser: str = "httptools"
) -> type[GuardedH11Protocol] | type[GuardedHttpToolsProtocol]:
    """A protocol class with its own limits and connection counts (one per server)."""
    if parser not in PARSERS:
        raise ValueError(f"unknown HTTP parser {parser!r}: one of {', '.join(PARSERS)}")
    base = GuardedHttpToolsProtocol if parser == "httptools" else GuardedH11Protocol
    rules = GuardRules(
        limits.header_timeout, limits.per_client, limits.total, limits.max_head, trusted
    )
    return type(base.__name__, (base,), {"rules": rules})


def server_config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    trusted_proxies: str = "",
    limits: ConnectionLimits | None = None,
    parser: str = "httptools",
    **extra: Any,
) -> uvicorn.Config:
    """uvicorn's config for the app: our protocol, no proxy headers (the app reads them)."""
    limits = limits or ConnectionLimits()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": guarded_protocol(limits, parse_networks(trusted_proxies), parser),
        "ws": "none",
        "loop": "asyncio",  # the same loop whatever else is installed (uvloop: no gain measured)
        "lifespan": "auto",  # the app may start work of its own (e.g. folding a ledger)
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 on its own; the app does it
        # for NEWSLETTER_TRUSTED_PROXIES only (web/proxy.py)
        "proxy_headers": False,
        "server_header": False,
        "date_header": True,
        "timeout_keep_alive": limits.keep_alive,
        # the protocol caps connections itself (uvicorn's own 503 has no security headers);
        # a connection runs one request at a time, so that caps requests in flight too
        "limit_concurrency": None,
        "h11_max_incomplete_event_size": limits.max_head,
        "backlog": 2048,
        "timeout_graceful_shutdown": 5,
    }
    options.update(extra)
    return uvicorn.Config(app, **options)


#: How long a thread may keep the interpreter lock while another wants it (CPython's
#: default is 5 ms). The event loop gives up the lock at every socket call; when the
#: thread recording unsubscribes has it, the loop waits up to this long to get it back,
#: for each call, so a burst of requests queued behind 5 ms waits.
SWITCH_INTERVAL: Final = 0.001


def share_interpreter_lock() -> None:
    """Let the event loop win the interpreter lock back sooner (``serve`` only)."""
    sys.setswitchinterval(SWITCH_INTERVAL)


def raise_file_limit() -> int:
    """Lift the soft open-files limit to the hard one (connections are files); the new soft."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = 65536 if hard == resource.RLIM_INFINITY else hard
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            return target
        except (ValueError, OSError):
            return soft
    return soft
