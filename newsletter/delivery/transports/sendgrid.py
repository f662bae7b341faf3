"""SendGrid transport: v3 ``mail/send`` through the official ``sendgrid`` client.

One request carries up to 1,000 recipients, each a *personalization* with its own
``to``, list headers, ``substitutions`` (the unsubscribe link) and ``custom_args``
(issue, subscriber id) so webhook events tie back to a subscriber. The content, the
inline images and the category are the same for the whole request.

Up to ``concurrency`` requests are in flight at once (the send loop calls :meth:`send`
from that many threads), each on its own connection through a client of its own thread.
The JSON body is written once per request from parts encoded once per send (content,
images, sender) and a short fragment per recipient, with no helper object per
recipient; the official client still makes the request.

The client is a thin urllib wrapper with no timeout, no retries and headers that leak
from one call into the next, so this module sets a timeout on it, never passes per-call
headers, and decides what every fault means:

* 202: every recipient of the request is sent; ``X-Message-Id`` is recorded
* 401/403: :class:`~newsletter.errors.TransportAuthError` at once (one request, not 100)
* 429: every request waits until ``X-RateLimit-Reset`` (one answer pauses them all),
  then tries again; a rate limit stops the send only once one request has waited
  longer than ``max_rate_limit_wait`` (``SENDGRID_RATE_LIMIT_WAIT``) in all
* 5xx, or a connection that failed before the request left: capped exponential backoff
  with jitter; when the attempts run out the send stops and the rest stays pending
* a timeout or lost connection *after* the request left: ``uncertain`` (SendGrid may
  have accepted it), never resent blindly
* 413: the batch is split in two and each half sent; 400 and other 4xx: ``failed`` with
  SendGrid's error text (retried by the next run)
"""

from __future__ import annotations

import http.client
import json
import threading
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from json.encoder import encode_basestring_ascii as _q
from typing import Any

from newsletter.delivery.transports.base import (
    BuilderLike,
    Outcome,
    RecipientLike,
    Sleep,
    Transport,
)
from newsletter.delivery.transports.sendgrid_body import (
    bad_personalizations,
    common_json_tail,
    error_text,
    personalization_json,
)
from newsletter.errors import HeaderError, TransportAuthError, TransportError

MAX_PERSONALIZATIONS = 1000
MAX_BODY_BYTES = 30 * 1024 * 1024
#: a str body goes out as it is only with a Content-Type other than the bare JSON one
_CONTENT_TYPE = "application/json; charset=utf-8"


class _Retry(Exception):
    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class SendGridTransport(Transport):
    name = "sendgrid"
    batch_size = MAX_PERSONALIZATIONS

    def __init__(
        self,
        builder: BuilderLike,
        *,
        api_key: str,
        host: str = "https://api.sendgrid.com",
        timeout: float = 30.0,
        batch_size: int = MAX_PERSONALIZATIONS,
        concurrency: int = 1,
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_reset_wait: float = 60.0,
        max_rate_limit_wait: float = 600.0,
        tracking: bool = False,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        if not api_key:
            raise TransportError(
                "SENDGRID_API_KEY is not set", hint="set it in .env (a key with Mail Send access)"
            )
        self.builder = builder
        self.api_key = api_key
        self.host = host.rstrip("/")
        self.timeout = timeout
        self.batch_size = max(1, min(batch_size, MAX_PERSONALIZATIONS))
        self.concurrency = max(1, concurrency)
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_reset_wait = max_reset_wait
        self.max_rate_limit_wait = max_rate_limit_wait
        self.tracking = tracking
        self._sleep = sleep
        self._clock = clock
        self.requests = 0
        self._lock = threading.Lock()
        self._local = threading.local()  # each thread's own client (its own connection)
        self._open = False
        self._tail = ""  # the request body after the personalizations, encoded once
        self._slug = _q(builder.rendered.slug)
        self._resume_at = 0.0  # monotonic time before which no request leaves (429)
        #: top-level fields for every request of this send: send_at + batch_id, sandbox
        self.extra: dict[str, Any] = {}

    @property
    def description(self) -> str:
        mode = ", SANDBOX: nothing is delivered" if "mail_settings" in self.extra else ""
        return (
            f"sendgrid ({self.host}, up to {self.batch_size} recipients per request, "
            f"{self.concurrency} at once{mode})"
        )

    def open(self) -> None:
        self.stop_event.clear()
        self.fatal = None
        self._resume_at = 0.0
        self._tail = common_json_tail(self.builder, tracking=self.tracking, extra=self.extra)
        self._local = threading.local()
        self._open = True
        self._client()  # the SDK is importable and the key accepted by it: fail early

    def close(self) -> None:
        self._open = False
        self._local = threading.local()

    def _client(self) -> Any:
        client = getattr(self._local, "client", None)
        if client is None:
            from sendgrid import SendGridAPIClient

            client = SendGridAPIClient(api_key=self.api_key, host=self.host)
            # python_http_client has no default timeout; child clients copy this one. The
            # body is JSON already: this Content-Type makes the client send it as it is.
            client.client.timeout = self.timeout
            client.client.request_headers = {
                **client.client.request_headers,
                "Content-Type": _CONTENT_TYPE,
            }
            self._local.client = client
        return client

    # Scheduling and sandbox -----------------------------------------------------------
    def schedule(self, send_at: int, batch_id: str) -> None:
        """Every request of this send is delivered by SendGrid at ``send_at`` (Unix
        time, at most 72 h ahead) under ``batch_id``, which
        :func:`.sendgrid_schedule.cancel_batch` cancels."""
        self.extra.update(send_at=int(send_at), batch_id=batch_id)

    def sandbox(self) -> None:
        """SendGrid validates every request and delivers nothing (its sandbox mode)."""
        self.extra["mail_settings"] = {"sandbox_mode": {"enable": True}}

    def create_batch(self) -> str:
        """A new batch id for this send (:func:`.sendgrid_schedule.create_batch`)."""
        from newsletter.delivery.transports.sendgrid_schedule import create_batch

        return create_batch(self._client(), self.host)

    # Payload ------------------------------------------------------------------------
    def personalization(self, r: RecipientLike) -> str:
        """One recipient's personalization as JSON (see :func:`.personalization_json`)."""
        return personalization_json(self.builder, r, self._slug)

    def body(self, parts: Sequence[str]) -> str:
        """The request body: the personalizations, then the parts shared by every request."""
        tail = self._tail or common_json_tail(
            self.builder, tracking=self.tracking, extra=self.extra
        )
        return '{"personalizations":[' + ",".join(parts) + "]," + tail

    def payload(self, batch: Sequence[RecipientLike]) -> dict[str, Any]:
        """The request body for ``batch`` as a dict (for tests and tools)."""
        parsed: dict[str, Any] = json.loads(self.body([self.personalization(r) for r in batch]))
        return parsed

    def rehearse(self, batch: Sequence[RecipientLike]) -> int:
        parts: list[str] = []
        for r in batch:
            try:
                parts.append(self.personalization(r))
            except HeaderError:
                continue
        return len(self.body(parts))

    # Sending ------------------------------------------------------------------------
    def send(self, batch: Sequence[RecipientLike]) -> list[Outcome]:
        if not self._open:
            raise TransportError("the SendGrid transport is not open")
        if not batch:
            return []
        if self.fatal is not None or self.stop_event.is_set():
            return [Outcome.not_attempted(r.email, "stopped") for r in batch]
        # A recipient whose address or name cannot go into a header fails alone.
        unusable: dict[int, Outcome] = {}
        parts: list[str] = []
        for i, r in enumerate(batch):
            try:
                parts.append(self.personalization(r))
            except HeaderError as exc:
                reason = f"cannot build the message: {exc.message}"
                unusable[i] = Outcome.failed(r.email, reason, permanent=True)
        if unusable:
            usable = [r for i, r in enumerate(batch) if i not in unusable]
            sent = iter(self.send(usable))
            return [unusable[i] if i in unusable else next(sent) for i in range(len(batch))]
        body = self.body(parts)
        if len(body) >= MAX_BODY_BYTES and len(batch) > 1:  # ASCII: characters are bytes
            half = len(batch) // 2
            return self.send(batch[:half]) + self.send(batch[half:])
        return self._post(batch, body)

    def _post(self, batch: Sequence[RecipientLike], body: str) -> list[Outcome]:
        from python_http_client.exceptions import HTTPError as ApiHTTPError

        attempt = 0
        limited = 0.0  # seconds this request has waited for rate limits
        while True:
            if self._hold():
                return [Outcome.not_attempted(r.email, "stopped") for r in batch]
            try:
                return self._post_once(batch, body, ApiHTTPError)
            except _RateLimited as wait:
                if limited >= self.max_rate_limit_wait:
                    self.fatal = TransportError(
                        f"{self.host}: rate limited for {limited:.0f} s: {wait.reason}",
                        hint="the rest stays pending: re-run the send later to resume, or "
                        "raise SENDGRID_RATE_LIMIT_WAIT",
                    )
                    return [Outcome.retry(r.email, wait.reason) for r in batch]
                delay = wait.delay
                if delay is None:
                    delay = min(self.max_backoff, self.backoff * 2.0)
                delay = min(delay, self.max_rate_limit_wait - limited)
                limited += delay
                self._pause_all(delay)
            except _Retry as retry:
                attempt += 1
                if attempt >= self.max_attempts:
                    self.fatal = TransportError(
                        f"{self.host}: gave up after {attempt} attempts: {retry.reason}",
                        hint="the rest stays pending: re-run the send later to resume",
                    )
                    return [Outcome.retry(r.email, retry.reason) for r in batch]
                if self.pause(attempt, retry.delay):
                    return [Outcome.not_attempted(r.email, "stopped") for r in batch]
            except _Split:
                half = len(batch) // 2
                return self.send(batch[:half]) + self.send(batch[half:])
            except _Refused as refused:
                # SendGrid named the bad personalizations: they fail, the rest go again
                rest = [r for i, r in enumerate(batch) if i not in refused.indices]
                again = iter(self.send(rest)) if rest else iter(())
                return [
                    Outcome.failed(r.email, refused.reason, permanent=True)
                    if i in refused.indices
                    else next(again)
                    for i, r in enumerate(batch)
                ]

    def _pause_all(self, delay: float) -> None:
        """A 429 holds back every request of this send until the limit resets."""
        with self._lock:
            self._resume_at = max(self._resume_at, time.monotonic() + delay)

    def _hold(self) -> bool:
        """Wait while a rate limit holds requests back; True when the send is stopping."""
        with self._lock:
            resume_at = self._resume_at
        seen = getattr(self._local, "waited_for", 0.0)
        if resume_at <= seen:
            return self.stop_event.is_set()
        self._local.waited_for = resume_at  # a test's sleep does not pass the time
        delay = resume_at - time.monotonic()
        if delay <= 0:
            return self.stop_event.is_set()
        return self.pause(1, delay)

    def _post_once(
        self, batch: Sequence[RecipientLike], body: str, api_error: type[Exception]
    ) -> list[Outcome]:
        client = self._client()
        with self._lock:
            self.requests += 1
        try:
            response = client.client.mail.send.post(request_body=body)
        except urllib.error.URLError as exc:
            # raised while connecting or sending: the request did not get through
            raise _Retry(f"{self.host}: cannot connect: {exc.reason}") from exc
        except api_error as exc:
            return self._http_error(batch, exc)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            reason = (
                f"{self.host}: no answer after the request was sent ({why}); "
                "SendGrid may have accepted it"
            )
            return [Outcome.uncertain(r.email, reason) for r in batch]
        status = int(response.status_code)
        headers = response.headers
        if 200 <= status < 300:
            message_id = (headers.get("X-Message-Id") if headers is not None else None) or ""
            return [Outcome.sent(r.email, str(message_id)) for r in batch]
        return [Outcome.uncertain(r.email, f"unexpected answer {status}") for r in batch]

    def _http_error(self, batch: Sequence[RecipientLike], exc: Any) -> list[Outcome]:
        status = int(getattr(exc, "status_code", 0) or 0)
        body = getattr(exc, "body", b"")
        headers: Mapping[str, str] = getattr(exc, "headers", None) or {}
        text = error_text(status, body)
        if status in (401, 403):
            self.fatal = TransportAuthError(
                f"{self.host}: the API key was refused: {text}",
                hint="check SENDGRID_API_KEY: it must be valid and allowed to send mail",
            )
            return [Outcome.not_attempted(r.email, text) for r in batch]
        if status == 429:
            raise _RateLimited(text, self._reset_delay(headers))
        if status >= 500:
            raise _Retry(text)
        if status == 413 and len(batch) > 1:
            raise _Split
        if status == 400:
            bad = bad_personalizations(body)
            if bad and all(i < len(batch) for i in bad):
                raise _Refused(bad, text)
            # the request as a whole is refused: every batch would be, so stop here
            self.fatal = TransportError(
                f"{self.host}: the request was refused: {text}",
                hint="fix the cause (sender, content, settings), then re-run to resume",
            )
        return [Outcome.failed(r.email, text, permanent=False) for r in batch]

    def _reset_delay(self, headers: Mapping[str, str]) -> float | None:
        value = headers.get("X-RateLimit-Reset")
        if value is None:
            return None
        try:
            reset = float(value)
        except ValueError:
            return None
        return min(self.max_reset_wait, max(0.0, reset - self._clock()) + 0.05)


class _RateLimited(_Retry):
    """429: wait for the limit to reset (every request waits), then try again."""


class _Refused(Exception):
    """400 naming particular personalizations: those recipients fail, the rest are resent."""

    def __init__(self, indices: set[int], reason: str) -> None:
        super().__init__(reason)
        self.indices = indices
        self.reason = reason


class _Split(Exception):
    """413: the request was too large; send each half on its own."""
