"""SendGrid Event Webhook: signature check, event mapping, de-duplication.

SendGrid signs every POST with ECDSA P-256 over ``timestamp + raw body`` (the timestamp
header's text, then the exact bytes of the body) and sends the base64 DER signature in
``X-Twilio-Email-Event-Webhook-Signature``. The verification key is the base64 DER
SubjectPublicKeyInfo shown in SendGrid's settings (``SENDGRID_WEBHOOK_PUBLIC_KEY``).

The pure core: :func:`verify_signature` (raises :class:`SignatureError` for *any*
failure), :func:`parse_events` and :func:`map_event` (event -> the subscriber status it
implies, or None), and :func:`read_events`, the three in the order a request needs them.
The edges: :class:`EventLedger` (SQLite, one row per ``sg_event_id``, so a retried batch
is applied once), :func:`apply_suppressions` (one locked write to the subscriber CSV
that never weakens a suppression; the store's ledger makes it durable at once) and
:func:`apply_events`, the two in one step.
The HTTP endpoint (``POST /webhooks/sendgrid``) is :mod:`newsletter.web.sendgrid`.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import sqlite3
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.serialization import load_der_public_key

from newsletter.audience.bounce_score import SoftBounces, score_deliveries
from newsletter.audience.subscribers.addresses import AddressError, address_key
from newsletter.audience.subscribers.mutations import SUPPRESSION_RANK
from newsletter.database import open_database
from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from newsletter.audience.subscribers.store import SubscriberStore

SIGNATURE_HEADER: Final = "X-Twilio-Email-Event-Webhook-Signature"
TIMESTAMP_HEADER: Final = "X-Twilio-Email-Event-Webhook-Timestamp"
#: A signed request older (or newer) than this many seconds is refused as a replay.
TIMESTAMP_TOLERANCE: Final = 600
LEDGER_NAME: Final = "webhooks.sqlite3"


class SignatureError(NewsletterError):
    """A webhook request's signature or timestamp did not verify."""


@dataclass(frozen=True, slots=True)
class EventAction:
    """What one event means for the list: ``status`` for ``email``, or nothing."""

    event_id: str
    event: str
    email: str
    status: str | None  # "bounced", "unsubscribed", "complained", or None (ignored)
    reason: str  # why, in words, for the note and the ledger
    # for the per-issue report (newsletter.reports): the issue the custom_args name,
    # when it happened (Unix time), and the event's own detail (bounce type, URL, ...)
    issue: str = ""
    occurred_at: float | None = None
    detail: str = ""


# Verification (pure) ------------------------------------------------------------------
def load_public_key(value: str) -> ec.EllipticCurvePublicKey:
    """SendGrid's key as shown in its settings: base64 DER (PEM armour tolerated)."""
    text = "".join(
        line for line in value.strip().splitlines() if not line.startswith("-----")
    ).strip()
    try:
        key = load_der_public_key(base64.b64decode(text, validate=True))
    except (ValueError, TypeError, binascii.Error) as exc:
        raise SignatureError(
            "SENDGRID_WEBHOOK_PUBLIC_KEY: not a base64 DER public key",
            hint="copy the verification key from SendGrid: Settings > Mail Settings > "
            "Event Webhook > Signature Verification",
        ) from exc
    if not isinstance(key, ec.EllipticCurvePublicKey) or not isinstance(key.curve, ec.SECP256R1):
        raise SignatureError("SENDGRID_WEBHOOK_PUBLIC_KEY: not an ECDSA P-256 public key")
    return key


def verify_signature(
    public_key: ec.EllipticCurvePublicKey | str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
    *,
    now: float | None = None,
    tolerance: int = TIMESTAMP_TOLERANCE,
) -> None:
    """Return if ``signature`` signs ``timestamp + body`` and the timestamp is fresh.

    Raises :class:`SignatureError` for every failure: missing header, bad base64, bad
    DER, wrong key, changed body, a timestamp outside ``tolerance`` seconds.
    """
    if not signature or not timestamp:
        raise SignatureError("missing signature or timestamp header")
    stamp = timestamp.strip()
    # ASCII digits only: str.isdigit() is also true of "¹²³", which int() refuses
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        raise SignatureError("timestamp is not a Unix time")
    current = time.time() if now is None else now
    if abs(current - int(stamp)) > tolerance:
        raise SignatureError("timestamp outside the accepted window (replayed or clock skew)")
    try:
        key = load_public_key(public_key) if isinstance(public_key, str) else public_key
        der = base64.b64decode(signature.strip(), validate=True)
        key.verify(der, stamp.encode("ascii") + body, ec.ECDSA(hashes.SHA256()))
    except SignatureError:
        raise
    except (InvalidSignature, ValueError, TypeError, binascii.Error) as exc:
        raise SignatureError("signature does not verify") from exc
    except Exception as exc:  # any other verification failure is a refusal too
        raise SignatureError("signature could not be verified") from exc


# Events (pure) -------------------------------------------------------------------------
class BatchError(ValueError):
    """A verified body that is not a JSON array of event objects (the sender's fault)."""


def parse_events(body: bytes) -> list[dict[str, Any]]:
    """The JSON array of event objects SendGrid posts; :class:`BatchError` if it is not one."""
    try:
        data = json.loads(body)
    except (ValueError, UnicodeError) as exc:
        raise BatchError(f"body is not JSON: {exc}") from None
    except RecursionError:  # "[[[[..." deeper than the parser goes: the sender's fault
        raise BatchError("body is not JSON: nested too deeply") from None
    if not isinstance(data, list) or not all(isinstance(item, dict) for item in data):
        raise BatchError("body is not a JSON array of event objects")
    return data


def event_id(event: Mapping[str, Any]) -> str:
    """``sg_event_id``, or a digest of the event when SendGrid sent none."""
    given = event.get("sg_event_id")
    if isinstance(given, str) and given.strip():
        return given.strip()
    canonical = json.dumps(event, sort_keys=True, separators=(",", ":"), default=str)
    return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def map_event(event: Mapping[str, Any]) -> EventAction:
    """The subscriber status an event implies (``status`` None: recorded, ignored).

    * ``bounce`` (``type`` bounce, not ``blocked``) -> bounced
    * ``dropped`` for "Bounced Address" -> bounced; "Unsubscribed Address" ->
      unsubscribed; "Spam Reporting Address" -> complained
    * ``unsubscribe``, ``group_unsubscribe`` -> unsubscribed
    * ``spamreport`` -> complained
    """
    kind = str(event.get("event", "")).strip().lower()
    email = str(event.get("email", "")).strip()
    reason = str(event.get("reason", "") or "").strip()
    status: str | None = None
    why = kind or "unknown event"
    if kind == "bounce":
        bounce_type = str(event.get("type", "bounce") or "bounce").strip().lower()
        if bounce_type != "blocked":
            status, why = "bounced", "SendGrid bounce"
        else:
            why = "SendGrid block (temporary; ignored)"
    elif kind == "dropped":
        dropped = {
            "bounced address": ("bounced", "SendGrid dropped: bounced address"),
            "unsubscribed address": ("unsubscribed", "SendGrid dropped: unsubscribed address"),
            "spam reporting address": ("complained", "SendGrid dropped: spam reporting address"),
        }.get(reason.lower())
        if dropped is not None:
            status, why = dropped
        else:
            why = f"SendGrid dropped: {reason or 'no reason'} (ignored)"
    elif kind in ("unsubscribe", "group_unsubscribe"):
        status, why = "unsubscribed", f"SendGrid {kind}"
    elif kind == "spamreport":
        status, why = "complained", "SendGrid spam report"
    if status is not None:
        try:
            address_key(email)
        except AddressError:
            status, why = None, f"{why}: no valid address (ignored)"
    return EventAction(
        event_id(event), kind, email, status, why, *_report_fields(event, kind, reason)
    )


def _report_fields(
    event: Mapping[str, Any], kind: str, reason: str
) -> tuple[str, float | None, str]:
    """What the per-issue report keeps of an event: issue, time, detail (type, URL)."""
    issue = str(event.get("issue", "") or "").strip()[:100]
    stamp = event.get("timestamp")
    occurred = float(stamp) if isinstance(stamp, int | float) and stamp > 0 else None
    parts = [str(event.get(k, "") or "").strip() for k in ("type", "status", "url")]
    if kind in ("bounce", "dropped", "deferred", "blocked"):
        parts.append(reason or str(event.get("response", "") or "").strip())
    detail = " ".join(p for p in parts if p)[:300]
    return issue, occurred, detail


def read_events(
    public_key: ec.EllipticCurvePublicKey | str,
    body: bytes,
    signature: str | None,
    timestamp: str | None,
) -> list[EventAction]:
    """What a posted batch means for the list: the signature first, then the events.

    Raises :class:`SignatureError` (see :func:`verify_signature`) before the body is
    read, and :class:`BatchError` if a verified body is not a JSON array of event
    objects. Any other error is the server's, not the sender's (the caller answers 5xx,
    so SendGrid retries).
    """
    verify_signature(public_key, body, signature, timestamp)
    return [map_event(event) for event in parse_events(body)]


def suppressions(actions: Sequence[EventAction]) -> dict[str, tuple[str, str]]:
    """``{address key: (status, note)}``, the strongest status per address."""
    result: dict[str, tuple[str, str]] = {}
    for action in actions:
        if action.status is None:
            continue
        key = address_key(action.email)
        held = result.get(key)
        if held is None or SUPPRESSION_RANK[action.status] > SUPPRESSION_RANK[held[0]]:
            result[key] = (action.status, action.reason)
    return result


# Edges: the subscriber store and the ledger ------------------------------------------
def apply_suppressions(store: SubscriberStore, changes: Mapping[str, tuple[str, str]]) -> set[str]:
    """Record ``{email: (status, note)}`` (never weakening one); the keys found in the list.

    With the store's ledger this is one transaction, durable at its commit and folded
    into the file later; without one, one locked write of the file.
    """
    if not changes:
        return set()
    before = store.suppress(changes, source="webhook")
    return {key for key, status in before.items() if status is not None}


def apply_events(
    store: SubscriberStore,
    ledger: EventLedger,
    actions: Sequence[EventAction],
    *,
    soft: SoftBounces | None = None,
) -> int:
    """Apply the actions ``ledger`` has not seen to ``store``; the number of new ones.

    Applying and recording are one step: if the write to the list fails, nothing is
    recorded, so SendGrid's retry of the batch applies it again. With ``soft``, the new
    delivered and deferred events also move readers' soft-bounce scores.
    """
    with ledger.record(actions) as fresh:
        changes = suppressions(fresh)
        if soft is not None:
            for key, change in score_deliveries(soft, fresh).items():
                changes.setdefault(key, change)
        apply_suppressions(store, changes)
        return len(fresh)


_LEDGER_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS events ("
    " event_id TEXT PRIMARY KEY, event TEXT NOT NULL, email TEXT NOT NULL,"
    " status TEXT, reason TEXT NOT NULL, received_at REAL NOT NULL,"
    " issue TEXT NOT NULL DEFAULT '', occurred_at REAL, detail TEXT NOT NULL DEFAULT '');"
)
#: Columns added after the first release, for ledgers created before them.
_LEDGER_ADDED = (
    ("issue", "TEXT NOT NULL DEFAULT ''"),
    ("occurred_at", "REAL"),
    ("detail", "TEXT NOT NULL DEFAULT ''"),
)


class EventLedger:
    """Every event seen, by id, in SQLite: a retried delivery is applied once."""

    def __init__(self, path: Path) -> None:
        self.path = path

    @classmethod
    def in_state_dir(cls, state_dir: Path) -> EventLedger:
        return cls(state_dir / LEDGER_NAME)

    def _connect(self) -> sqlite3.Connection:
        conn = open_database(self.path, _LEDGER_SCHEMA, what="the webhook event ledger")
        have = {row[1] for row in conn.execute("PRAGMA table_info(events)")}
        for name, kind in _LEDGER_ADDED:
            if name not in have:
                conn.execute(f"ALTER TABLE events ADD COLUMN {name} {kind}")
        return conn

    @contextmanager
    def record(self, actions: Sequence[EventAction]) -> Iterator[list[EventAction]]:
        """Yield the actions not seen before; they are committed only if the block succeeds.

        The block applies them (to the subscriber store); if it raises, nothing is
        recorded, so SendGrid's retry applies them again.
        """
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            fresh: list[EventAction] = []
            seen: set[str] = set()
            now = time.time()
            for action in actions:
                if action.event_id in seen:
                    continue
                seen.add(action.event_id)
                cursor = conn.execute(
                    "INSERT OR IGNORE INTO events (event_id, event, email, status, reason, "
                    "received_at, issue, occurred_at, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        action.event_id,
                        action.event,
                        action.email,
                        action.status,
                        action.reason,
                        now,
                        action.issue,
                        action.occurred_at,
                        action.detail,
                    ),
                )
                if cursor.rowcount == 1:
                    fresh.append(action)
            try:
                yield fresh
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def rows_after(self, rowid: int, limit: int = 50_000) -> list[tuple[Any, ...]]:
        """``(rowid, event, email, issue, occurred_at, received_at, detail)`` in order,
        for the per-issue report to read what it has not read yet."""
        conn = self._connect()
        try:
            return conn.execute(
                "SELECT rowid, event, email, issue, occurred_at, received_at, detail "
                "FROM events WHERE rowid > ? ORDER BY rowid LIMIT ?",
                (rowid, limit),
            ).fetchall()
        finally:
            conn.close()

    def purge(self, email: str) -> int:
        """Forget every event naming ``email`` (a data-protection request); how many."""
        conn = self._connect()
        try:
            cursor = conn.execute(
                "DELETE FROM events WHERE lower(email) = ?", (email.strip().lower(),)
            )
            return cursor.rowcount
        finally:
            conn.close()

    def count(self) -> int:
        conn = self._connect()
        try:
            row = conn.execute("SELECT COUNT(*) FROM events").fetchone()
            return int(row[0])
        finally:
            conn.close()
