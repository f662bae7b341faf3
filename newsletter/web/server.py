"""The HTTP server under the app: uvicorn, configured for the public internet.

uvicorn's defaults trust a connection for as long as it stays open: one that never
sends a complete request head is kept forever, so one client holding a thousand idle
connections exhausts the file descriptors (or ``limit_concurrency``) and everyone else
waits. :class:`GuardedH11Protocol` closes a connection that has no complete request head
within :attr:`ConnectionLimits.header_timeout` seconds (on a fresh connection and
between keep-alive requests, so trickling a head byte by byte does not help), and caps
open connections per client address (a /64 for IPv6); trusted proxies are exempt, they
multiplex everyone. Slow *bodies* are the app's business (:class:`~.limits.BodyGuard`).

:func:`server_config` is what ``newsletter serve`` runs and what the tests run.
"""

from __future__ import annotations

import asyncio
import resource
from dataclasses import dataclass
from typing import Any, ClassVar

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from newsletter.web.proxy import IPNetwork, client_key, is_trusted, parse_networks


@dataclass(frozen=True, slots=True)
class ConnectionLimits:
    """Per-connection limits of the server (the app's own are :class:`~.app.Limits`)."""

    header_timeout: float = 10.0  # seconds to send a complete request head
    keep_alive: int = 5  # seconds an idle keep-alive connection stays open
    per_client: int = 64  # open connections per client address (/64 for IPv6)
    total: int = 4096  # all connections and tasks: beyond it, 503 (a memory backstop)
    max_head: int = 16 * 1024  # bytes of request line and headers


class GuardedH11Protocol(H11Protocol):
    """h11 with a request-head deadline and a per-client connection cap."""

    header_timeout: ClassVar[float] = 10.0
    per_client: ClassVar[int] = 64
    trusted: ClassVar[tuple[IPNetwork, ...]] = ()
    open_by_client: ClassVar[dict[str, int]] = {}

    _counted: str | None = None
    _head_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        host = self.client[0] if self.client else ""
        if host and not is_trusted(host, self.trusted):
            key = client_key(host)
            if self.open_by_client.get(key, 0) >= self.per_client:
                transport.close()
                return
            self.open_by_client[key] = self.open_by_client.get(key, 0) + 1
            self._counted = key
        self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._counted is not None:
            left = self.open_by_client.get(self._counted, 1) - 1
            if left > 0:
                self.open_by_client[self._counted] = left
            else:
                self.open_by_client.pop(self._counted, None)
            self._counted = None
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self._arm_head_timer()  # the next request head has the same deadline

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.header_timeout, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        busy = self.cycle is not None and not self.cycle.response_complete
        if not busy and not self.transport.is_closing():
            self.transport.close()


def guarded_protocol(
    limits: ConnectionLimits, trusted: tuple[IPNetwork, ...]
) -> type[GuardedH11Protocol]:
    """A protocol class with its own limits and connection counts (one per server)."""
    return type(
        "GuardedH11Protocol",
        (GuardedH11Protocol,),
        {
            "header_timeout": limits.header_timeout,
            "per_client": limits.per_client,
            "trusted": trusted,
            "open_by_client": {},
        },
    )


def server_config(
    app: Any,
    *,
    host: str = "127.0.0.1",
    port: int = 8000,
    trusted_proxies: str = "",
    limits: ConnectionLimits | None = None,
    **extra: Any,
) -> uvicorn.Config:
    """uvicorn's config for the app: our protocol, no proxy headers (the app reads them)."""
    limits = limits or ConnectionLimits()
    options: dict[str, Any] = {
        "host": host,
        "port": port,
        "http": guarded_protocol(limits, parse_networks(trusted_proxies)),
        "ws": "none",
        "lifespan": "auto",  # the app may start work of its own (e.g. folding a ledger)
        # uvicorn would trust X-Forwarded-For from 127.0.0.1 on its own; the app does it
        # for NEWSLETTER_TRUSTED_PROXIES only (web/proxy.py)
        "proxy_headers": False,
        "server_header": False,
        "date_header": True,
        "timeout_keep_alive": limits.keep_alive,
        "limit_concurrency": limits.total,
        "h11_max_incomplete_event_size": limits.max_head,
        "backlog": 2048,
        "timeout_graceful_shutdown": 5,
    }
    options.update(extra)
    return uvicorn.Config(app, **options)


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
