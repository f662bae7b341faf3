"""Budgets that keep one visitor from spending everyone's share of the server.

* :class:`OncePerKey` -- an unsubscribe is idempotent, so replays of one (a reader
  reloading the link 600 times, a provider retrying the one-click POST) join the write
  in flight or reuse its answer for a while, and never reach the subscriber list again.
  Nobody else's unsubscribe waits behind them.
* :class:`ClientBudget` -- ASGI middleware: page loads per client (the real client, see
  :mod:`.proxy`), a 429 page with Retry-After beyond it. The RFC 8058 one-click POST is
  not counted: mail providers send it for many readers from few addresses.
* :class:`BodyGuard` -- ASGI middleware: a request body must keep arriving (each chunk
  within ``chunk_timeout``) and be complete within its route family's deadline, else
  408; its size is capped by Starlette's ``max_body_size`` while it is read.

All counts are in memory, per process: a second instance keeps its own.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from newsletter.web.guards import SlidingWindow
from newsletter.web.proxy import client_key

T = TypeVar("T")


class OncePerKey(Generic[T]):
    """Run ``work`` once per key: concurrent callers share it, later ones reuse its result
    for ``ttl`` seconds if ``remember(result)``. Failures are never remembered (the next
    caller tries again)."""

    def __init__(
        self,
        ttl: float = 120.0,
        *,
        remember: Callable[[T], bool] = lambda result: True,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.ttl = ttl
        self.remember = remember
        self.clock = clock
        self.max_keys = max_keys
        self.runs = 0  # how many times work really ran (for tests and the log)
        self._done: dict[str, tuple[float, T]] = {}
        self._running: dict[str, asyncio.Future[T]] = {}

    async def run(self, key: str, work: Callable[[], Awaitable[T]]) -> T:
        now = self.clock()
        done = self._done.get(key)
        if done is not None and now - done[0] < self.ttl:
            return done[1]
        running = self._running.get(key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._running[key] = future
        try:
            self.runs += 1
            result = await work()
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: no "never retrieved" warning if nobody waits
            raise
        else:
            future.set_result(result)
            if self.remember(result):
                if len(self._done) >= self.max_keys:
                    self._prune(now)
                self._done[key] = (self.clock(), result)
            return result
        finally:
            del self._running[key]

    def remembers(self, key: str) -> bool:
        """Whether a call for ``key`` now would be answered from memory."""
        done = self._done.get(key)
        return done is not None and self.clock() - done[0] < self.ttl

    def forget(self, key: str) -> None:
        """The next call for ``key`` runs again (its state changed another way)."""
        self._done.pop(key, None)

    def clear(self) -> None:
        self._done.clear()

    def _prune(self, now: float) -> None:
        for key in [k for k, (at, _) in self._done.items() if now - at >= self.ttl]:
            del self._done[key]
        if len(self._done) >= self.max_keys:
            for key in list(self._done)[: self.max_keys // 2]:
                del self._done[key]


def _is_page_request(scope: Scope) -> bool:
    """Requests a person's browser makes to the pages (not providers, not static files)."""
    method = scope.get("method", "")
    path: str = scope.get("path", "")
    if method in ("GET", "HEAD"):
        # /reports too: each try of its token, and each page, costs a report build
        return path in ("/", "/subscribe", "/reports") or path.startswith(("/u/", "/confirm/"))
    # /u/ POSTs are not counted: an unsubscribe is never refused (OncePerKey makes replays
    # cheap); /subscribe POSTs have their own budget in the form
    return method == "POST" and path.startswith("/confirm/")


class ClientBudget:
    """At most ``limit`` page requests per ``window`` seconds per client, else a 429."""

    def __init__(self, app: ASGIApp, *, limit: int = 120, window: float = 60.0) -> None:
        self.app = app
        self.window = SlidingWindow(limit, window)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _is_page_request(scope):
            client = scope.get("client")
            wait = self.window.hit(client_key(client[0]) if client else "unknown")
            if wait is not None:
                await too_many_requests(scope, receive, send, wait)
                return
        await self.app(scope, receive, send)


async def too_many_requests(scope: Scope, receive: Receive, send: Send, wait: float) -> None:
    from starlette.responses import HTMLResponse

    body = (
        "<!DOCTYPE html><html lang=en><meta charset=utf-8><title>Too many requests</title>"
        "<h1>Too many requests</h1><p>This connection has asked for pages too often. "
        "Please wait a minute and try again.</p></html>"
    )
    response = HTMLResponse(
        body, status_code=429, headers={"Retry-After": str(max(1, math.ceil(wait)))}
    )
    await response(scope, receive, send)


@dataclass(frozen=True, slots=True)
class BodyDeadline:
    """How long a route family's body may take: per chunk, and in all."""

    chunk: float
    total: float


class BodyGuard:
    """408 for a request body that stalls or trickles past its route family's deadline."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        default: BodyDeadline,
        families: dict[str, BodyDeadline] | None = None,
    ) -> None:
        self.app = app
        self.default = default
        self.families = families or {}

    def _deadline(self, path: str) -> BodyDeadline:
        for prefix, deadline in self.families.items():
            if path.startswith(prefix):
                return deadline
        return self.default

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        deadline = self._deadline(scope.get("path", ""))
        loop = asyncio.get_running_loop()
        ends = loop.time() + deadline.total

        complete = False

        async def receive_in_time() -> Message:
            nonlocal complete
            if complete:  # after the body: waiting for a disconnect is not reading
                return await receive()
            left = min(deadline.chunk, ends - loop.time())
            try:
                async with asyncio.timeout(max(left, 0.0)):
                    message = await receive()
            except TimeoutError:
                raise HTTPException(408, "the request body did not arrive in time") from None
            if message["type"] != "http.request" or not message.get("more_body", False):
                complete = True
            return message

        await self.app(scope, receive_in_time, send)
