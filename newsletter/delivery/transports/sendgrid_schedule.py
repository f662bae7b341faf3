"""SendGrid's scheduled sends: a batch id for the requests of one send, and cancelling
it before its ``send_at`` (the Cancel Scheduled Sends API), through the official client.
Usable without an issue: ``newsletter cancel`` needs only the settings."""

from __future__ import annotations

import json
import urllib.error
from collections.abc import Callable
from typing import Any

from newsletter.delivery.transports.sendgrid_body import error_text
from newsletter.errors import TransportAuthError, TransportError


def api_client(api_key: str, host: str, timeout: float) -> Any:
    """An official SendGrid client for the calls besides mail/send."""
    from sendgrid import SendGridAPIClient

    client = SendGridAPIClient(api_key=api_key, host=host.rstrip("/"))
    client.client.timeout = timeout
    return client


def _api(host: str, what: str, call: Callable[[], Any]) -> Any:
    """One request besides mail/send: its JSON answer; any failure is one TransportError."""
    from python_http_client.exceptions import HTTPError as ApiHTTPError

    try:
        response = call()
    except ApiHTTPError as exc:
        status = int(getattr(exc, "status_code", 0) or 0)
        text = error_text(status, getattr(exc, "body", None))
        if status in (401, 403):
            raise TransportAuthError(f"{host}: {what}: {text}") from None
        raise TransportError(f"{host}: {what}: {text}") from None
    except (urllib.error.URLError, TimeoutError, OSError) as exc:
        raise TransportError(f"{host}: {what}: {exc}") from None
    try:
        return json.loads(response.body or b"{}")
    except ValueError:
        return {}


def create_batch(client: Any, host: str) -> str:
    """A new batch id (``POST /v3/mail/batch``): scheduled requests carry it, and
    :func:`cancel_batch` cancels them all before their ``send_at``."""
    answer = _api(host, "POST /v3/mail/batch", lambda: client.client.mail.batch.post())
    batch_id = answer.get("batch_id") if isinstance(answer, dict) else None
    if not isinstance(batch_id, str) or not batch_id:
        raise TransportError(f"{host}: POST /v3/mail/batch: no batch_id in the answer")
    return batch_id


def cancel_batch(client: Any, host: str, batch_id: str) -> None:
    """Cancel a scheduled batch (``POST /v3/user/scheduled_sends``, status ``cancel``)."""
    body = {"batch_id": batch_id, "status": "cancel"}  # the default client encodes it
    _api(
        host,
        "POST /v3/user/scheduled_sends",
        lambda: client.client.user.scheduled_sends.post(request_body=body),
    )
