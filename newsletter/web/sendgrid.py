"""The SendGrid endpoints: Inbound Parse (mail to the contact address) and Event Webhook.

Both answer providers, not people: short text bodies, and status codes chosen for
SendGrid's retry rules (2xx: done, never sent again; 5xx: retried later). This module
reads each request (within its body limit), answers it, and keeps what it could not
hand on; what a message or an event means is decided in :mod:`newsletter.audience`.

* ``POST /inbound/{secret}`` -- a 404 unless ``{secret}`` equals
  NEWSLETTER_INBOUND_SECRET (constant-time compare). The form's fields are read as
  exact bytes, rebuilt into the raw message and handed to ``process_raw_message``
  (which records every message, so a retry is a no-op). A payload that cannot be read,
  or a message whose processing fails, is written under
  ``state_dir/inbound-unprocessed/`` (named by digest, so a retry does not duplicate it)
  and answered 200; a busy subscriber list is a 503 (retried).
* ``POST /webhooks/sendgrid`` -- a 404 without SENDGRID_WEBHOOK_PUBLIC_KEY. The
  signature is checked over the exact raw body before anything else (403 on any
  failure); new events (by ``sg_event_id``) are applied to the list and recorded in one
  step, so a failure (503) leaves them to SendGrid's retry and a retry of an applied
  batch changes nothing (:func:`~newsletter.audience.events.read_events` and
  :func:`~newsletter.audience.events.apply_events`).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from newsletter.audience.bounce_score import SoftBounces
from newsletter.audience.events import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    BatchError,
    EventLedger,
    SignatureError,
    apply_events,
    load_public_key,
    read_events,
)
from newsletter.errors import LockTimeoutError, NewsletterError
from newsletter.web.formdata import parse_form_bytes
from newsletter.web.pipeline import Pipeline

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.asymmetric import ec

    from newsletter.audience.subscribers.store import SubscriberStore
    from newsletter.config import Settings

log = logging.getLogger("newsletter.web")

#: SendGrid posts a batch at 768 KB at the latest: twice that is room enough.
MAX_WEBHOOK_BODY: Final = 2 * 1024 * 1024
MAX_INBOUND_BODY: Final = 30 * 1024 * 1024
UNPROCESSED_DIR: Final = "inbound-unprocessed"


@dataclass(slots=True)
class SendGridEndpoints:
    """The two provider endpoints and their state (verification key, event ledger)."""

    settings: Settings
    store: SubscriberStore
    pipeline: Pipeline = field(default_factory=Pipeline)
    webhook_key: ec.EllipticCurvePublicKey | None = field(init=False)
    ledger: EventLedger = field(init=False)
    soft_bounces: SoftBounces = field(init=False)

    def __post_init__(self) -> None:
        key = self.settings.sendgrid_webhook_public_key
        self.webhook_key = load_public_key(key) if key and key.strip() else None
        self.ledger = EventLedger.in_state_dir(self.settings.state_dir)
        # delivered events reset a reader's soft-bounce count, deferred ones add to it
        self.soft_bounces = SoftBounces(
            self.settings.state_dir / "inbound.sqlite3",
            self.settings.soft_bounce_limit,
            self.settings.soft_bounce_days,
        )

    # SendGrid Inbound Parse ----------------------------------------------------------
    def _inbound_enabled(self, given: str) -> bool:
        expected = self.settings.inbound_secret
        if expected is None or not expected.get_secret_value():
            return False
        return hmac.compare_digest(given.encode(), expected.get_secret_value().encode())

    async def inbound(self, request: Request) -> Response:
        if not self._inbound_enabled(request.path_params["secret"]):
            raise HTTPException(404)
        body = await request.body()
        content_type = request.headers.get("content-type", "")
        try:  # 30 MB of multipart is parsed in a worker thread, not on the event loop
            raw = await run_in_threadpool(self._raw_message, body, content_type)
        except Exception as exc:  # whatever is wrong with it, keep it
            reason = str(exc)
            await run_in_threadpool(self._keep_unprocessed, body, content_type, reason, ".form")
            log.warning("inbound parse: malformed payload kept for review: %s", reason)
            return PlainTextResponse(f"malformed payload kept for review: {reason}\n")
        try:
            await run_in_threadpool(
                self.pipeline.process_raw_message,
                raw,
                self.settings,
                source="sendgrid-inbound",
                store=self.store,
            )
        except LockTimeoutError:
            log.warning("inbound parse: subscriber list busy; asking SendGrid to retry")
            return PlainTextResponse("busy, retry later\n", status_code=503)
        except Exception as exc:
            await run_in_threadpool(self._keep_unprocessed, raw, "message/rfc822", str(exc), ".eml")
            log.exception("inbound parse: processing failed; message kept for review")
            return PlainTextResponse("kept for review\n")
        return PlainTextResponse("ok\n")

    def _raw_message(self, body: bytes, content_type: str) -> bytes:
        return self.pipeline.raw_from_inbound_parse(parse_form_bytes(body, content_type))

    def _keep_unprocessed(self, data: bytes, content_type: str, reason: str, suffix: str) -> Path:
        """Write a payload we could not handle under state_dir (idempotent by digest)."""
        folder = self.settings.state_dir / UNPROCESSED_DIR
        folder.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()[:32]
        target = folder / f"{digest}{suffix}"
        if not target.exists():
            tmp = folder / f".{digest}.tmp"
            tmp.write_bytes(data)
            os.replace(tmp, target)
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        note = f"{stamp}\ncontent-type: {content_type}\nreason: {reason}\n"
        target.with_suffix(suffix + ".txt").write_text(note, encoding="utf-8")
        return target

    # SendGrid Event Webhook ----------------------------------------------------------
    async def events(self, request: Request) -> Response:
        if self.webhook_key is None:
            raise HTTPException(404)
        body = await request.body()
        try:  # signature check and JSON parsing in a worker thread, not on the event loop
            actions = await run_in_threadpool(
                read_events,
                self.webhook_key,
                body,
                request.headers.get(SIGNATURE_HEADER),
                request.headers.get(TIMESTAMP_HEADER),
            )
        except SignatureError as exc:
            log.warning("event webhook: refused: %s", exc)
            return PlainTextResponse("signature verification failed\n", status_code=403)
        except BatchError as exc:
            return PlainTextResponse(f"{exc}\n", status_code=400)
        try:
            applied = await run_in_threadpool(
                apply_events, self.store, self.ledger, actions, soft=self.soft_bounces
            )
        except NewsletterError:
            log.exception("event webhook: applying events failed; SendGrid will retry")
            return PlainTextResponse("temporarily unable to apply events\n", status_code=503)
        return PlainTextResponse(f"ok: {len(actions)} events, {applied} new\n")
