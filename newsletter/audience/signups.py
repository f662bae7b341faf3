"""The contact-address pipeline: inbound message -> classification -> action -> record.

Stages::

    source (inbound/sources.py)   InboundItem(source_id, raw)
    claim (inbound/records.py)    one row per message identity; a finished one is skipped
    classify (inbound/classify.py)  pure: subscribe / unsubscribe / confirm / bounce / auto / review
    act (here, confirm.py)        confirmation mails, status changes, the review queue
    finish                        the outcome recorded; the source moves the message aside

What each kind does:

subscribe    a confirmation for each named address (the sender and colleagues); nobody
             is made active. A bounced/complained address is not mailed: review.
unsubscribe  the sender is unsubscribed at once; other addresses someone names go to
             review (anyone can type anyone's address).
confirm      the token's address (verified by the classifier to be the sender's) -> active.
bounce       an address is marked bounced only if the report quotes the Message-ID of
             the mail that failed and that Message-ID is one we signed for that very
             address (``tokens.verify_message_id``: every message we send carries one).
             A report naming more than five recipients, or one that quotes nothing
             of ours for an address, goes to review: a forged report suppresses nobody.
auto         recorded, never answered.
review       queued for a human: ``newsletter signups review``.

An exception while handling one message records it for review with the error, and the
run goes on; a :class:`~newsletter.errors.ConfigError` stops the run (the message stays
claimed and is handled again next time). Values from inbound headers reach outbound
headers only through ``clean_header_text``/``clean_address`` (CVE-2024-6923).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal, get_args

from newsletter.audience.confirm import ConfirmRequest, activate, request_confirmation
from newsletter.audience.inbound.classify import Classification, classify_message, parse_message
from newsletter.audience.inbound.records import (
    InboundRecord,
    Records,
    ReviewState,
    message_identity,
)
from newsletter.audience.inbound.safety import clean_address, clean_header_text
from newsletter.audience.inbound.sources import InboundSource
from newsletter.audience.subscribers import Edit, Header, Mutation, SubscriberRow, SubscriberStore
from newsletter.audience.subscribers.addresses import address_key
from newsletter.errors import ConfigError, NewsletterError, TokenError
from newsletter.tokens import verify_message_id

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = [
    "ProcessOutcome",
    "approve",
    "ignore",
    "process_raw_message",
    "process_source",
    "reject",
    "summarize",
]

Action = Literal[
    "confirmation sent",
    "nothing sent",
    "confirmed",
    "unsubscribed",
    "no change",
    "bounced",
    "recorded",
    "review",
    "error",
    "duplicate",
    "dry run",
]
#: order of the summary line
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass(frozen=True)
class ProcessOutcome:
    """What was done with one inbound message."""

    source: str
    source_id: str
    record_id: int | None  # None for a dry run
    kind: str  # the classification ("" for a duplicate)
    action: Action
    sender: str | None
    addresses: tuple[str, ...]
    detail: str  # one line: what was done, for whom, and why
    review: bool = False  # queued for a human
    results: tuple[tuple[str, str], ...] = field(default=())  # (address, what happened)

    def line(self) -> str:
        """One line for the terminal: ``[id] source_id: action: detail``."""
        rid = f"[{self.record_id}] " if self.record_id is not None else ""
        flag = " (for review)" if self.review and self.action not in ("review", "error") else ""
        return f"{rid}{self.source_id}: {self.action}{flag}: {self.detail}"


def summarize(outcomes: Sequence[ProcessOutcome]) -> str:
    """``12 messages: 5 confirmation sent, 2 unsubscribed, ...; 3 for review``."""
    counts = Counter(o.action for o in outcomes)
    parts = [f"{counts[a]} {a}" for a in ACTIONS if counts[a]]
    noun = "message" if len(outcomes) == 1 else "messages"
    review = sum(1 for o in outcomes if o.review)
    tail = f"; {review} for review" if review else ""
    sent = sum(1 for o in outcomes for _, r in o.results if r == "sent")
    mails = f"; {sent} confirmation email{'s' if sent != 1 else ''} sent" if sent else ""
    body = ", ".join(parts) if parts else "nothing to do"
    return f"{len(outcomes)} {noun}: {body}{mails}{tail}"


# ------------------------------------------------------------------- list changes


class _SuppressMutation(Mutation):
    """Set a suppression status (unsubscribed, bounced) on listed addresses.

    pending/active rows change; rows already suppressed keep their status (a bounce
    does not hide an unsubscribe, nor the reverse). ``before`` maps key -> old status.
    """

    def __init__(self, keys: Iterable[str], status: str, note: str) -> None:
        self.keys = set(keys)
        self.status = status
        self.note = note
        self.before: dict[str, str] = {}

    def begin(self, header: Header, now: str) -> None:
        header.ensure("status", "updated_at", "note")
        self.now = now
        self.before = {}

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        sub = row.subscriber
        if sub is None or sub.key not in self.keys or sub.key in self.before:
            return Edit.KEEP
        self.before[sub.key] = sub.status
        if sub.status not in ("pending", "active"):
            return Edit.KEEP
        cells = list(row.cells)
        header.set(cells, "status", self.status)
        header.set(cells, "updated_at", self.now)
        header.set(cells, "note", f"{sub.note}; {self.note}" if sub.note else self.note)
        return cells


def _suppress(
    store: SubscriberStore, addresses: Sequence[str], status: str, note: str
) -> list[tuple[str, str]]:
    keys = {address_key(a): a for a in addresses}
    mutation = _SuppressMutation(keys, status, note)
    store.apply(mutation)
    results = []
    for key, address in keys.items():
        before = mutation.before.get(key)
        if before is None:
            results.append((address, "not on the list"))
        elif before in ("pending", "active"):
            results.append((address, status))
        else:
            results.append((address, f"already {before}"))
    return results


# ---------------------------------------------------------------------- bounces


def _bounce_matches(address: str, original_id: str | None, settings: Settings) -> bool:
    """True when the report quotes a Message-ID we signed for ``address``."""
    if not original_id or settings.secret_key is None:
        return False
    secret = settings.secret_key.get_secret_value()
    return bool(secret) and verify_message_id(secret, original_id, address)


# ------------------------------------------------------------------------ acting


@dataclass
class _Act:
    action: Action
    detail: str
    review: bool = False
    results: list[tuple[str, str]] = field(default_factory=list)


def _display_name(msg: EmailMessage) -> str:
    try:
        header = msg.get("From")
        addresses = getattr(header, "addresses", ())
        name = addresses[0].display_name if addresses else ""
    except Exception:  # hostile header: no name is fine
        return ""
    return clean_header_text(name, limit=100)


def _request_all(
    addresses: Sequence[str],
    sender: str | None,
    settings: Settings,
    *,
    name: str,
    in_reply_to: str | None,
    store: SubscriberStore,
    records: Records,
    now: float | None,
    force: bool = False,
) -> list[tuple[str, ConfirmRequest]]:
    done = []
    for address in addresses:
        own = sender is not None and address.lower() == sender.lower()
        request = request_confirmation(
            address,
            settings,
            name=name if own else "",
            source="email",
            store=store,
            in_reply_to=in_reply_to if own else None,
            requested_by=None if force else sender,
            records=records,
            force=force,
            now=now,
        )
        done.append((address, request))
    return done


def _subscribe_act(requests: list[tuple[str, ConfirmRequest]]) -> _Act:
    results = [(a, r.reason) for a, r in requests]
    sent = [a for a, r in requests if r.sent]
    others = [f"{a}: {r.reason}" for a, r in requests if not r.sent]
    held = [a for a, r in requests if r.reason in ("suppressed", "unsubscribed")]
    parts = []
    if sent:
        parts.append("confirmation sent to " + ", ".join(sent))
    parts.extend(others)
    if held:
        parts.append("a human decides about " + ", ".join(held))
    return _Act(
        "confirmation sent" if sent else "nothing sent",
        "; ".join(parts),
        review=bool(held),
        results=results,
    )


def _act(
    c: Classification,
    msg: EmailMessage,
    settings: Settings,
    *,
    store: SubscriberStore,
    records: Records,
    now: float | None,
) -> _Act:
    if c.kind == "subscribe":
        requests = _request_all(
            c.addresses,
            c.sender,
            settings,
            name=_display_name(msg),
            in_reply_to=c.message_id,
            store=store,
            records=records,
            now=now,
        )
        return _subscribe_act(requests)

    if c.kind == "unsubscribe":
        own = [a for a in c.addresses if c.sender and a.lower() == c.sender.lower()]
        others = [a for a in c.addresses if a not in own]
        results = _suppress(store, own, "unsubscribed", "unsubscribed by email") if own else []
        parts = [f"{a}: {r}" for a, r in results]
        if others:
            parts.append(f"{c.sender} asks to unsubscribe {', '.join(others)}: a human decides")
            return _Act("unsubscribed" if own else "review", "; ".join(parts), True, results)
        changed = any(r == "unsubscribed" for _, r in results)
        return _Act("unsubscribed" if changed else "no change", "; ".join(parts), False, results)

    if c.kind == "confirm":
        email = c.token_email or ""
        try:
            activate(email, settings, store=store, how="by reply", minted=c.token_minted)
        except TokenError as exc:  # a stale token: older than the address's last change
            return _Act("review", f"{email} not confirmed: {exc.message}", True)
        return _Act("confirmed", f"{email} confirmed by reply", False, [(email, "active")])

    if c.kind == "bounce":
        matched: list[str] = []
        unmatched: list[str] = []
        for address in c.addresses:
            ok = _bounce_matches(address, c.original_message_id, settings)
            (matched if ok else unmatched).append(address)
        results = (
            _suppress(store, matched, "bounced", f"bounced: {c.reason}"[:300]) if matched else []
        )
        parts = [f"{a}: {r}" for a, r in results]
        if unmatched:
            parts.append(
                f"bounce does not quote a message we sent to {', '.join(unmatched)}: "
                "a human decides"
            )
            results += [(a, "unmatched") for a in unmatched]
        return _Act("bounced" if matched else "review", "; ".join(parts), bool(unmatched), results)

    if c.kind == "auto":
        return _Act("recorded", f"automatic mail, not answered: {c.reason}")

    return _Act("review", c.reason, True)


def _classify(
    raw: bytes, settings: Settings, now: float | None
) -> tuple[Classification, EmailMessage]:
    msg = parse_message(raw)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    c = classify_message(
        msg,
        contact=settings.contact_address,
        secret=secret or None,
        our_domains=[settings.sender_domain],
        now=time.time() if now is None else now,
    )
    return c, msg


def _duplicate(existing: InboundRecord, source: str, source_id: str) -> ProcessOutcome:
    """The outcome for a message handled before: nothing is done twice."""
    return ProcessOutcome(
        source,
        source_id,
        existing.id,
        existing.kind,
        "duplicate",
        existing.sender,
        existing.addresses,
        f"already handled as [{existing.id}]: {existing.outcome}",
    )


def _dry_run(
    raw: bytes, settings: Settings, *, source: str, source_id: str, records: Records | None
) -> ProcessOutcome:
    identity = records.identity_of(raw)[0] if records is not None else message_identity(raw)
    existing = records.by_identity(identity) if records is not None else None
    if existing is not None and existing.finished:
        return _duplicate(existing, source, source_id)
    c, _msg = _classify(raw, settings, None)
    would = {
        "subscribe": "would send a confirmation to",
        "unsubscribe": "would unsubscribe",
        "confirm": "would confirm",
        "bounce": "would check and mark bounced",
        "auto": "would record (automatic mail)",
        "review": "would queue for review",
    }[c.kind]
    who = ", ".join(c.addresses)
    detail = f"{c.kind}: {would}{' ' + who if who else ''} ({c.reason})"
    return ProcessOutcome(
        source,
        source_id,
        None,
        c.kind,
        "dry run",
        c.sender,
        c.addresses,
        detail,
        review=c.kind == "review",
    )


def process_raw_message(
    raw: bytes,
    settings: Settings,
    *,
    source: str,
    source_id: str = "",
    store: SubscriberStore | None = None,
    records: Records | None = None,
    dry_run: bool = False,
    now: float | None = None,
) -> ProcessOutcome:
    """Handle one inbound message end to end; always ends in a recorded outcome.

    ``source`` names where it came from ("inbound-parse", "maildir:/path", ...).
    Re-running on the same message changes nothing (``action == "duplicate"``).
    ``dry_run`` classifies and says what would happen, writing and sending nothing.
    ``now`` (Unix time) is for tests: token expiry and the rate limit.
    """
    settings.require_secret()
    own_records = records is None
    if records is None:
        records = Records.from_settings(settings)
    try:
        if dry_run:
            return _dry_run(raw, settings, source=source, source_id=source_id, records=records)
        store = store if store is not None else SubscriberStore.from_settings(settings)
        return _process(raw, settings, source, source_id, store, records, now)
    finally:
        if own_records:
            records.close()


def _process(
    raw: bytes,
    settings: Settings,
    source: str,
    source_id: str,
    store: SubscriberStore,
    records: Records,
    now: float | None,
) -> ProcessOutcome:
    identity, reused = records.identity_of(raw)
    record_id = records.claim(identity, source=source, source_id=source_id, raw=raw)
    if record_id is None:
        existing = records.by_identity(identity)
        assert existing is not None
        return _duplicate(existing, source, source_id)
    c: Classification | None = None
    try:
        c, msg = _classify(raw, settings, now)
        if reused is not None:  # someone else's Message-ID: kept, but not acted on
            act = _Act(
                "review",
                f"reuses the Message-ID of [{reused}] but its content differs: not acted on "
                f"({c.kind}: {c.reason})",
                True,
            )
        else:
            act = _act(c, msg, settings, store=store, records=records, now=now)
    except ConfigError:
        raise  # stops the run; the row stays "received" and is handled next time
    except Exception as exc:  # one bad message must not stop the others
        what = exc.message if isinstance(exc, NewsletterError) else f"{type(exc).__name__}: {exc}"
        act = _Act("error", f"failed while handling it: {clean_header_text(what, limit=300)}", True)
    review: ReviewState = "open" if act.review else "none"
    records.finish(
        record_id,
        sender=c.sender if c else None,
        subject=c.subject if c else "",
        kind=c.kind if c else "",
        addresses=c.addresses if c else (),
        outcome=act.action,
        detail=act.detail,
        reason=c.reason if c else "",
        excerpt=c.excerpt if c else "",
        review=review,
    )
    return ProcessOutcome(
        source,
        source_id,
        record_id,
        c.kind if c else "",
        act.action,
        c.sender if c else None,
        c.addresses if c else (),
        act.detail,
        review=act.review,
        results=tuple(act.results),
    )


def process_source(
    source: InboundSource,
    settings: Settings,
    *,
    store: SubscriberStore | None = None,
    records: Records | None = None,
    dry_run: bool = False,
    now: float | None = None,
    on_outcome: Callable[[ProcessOutcome], None] | None = None,
) -> list[ProcessOutcome]:
    """Handle every message a source offers; each handled one is marked done there.

    ``on_outcome`` is called after each message (the CLI prints as it goes).
    A dry run leaves the source, the records and the list untouched.
    """
    settings.require_secret()
    own_records = records is None
    if records is None:
        records = Records.from_settings(settings)
    store = store if store is not None else SubscriberStore.from_settings(settings)
    outcomes: list[ProcessOutcome] = []
    try:
        with source:
            for item in source.items():
                outcome = process_raw_message(
                    item.raw,
                    settings,
                    source=source.name,
                    source_id=item.source_id,
                    store=store,
                    records=records,
                    dry_run=dry_run,
                    now=now,
                )
                if not dry_run:
                    source.mark_done(item, outcome.action)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    finally:
        if own_records:
            records.close()
    return outcomes


# ------------------------------------------------------------------------ review

ApproveAs = Literal["subscribe", "unsubscribe", "bounce"]


def _open_item(records: Records, record_id: int) -> InboundRecord:
    record = records.require(record_id)
    if record.review != "open":
        state = "not queued for review" if record.review == "none" else record.review
        raise NewsletterError(
            f"inbound message [{record_id}] is {state}; only open items can be decided",
            hint="list the open ones with: newsletter signups review",
        )
    return record


def approve(
    record_id: int,
    settings: Settings,
    *,
    as_kind: ApproveAs | None = None,
    addresses: Sequence[str] = (),
    store: SubscriberStore | None = None,
    records: Records | None = None,
) -> str:
    """Do what an open review item asks, as a human decided; returns what was done.

    subscribe: a confirmation to each address (even one that bounced or unsubscribed
    before: the person still has to confirm). unsubscribe: applied at once. bounce:
    marked bounced. ``as_kind`` and ``addresses`` override the classification (needed
    for an item the classifier could not read); addresses default to the item's, or
    to its sender.
    """
    own_records = records is None
    db = Records.from_settings(settings) if records is None else records
    store = store if store is not None else SubscriberStore.from_settings(settings)
    try:
        record = _open_item(db, record_id)
        kind = as_kind or record.kind
        if kind not in ("subscribe", "unsubscribe", "bounce"):
            raise NewsletterError(
                f"inbound message [{record_id}] is a '{record.kind or 'failed'}' item: say what "
                "to do with --as subscribe|unsubscribe|bounce (and --address)",
                hint=f"read it first with: newsletter signups show {record_id}",
            )
        chosen: list[str] = []
        for typed in addresses or record.addresses or ([record.sender] if record.sender else []):
            clean = clean_address(typed)
            if clean is None:
                raise NewsletterError(f"not a valid address: {typed!r}")
            chosen.append(clean)
        if not chosen:
            raise NewsletterError(f"inbound message [{record_id}] names no address: pass --address")
        if kind == "subscribe":
            requests = _request_all(
                chosen,
                None,
                settings,
                name="",
                in_reply_to=None,
                store=store,
                records=db,
                now=None,
                force=True,
            )
            done = "; ".join(f"{a}: {r.reason}" for a, r in requests)
        else:
            status = "unsubscribed" if kind == "unsubscribe" else "bounced"
            results = _suppress(store, chosen, status, f"{status} on review of [{record_id}]")
            done = "; ".join(f"{a}: {r}" for a, r in results)
        note = f"approved as {kind}: {done}"
        db.set_review(record_id, "approved", note=note)
        return note
    finally:
        if own_records:
            db.close()


def _close(record_id: int, settings: Settings, state: ReviewState, records: Records | None) -> str:
    own_records = records is None
    db = Records.from_settings(settings) if records is None else records
    try:
        _open_item(db, record_id)
        db.set_review(record_id, state, note=f"{state} by a human")
        return f"[{record_id}] {state}: nothing was sent or changed"
    finally:
        if own_records:
            db.close()


def reject(record_id: int, settings: Settings, *, records: Records | None = None) -> str:
    """Decline an open item (the request is refused); nothing is sent or changed."""
    return _close(record_id, settings, "rejected", records)


def ignore(record_id: int, settings: Settings, *, records: Records | None = None) -> str:
    """Drop an open item from the queue (not a request at all); kept in the records."""
    return _close(record_id, settings, "ignored", records)
