"""What SendGrid's error answers mean for the recipients of a request: an outcome each,
a reason to stop the send, or a signal to the request loop (wait, retry, split, resend
the rest); see :mod:`.sendgrid` for the policy as a whole."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from newsletter.delivery.transports.base import Outcome
from newsletter.delivery.transports.sendgrid_body import bad_personalizations, error_text
from newsletter.errors import TransportAuthError, TransportError


class Retry(Exception):
    """5xx, or no connection: try the same request again after a backoff."""

    def __init__(self, reason: str, delay: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.delay = delay


class RateLimited(Retry):
    """429: wait for the limit to reset (every request waits), then try again."""


class Refused(Exception):
    """400 naming particular personalizations: those recipients fail, the rest are resent."""

    def __init__(self, indices: set[int], reason: str) -> None:
        super().__init__(reason)
        self.indices = indices
        self.reason = reason


class Split(Exception):
    """413: the request was too large; send each half on its own."""


def read_error(
    emails: list[str],
    exc: Any,
    *,
    host: str,
    max_reset_wait: float,
    clock: Callable[[], float],
) -> tuple[list[Outcome], TransportError | None]:
    """The outcomes of a request SendGrid answered with an error (``exc``, the client's
    HTTPError), and the error that stops the send if there is one; raises the signals
    above when the request should go again."""
    status = int(getattr(exc, "status_code", 0) or 0)
    body = getattr(exc, "body", b"")
    headers: Mapping[str, str] = getattr(exc, "headers", None) or {}
    text = error_text(status, body)
    if status in (401, 403):
        fatal: TransportError = TransportAuthError(
            f"{host}: the API key was refused: {text}",
            hint="check SENDGRID_API_KEY: it must be valid and allowed to send mail",
        )
        return [Outcome.not_attempted(email, text) for email in emails], fatal
    if status == 429:
        raise RateLimited(text, reset_delay(headers, max_reset_wait, clock))
    if status >= 500:
        raise Retry(text)
    if status == 413 and len(emails) > 1:
        raise Split
    outcomes = [Outcome.failed(email, text, permanent=False) for email in emails]
    if status == 400:
        bad = bad_personalizations(body)
        if bad and all(i < len(emails) for i in bad):
            raise Refused(bad, text)
        # the request as a whole is refused: every batch would be, so stop here
        return outcomes, TransportError(
            f"{host}: the request was refused: {text}",
            hint="fix the cause (sender, content, settings), then re-run to resume",
        )
    return outcomes, None


def reset_delay(
    headers: Mapping[str, str], max_wait: float, clock: Callable[[], float]
) -> float | None:
    """Seconds until ``X-RateLimit-Reset`` (a Unix time), at most ``max_wait``."""
    value = headers.get("X-RateLimit-Reset")
    if value is None:
        return None
    try:
        reset = float(value)
    except ValueError:
        return None
    return min(max_wait, max(0.0, reset - clock()) + 0.05)
