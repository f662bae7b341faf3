"""What protects the web endpoints: CSRF tokens, rate limits, headers, log redaction.

* :class:`CsrfGuard` -- double-submit: a random nonce in a ``SameSite=Strict`` cookie and
  ``HMAC(key, nonce | time window)`` in the form, the key derived from
  ``NEWSLETTER_SECRET_KEY``. A form is good for one to two windows.
* :class:`SlidingWindow` -- an in-memory sliding-window limiter per key (client IP,
  address). One process only: behind several workers each keeps its own count.
* :func:`is_cross_site` -- Fetch Metadata / Origin check for the forms whose authority
  is the signed token in their URL (unsubscribe, confirm).
* :class:`SecurityHeaders` -- ASGI middleware: CSP, nosniff, no-referrer, no framing,
  no caching of pages that carry tokens, HSTS over https; on every response, errors
  included (the app puts it outside Starlette's own error handling).
* :class:`HostCheck` -- ASGI middleware: a request must name our host
  (NEWSLETTER_PUBLIC_URL's), or every absolute URL we build (redirects) would echo it.
* :class:`RedactTokens` -- a logging filter so access logs never show a token or the
  inbound secret.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import re
import secrets
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CSRF_COOKIE: Final = "nl_csrf"
CSRF_FIELD: Final = "csrf"
CSRF_WINDOW: Final = 3600  # seconds; a form is accepted for one to two windows

PAGE_CSP: Final = (
    "default-src 'self'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
#: Archived issues are emails: inline styles and (hosted) images over https.
ARCHIVE_CSP: Final = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' https: data:; "
    "form-action 'self'; base-uri 'none'; object-src 'none'; frame-ancestors 'none'"
)
COMMON_HEADERS: Final = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
)


class CsrfGuard:
    """Double-submit CSRF tokens bound to a time window (no server-side state)."""

    def __init__(
        self,
        secret: str,
        *,
        window: int = CSRF_WINDOW,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._key = hashlib.sha256(b"newsletter web csrf|" + secret.encode()).digest()
        self.window = window
        self.clock = clock

    @staticmethod
    def new_nonce() -> str:
        return secrets.token_urlsafe(24)

    @staticmethod
    def valid_nonce(value: str | None) -> bool:
        return bool(value) and re.fullmatch(r"[A-Za-z0-9_-]{32}", value or "") is not None

    def _mac(self, nonce: str, index: int) -> str:
        return hmac.new(self._key, f"{nonce}|{index}".encode(), hashlib.sha256).hexdigest()

    def token_for(self, nonce: str) -> str:
        index = int(self.clock() // self.window)
        return f"{index}.{self._mac(nonce, index)}"

    def check(self, nonce: str | None, token: str | None) -> bool:
        """True if ``token`` was minted for ``nonce`` in this window or the previous one."""
        if not nonce or not token or not self.valid_nonce(nonce):
            return False
        index_text, _, mac = token.partition(".")
        if not index_text.isdigit() or len(index_text) > 12:
            return False
        index = int(index_text)
        current = int(self.clock() // self.window)
        if index not in (current, current - 1):
            return False
        return hmac.compare_digest(mac.encode(), self._mac(nonce, index).encode())


class SlidingWindow:
    """At most ``limit`` hits per ``window`` seconds for each key, in memory."""

    def __init__(
        self,
        limit: int,
        window: float,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_keys: int = 100_000,
    ) -> None:
        self.limit = limit
        self.window = window
        self.clock = clock
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Record a hit; None if allowed, else the seconds until the next one would be."""
        now = self.clock()
        with self._lock:
            hits = self._hits.get(key)
            if hits is None:
                if len(self._hits) >= self.max_keys:
                    self._prune(now)
                hits = self._hits[key] = deque()
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(hits[0] + self.window - now, 0.0)
            hits.append(now)
            return None

    def _prune(self, now: float) -> None:
        stale = [k for k, v in self._hits.items() if not v or v[-1] <= now - self.window]
        for key in stale:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:  # still full: forget the oldest half
            for key in list(self._hits)[: self.max_keys // 2]:
                del self._hits[key]


def is_cross_site(headers: Mapping[str, str], own_origins: set[str]) -> bool:
    """True if a browser says this POST came from another site.

    ``Sec-Fetch-Site`` is trusted when present. Otherwise an ``Origin`` that names a
    different origin refuses (``Origin: null`` is what a same-origin form sends under
    ``Referrer-Policy: no-referrer``, so it does not). Requests with neither header
    are not from a current browser's cross-site form.
    """
    site = headers.get("sec-fetch-site", "").strip().lower()
    if site:
        return site not in ("same-origin", "none")
    origin = headers.get("origin", "").strip().lower().rstrip("/")
    return bool(origin) and origin != "null" and origin not in own_origins


HSTS: Final = (b"strict-transport-security", b"max-age=31536000")


def error_headers(*, https: bool = False) -> list[tuple[bytes, bytes]]:
    """The security headers of an answer the server writes itself, outside the app (a
    malformed request, a head too large, too many connections): as on the app's errors."""
    headers = [(b"content-security-policy", PAGE_CSP.encode()), *COMMON_HEADERS]
    headers.append((b"cache-control", b"no-store"))
    if https:
        headers.append(HSTS)
    return headers


class SecurityHeaders:
    """Adds security headers to every HTTP response that does not set them itself.

    ``Cache-Control: no-store`` goes on everything but a successful static or archive
    file: pages carry tokens and personal state, errors must not be cached either.
    HSTS goes on responses to https requests (the scheme the trusted proxy reports).
    """

    def __init__(self, app: ASGIApp, *, archive_prefix: str = "/archive") -> None:
        self.app = app
        self.archive_prefix = archive_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        archive = path == self.archive_prefix or path.startswith(self.archive_prefix + "/")
        static = path.startswith("/static/")

        https = scope.get("scheme") == "https"

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                extra = [
                    (b"content-security-policy", (ARCHIVE_CSP if archive else PAGE_CSP).encode()),
                    *COMMON_HEADERS,
                ]
                if https:
                    extra.append(HSTS)
                ok = 200 <= int(message.get("status", 200)) < 400
                if not ((archive or static) and ok):
                    extra.append((b"cache-control", b"no-store"))
                    if b"cache-control" in present:  # an error replaces a file's caching
                        headers = [(n, v) for n, v in headers if n.lower() != b"cache-control"]
                        present.discard(b"cache-control")
                headers.extend((n, v) for n, v in extra if n not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "localhost", "[::1]"})


def host_of(url: str) -> str:
    """``https://Digest.example.org:443/x`` -> ``digest.example.org`` (default port dropped)."""
    netloc = url.split("://", 1)[-1].split("/", 1)[0].lower()
    scheme = url.split("://", 1)[0].lower()
    default = {"https": ":443", "http": ":80"}.get(scheme, "")
    return netloc.removesuffix(default) if default else netloc


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class HostCheck:
    """400 for a ``Host`` that is not ours: NEWSLETTER_PUBLIC_URL's host, or a loopback
    name when the connection itself comes from this machine (health checks, tests).
    Without a public URL every host is accepted (development)."""

    def __init__(self, app: ASGIApp, *, public_url: str | None) -> None:
        self.app = app
        self.allowed = {host_of(public_url)} if public_url else None

    def _ok(self, scope: Scope) -> bool:
        if self.allowed is None:
            return True
        host = ""
        for name, value in scope.get("headers", []):
            if name == b"host":
                host = value.decode("latin-1").strip().lower()
                break
        if host.endswith(":80") or host.endswith(":443"):  # the default ports name the same
            bare = host.rsplit(":", 1)[0]
            if bare in self.allowed:
                return True
        if host in self.allowed:
            return True
        name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
        peer = scope.get("newsletter.peer") or scope.get("client") or ("",)
        return name in LOOPBACK_HOSTS and _is_loopback(str(peer[0]))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._ok(scope):
            await self.app(scope, receive, send)
            return
        from starlette.responses import PlainTextResponse

        response = PlainTextResponse(
            "Unknown host: this server answers for its own name only.\n", status_code=400
        )
        await response(scope, receive, send)


_SECRET_PATH = re.compile(r"^(/(?:u|confirm|inbound)/)[^/?\s]+")


def redact_path(path: str) -> str:
    """``/u/<token>`` -> ``/u/[redacted]``; likewise ``/confirm/`` and ``/inbound/``."""
    return _SECRET_PATH.sub(r"\1[redacted]", path)


class RedactTokens(logging.Filter):
    """Rewrites uvicorn access-log lines so tokens and the inbound secret never show."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple):
            record.args = tuple(redact_path(a) if isinstance(a, str) else a for a in args)
        if isinstance(record.msg, str):
            record.msg = redact_path(record.msg)
        return True
