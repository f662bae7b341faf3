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
import urllib.request
from collections.abc import Callable, Sequence
from json.encoder import encode_basestring_ascii as _q
from typing import Any

from newsletter.delivery.transports.base import (
    LEFT_WHILE_WAITING,
    BuilderLike,
    Outcome,
    RecipientLike,
    Sleep,
    Transport,
)
from newsletter.delivery.transports.sendgrid_answers import (
    RateLimited,
    Refused,
    Retry,
    Split,
    read_error,
)
from newsletter.delivery.transports.sendgrid_body import (
    PersonalizationWriter,
    Prepared,
    common_json_tail,
    personalization_json,
)
from newsletter.errors import TransportError

MAX_PERSONALIZATIONS = 1000
#: requests in flight unless NEWSLETTER_CONCURRENCY (or --concurrency) says otherwise:
#: SendGrid takes many at once, and each spends most of its time waiting for the answer.
#: Not 32: a kill -9 leaves every request in flight in doubt (16,000 readers here), and
#: 100,000 recipients took as long with 32 (4.24 s) as with 16 (4.11 s): the CPU limits
DEFAULT_CONCURRENCY = 16
MAX_BODY_BYTES = 30 * 1024 * 1024
#: a str body goes out as it is only with a Content-Type other than the bare JSON one
_CONTENT_TYPE = "application/json; charset=utf-8"


class SendGridTransport(Transport):
    name = "sendgrid"
    batch_size = MAX_PERSONALIZATIONS
    #: prepare() is a pure function of its rows (and this send's builder): the send loop
    #: may run it in a forked child (:mod:`newsletter.delivery.forked`)
    prepare_in_child = True

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
        self._writer: PersonalizationWriter | None = None
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
        self._writer = PersonalizationWriter(self.builder, self._slug)
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

    def prepare(self, rows: Sequence[tuple[str, str]]) -> Prepared:
        """One request's ``(email, name)`` rows written ahead of the hand-off (the send
        loop does this while earlier requests are in flight)."""
        writer = self._writer or PersonalizationWriter(self.builder, self._slug)
        self._writer = writer
        return writer.write(rows)

    def rehearse(self, batch: Sequence[RecipientLike]) -> int:
        prepared = self.prepare([(r.email, r.name) for r in batch])
        return len(self.body([part for part in prepared.parts if part is not None]))

    # Sending ------------------------------------------------------------------------
    def send(self, batch: Sequence[RecipientLike]) -> list[Outcome]:
        if not batch:
            return []
        return self.send_prepared(self.prepare([(r.email, r.name) for r in batch]))

    def send_prepared(self, prepared: Prepared) -> list[Outcome]:
        """Hand off one prepared request: one outcome per recipient, in order."""
        if not self._open:
            raise TransportError("the SendGrid transport is not open")
        emails = prepared.emails
        if not emails:
            return []
        if self.fatal is not None or self.stop_event.is_set():
            return [Outcome.not_attempted(email, "stopped") for email in emails]
        # A recipient whose address or name cannot go into a header fails alone.
        failures = prepared.failures
        if not failures:
            return self._deliver(emails, prepared.parts)  # type: ignore[arg-type]
        usable = [i for i in range(len(emails)) if i not in failures]
        sent = iter(
            self._deliver([emails[i] for i in usable], [prepared.parts[i] or "" for i in usable])
        )
        return [failures[i] if i in failures else next(sent) for i in range(len(emails))]

    def _deliver(self, emails: list[str], parts: list[str]) -> list[Outcome]:
        if not emails:
            return []
        body = self.body(parts)
        if len(body) >= MAX_BODY_BYTES and len(emails) > 1:  # ASCII: characters are bytes
            half = len(emails) // 2
            return self._deliver(emails[:half], parts[:half]) + self._deliver(
                emails[half:], parts[half:]
            )
        return self._post(emails, parts, body)

    def _post(self, emails: list[str], parts: list[str], body: str) -> list[Outcome]:
        from python_http_client.exceptions import HTTPError as ApiHTTPError

        attempt = 0
        limited = 0.0  # seconds this request has waited for rate limits
        while True:
            before = getattr(self._local, "waited_for", 0.0)
            if self._hold():
                return [Outcome.not_attempted(email, "stopped") for email in emails]
            waited = attempt or limited or getattr(self._local, "waited_for", 0.0) != before
            left = self.recheck(emails) if waited and self.recheck is not None else set()
            if left:  # asked again after the wait: who left the list meanwhile gets no copy
                keep = [i for i, email in enumerate(emails) if email not in left]
                kept = [emails[i] for i in keep], [parts[i] for i in keep]
                again = iter(self._deliver(*kept) if keep else [])
                return [
                    Outcome.not_attempted(email, LEFT_WHILE_WAITING)
                    if email in left
                    else next(again)
                    for email in emails
                ]
            try:
                return self._post_once(emails, body, ApiHTTPError)
            except RateLimited as wait:
                if limited >= self.max_rate_limit_wait:
                    self.fatal = TransportError(
                        f"{self.host}: rate limited for {limited:.0f} s: {wait.reason}",
                        hint="the rest stays pending: re-run the send later to resume, or "
                        "raise SENDGRID_RATE_LIMIT_WAIT",
                    )
                    return [Outcome.retry(email, wait.reason) for email in emails]
                delay = wait.delay
                if delay is None:
                    delay = min(self.max_backoff, self.backoff * 2.0)
                delay = min(delay, self.max_rate_limit_wait - limited)
                limited += delay
                self._pause_all(delay)
            except Retry as retry:
                attempt += 1
                if attempt >= self.max_attempts:
                    self.fatal = TransportError(
                        f"{self.host}: gave up after {attempt} attempts: {retry.reason}",
                        hint="the rest stays pending: re-run the send later to resume",
                    )
                    return [Outcome.retry(email, retry.reason) for email in emails]
                if self.pause(attempt, retry.delay):
                    return [Outcome.not_attempted(email, "stopped") for email in emails]
            except Split:
                half = len(emails) // 2
                return self._deliver(emails[:half], parts[:half]) + self._deliver(
                    emails[half:], parts[half:]
                )
            except Refused as refused:
                # SendGrid named the bad personalizations: they fail, the rest go again
                keep = [i for i in range(len(emails)) if i not in refused.indices]
                again = iter(self._deliver([emails[i] for i in keep], [parts[i] for i in keep]))
                return [
                    Outcome.failed(email, refused.reason, permanent=True)
                    if i in refused.indices
                    else next(again)
                    for i, email in enumerate(emails)
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

    def _mail_send(self) -> tuple[Any, urllib.request.OpenerDirector]:
        """This thread's client for ``/v3/mail/send`` and its urllib opener, made once."""
        found: tuple[Any, urllib.request.OpenerDirector] | None = getattr(
            self._local, "mail_send", None
        )
        if found is None:
            found = (self._client().client.mail.send, urllib.request.build_opener())
            self._local.mail_send = found
        return found

    def _post_once(self, emails: list[str], body: str, api_error: type[Exception]) -> list[Outcome]:
        from python_http_client.client import Response

        endpoint, opener = self._mail_send()
        with self._lock:
            self.requests += 1
        # The client's own request path (its URL, headers, error classes) minus what its
        # post() adds per call: a new opener, and a debug line that formats the repr of
        # the whole body even with logging off (4 ms of CPU for a 0.7 MB request).
        request = urllib.request.Request(
            endpoint._build_url(None),
            data=body.encode("utf-8"),
            headers=endpoint.request_headers,
            method="POST",
        )
        try:
            response = Response(endpoint._make_request(opener, request, timeout=self.timeout))
        except urllib.error.URLError as exc:
            # raised while connecting or sending: the request did not get through
            raise Retry(f"{self.host}: cannot connect: {exc.reason}") from exc
        except api_error as exc:
            return self._http_error(emails, exc)
        except (TimeoutError, OSError, http.client.HTTPException) as exc:
            why = "timed out" if isinstance(exc, TimeoutError) else f"{type(exc).__name__}: {exc}"
            reason = (
                f"{self.host}: no answer after the request was sent ({why}); "
                "SendGrid may have accepted it"
            )
            return [Outcome.uncertain(email, reason) for email in emails]
        status = int(response.status_code)
        headers = response.headers
        if 200 <= status < 300:
            message_id = (headers.get("X-Message-Id") if headers is not None else None) or ""
            return [Outcome.sent(email, str(message_id)) for email in emails]
        return [Outcome.uncertain(email, f"unexpected answer {status}") for email in emails]

    def _http_error(self, emails: list[str], exc: Any) -> list[Outcome]:
        outcomes, fatal = read_error(
            emails, exc, host=self.host, max_reset_wait=self.max_reset_wait, clock=self._clock
        )
        if fatal is not None:
            self.fatal = fatal
        return outcomes
