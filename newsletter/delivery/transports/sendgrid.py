"""SendGrid transport: v3 ``mail/send`` through the official ``sendgrid`` client.

One request carries up to 1,000 recipients, each a *personalization* with its own
``to``, list headers, ``substitutions`` (the unsubscribe link) and ``custom_args``
(issue, subscriber id) so webhook events tie back to a subscriber. The content, the
inline images and the category are the same for the whole request.

The client is a thin urllib wrapper with no timeout, no retries and headers that leak
from one call into the next, so this module sets a timeout on it, never passes per-call
headers, and decides what every fault means:

* 202: every recipient of the request is sent; ``X-Message-Id`` is recorded
* 401/403: :class:`~newsletter.errors.TransportAuthError` at once (one request, not 100)
* 429: wait until ``X-RateLimit-Reset`` (capped), then try again
* 5xx, or a connection that failed before the request left: capped exponential backoff
  with jitter; when the attempts run out the send stops and the rest stays pending
* a timeout or lost connection *after* the request left: ``uncertain`` (SendGrid may
  have accepted it), never resent blindly
* 413: the batch is split in two and each half sent; 400 and other 4xx: ``failed`` with
  SendGrid's error text (retried by the next run)
"""

from __future__ import annotations

import base64
import http.client
import json
import time
import urllib.error
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from newsletter.compose.message import ascii_address, check_header
from newsletter.delivery.transports.base import (
    BuilderLike,
    Outcome,
    RecipientLike,
    Sleep,
    Transport,
)
from newsletter.errors import HeaderError, TransportAuthError, TransportError

MAX_PERSONALIZATIONS = 1000
MAX_BODY_BYTES = 30 * 1024 * 1024
_NAME_UNSAFE = str.maketrans({";": " ", ",": " ", '"': " ", "\r": " ", "\n": " "})


def _error_text(status: int, body: bytes | str | None) -> str:
    """SendGrid's ``{"errors": [{"message", "field"}]}`` as one line."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        for err in data["errors"]:
            if isinstance(err, dict):
                msg = str(err.get("message", "")).strip()
                field = err.get("field")
                parts.append(f"{msg} ({field})" if field else msg)
    text = "; ".join(p for p in parts if p) or " ".join(raw.split())[:300]
    return f"SendGrid answered {status}: {text}" if text else f"SendGrid answered {status}"


def _bad_personalizations(body: bytes | str | None) -> set[int] | None:
    """Indices N of ``personalizations.N...`` fields a 400 names; None if any error is
    about the request as a whole (then every batch would fail alike)."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    found: set[int] = set()
    for err in errors:
        field = str(err.get("field") or "") if isinstance(err, dict) else ""
        parts = field.split(".")
        if len(parts) < 2 or parts[0] != "personalizations" or not parts[1].isdigit():
            return None
        found.add(int(parts[1]))
    return found


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
        max_attempts: int = 5,
        backoff: float = 1.0,
        max_backoff: float = 60.0,
        max_reset_wait: float = 60.0,
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
        self.max_attempts = max(1, max_attempts)
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.max_reset_wait = max_reset_wait
        self.tracking = tracking
        self._sleep = sleep
        self._clock = clock
        self.requests = 0
        self._client: Any = None
        self._common: dict[str, Any] | None = None

    @property
    def description(self) -> str:
        return f"sendgrid ({self.host}, up to {self.batch_size} recipients per request)"

    def open(self) -> None:
        from sendgrid import SendGridAPIClient

        self.stop_event.clear()
        self.fatal = None
        self._client = SendGridAPIClient(api_key=self.api_key, host=self.host)
        # python_http_client has no default timeout; child clients copy this one.
        self._client.client.timeout = self.timeout
        self._common = self._common_payload()

    def close(self) -> None:
        self._client = None

    # Payload ------------------------------------------------------------------------
    def _common_payload(self) -> dict[str, Any]:
        b = self.builder
        rendered = b.rendered
        sender: dict[str, str] = {"email": b.from_address}
        if b.from_name:
            sender["name"] = b.from_name
        payload: dict[str, Any] = {
            "from": sender,
            "subject": b.subject,
            "content": [
                {"type": "text/plain", "value": rendered.text},
                {"type": "text/html", "value": rendered.html},
            ],
            "categories": [rendered.slug],
            # explicit either way: the account's default must not decide for the readers
            "tracking_settings": {
                "open_tracking": {"enable": self.tracking},
                "click_tracking": {"enable": self.tracking, "enable_text": False},
            },
        }
        if b.reply_to:
            payload["reply_to"] = {"email": b.reply_to}
        if rendered.images:
            payload["attachments"] = [
                {
                    "content": base64.b64encode(img.data).decode("ascii"),
                    "type": f"{img.maintype}/{img.subtype}",
                    "filename": img.filename,
                    "disposition": "inline",
                    "content_id": img.cid,
                }
                for img in rendered.images
            ]
        return payload

    def personalization(self, r: RecipientLike) -> dict[str, Any]:
        to: dict[str, str] = {"email": ascii_address(r.email)}
        name = " ".join(r.name.translate(_NAME_UNSAFE).split())
        if name:
            to["name"] = name
        url = self.builder.unsubscribe_url(r)  # one signed token for headers and body
        return {
            "to": [to],
            "headers": dict(self.builder.list_headers(r, url=url)),
            "substitutions": dict(self.builder.substitutions(r, url=url)),
            "custom_args": {"issue": self.builder.rendered.slug, "subscriber_id": r.subscriber_id},
        }

    def payload(self, batch: Sequence[RecipientLike]) -> dict[str, Any]:
        common = self._common if self._common is not None else self._common_payload()
        return {"personalizations": [self.personalization(r) for r in batch], **common}

    def rehearse(self, batch: Sequence[RecipientLike]) -> int:
        return len(json.dumps(self.payload(batch)).encode())

    # Sending ------------------------------------------------------------------------
    def send(self, batch: Sequence[RecipientLike]) -> list[Outcome]:
        if self._client is None:
            raise TransportError("the SendGrid transport is not open")
        if not batch:
            return []
        if self.fatal is not None or self.stop_event.is_set():
            return [Outcome.not_attempted(r.email, "stopped") for r in batch]
        # A recipient whose address or name cannot go into a header fails alone.
        unusable: dict[int, Outcome] = {}
        for i, r in enumerate(batch):
            try:
                ascii_address(r.email)
                check_header("To", r.name)
            except HeaderError as exc:
                reason = f"cannot build the message: {exc.message}"
                unusable[i] = Outcome.failed(r.email, reason, permanent=True)
        if unusable:
            usable = [r for i, r in enumerate(batch) if i not in unusable]
            sent = iter(self.send(usable))
            return [unusable[i] if i in unusable else next(sent) for i in range(len(batch))]
        payload = self.payload(batch)
        size = len(json.dumps(payload).encode())
        if size >= MAX_BODY_BYTES and len(batch) > 1:
            half = len(batch) // 2
            return self.send(batch[:half]) + self.send(batch[half:])
        return self._post(batch, payload)

    def _post(self, batch: Sequence[RecipientLike], payload: dict[str, Any]) -> list[Outcome]:
        from python_http_client.exceptions import HTTPError as ApiHTTPError

        attempt = 0
        while True:
            attempt += 1
            try:
                return self._post_once(batch, payload, ApiHTTPError)
            except _Retry as retry:
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

    def _post_once(
        self, batch: Sequence[RecipientLike], payload: dict[str, Any], api_error: type[Exception]
    ) -> list[Outcome]:
        client = self._client
        client.reset_request_headers()  # drop anything a previous call left behind
        self.requests += 1
        try:
            response = client.client.mail.send.post(request_body=payload)
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
        text = _error_text(status, body)
        if status in (401, 403):
            self.fatal = TransportAuthError(
                f"{self.host}: the API key was refused: {text}",
                hint="check SENDGRID_API_KEY: it must be valid and allowed to send mail",
            )
            return [Outcome.not_attempted(r.email, text) for r in batch]
        if status == 429:
            raise _Retry(text, self._reset_delay(headers))
        if status >= 500:
            raise _Retry(text)
        if status == 413 and len(batch) > 1:
            raise _Split
        if status == 400:
            bad = _bad_personalizations(body)
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


class _Refused(Exception):
    """400 naming particular personalizations: those recipients fail, the rest are resent."""

    def __init__(self, indices: set[int], reason: str) -> None:
        super().__init__(reason)
        self.indices = indices
        self.reason = reason


class _Split(Exception):
    """413: the request was too large; send each half on its own."""
