"""The contact-address pipeline: inbound message -> classification -> action -> record.

Runs it here: :func:`process_raw_message` for one message (claimed once, classified,
acted on, recorded; a dry run or a duplicate changes nothing) and
:func:`process_source` for every message a source offers.

Stages::

    source (inbound/sources.py)   InboundItem(source_id, raw)
    claim (inbound/records.py)    one row per message identity; a finished one is skipped
    classify (inbound/classify.py)  pure: subscribe / unsubscribe / confirm / bounce / auto / review
    act (actions.py, confirm.py)  confirmation mails, status changes, or held for review
    finish (here)                 the outcome recorded; the source moves the message aside
    review (review.py)            a human approves, rejects or ignores what was held

What each kind does:

subscribe    a confirmation for each named address (the sender and colleagues); nobody
             is made active. A bounced/complained address is not mailed: review.
unsubscribe  the sender is unsubscribed at once when a trusted verdict vouches for the
             From (SPF or DKIM aligned); otherwise mailed a one-click "confirm you want
             to leave" link (actions.py, leave_mail.py). Other addresses someone names
             go to review (anyone can type anyone's address).
confirm      the token's address (verified by the classifier to be the sender's) -> active.
bounce       attributed by the VERP address it came back to, or a Message-ID we signed
delay        for an address it names (report_actions.py): the reader is marked bounced
complaint    (a delay counts towards the soft-bounce score; a complaint marks
             complained). Unattributed, it goes to review: a forged report suppresses
             nobody.
auto         recorded, never answered.
review       queued for a human: ``newsletter signups review``.

An exception while handling one message records it for review with the error, and the
run goes on; a :class:`~newsletter.errors.ConfigError` stops the run (the message stays
claimed and is handled again next time). Values from inbound headers reach outbound
headers only through ``clean_header_text``/``clean_address`` (CVE-2024-6923).
"""

from __future__ import annotations

import sqlite3
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING

from newsletter.audience.actions import ACTIONS, Act, Action, act_on
from newsletter.audience.inbound.classify import (
    REPORT_KINDS,
    Classification,
    classify_message,
    parse_message,
)
from newsletter.audience.inbound.records import (
    InboundRecord,
    Records,
    ReviewState,
    message_identity,
)
from newsletter.audience.inbound.safety import clean_header_text
from newsletter.audience.inbound.sources import InboundSource
from newsletter.audience.report_actions import act_on_report
from newsletter.audience.subscribers import SubscriberStore
from newsletter.errors import ConfigError, LockTimeoutError, NewsletterError

if TYPE_CHECKING:
    from newsletter.config import Settings

#: the ``source`` the web server gives messages from SendGrid Inbound Parse: only these
#: carry verdict headers (X-Inbound-Parse-*) we wrote ourselves
INBOUND_PARSE_SOURCE = "sendgrid-inbound"

__all__ = [
    "INBOUND_PARSE_SOURCE",
    "ProcessOutcome",
    "process_raw_message",
    "process_source",
    "summarize",
]


#: a message left for the next run (the list or a database was busy): not recorded
RETRY: Action = "retry"


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


# ---------------------------------------------------------------------- running


def _classify(
    raw: bytes, settings: Settings, now: float | None, source: str
) -> tuple[Classification, EmailMessage]:
    msg = parse_message(raw)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    c = classify_message(
        msg,
        contact=settings.contact_address,
        secret=secret or None,
        our_domains=[settings.sender_domain],
        now=time.time() if now is None else now,
        bounce_address=settings.bounce_address,
        separator=settings.bounce_separator,
        authserv_ids=settings.authserv_ids,
        inbound_parse=source == INBOUND_PARSE_SOURCE,
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
    c, _msg = _classify(raw, settings, None, source)
    would = {
        "subscribe": "would send a confirmation to",
        "unsubscribe": "would unsubscribe",
        "confirm": "would confirm",
        "bounce": "would attribute and mark bounced",
        "delay": "would attribute and count a soft bounce for",
        "complaint": "would attribute and mark complained",
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
        c, msg = _classify(raw, settings, now, source)
        if reused is not None:  # someone else's Message-ID: kept, but not acted on
            act = Act(
                "review",
                f"reuses the Message-ID of [{reused}] but its content differs: not acted on "
                f"({c.kind}: {c.reason})",
                True,
            )
        elif c.kind in REPORT_KINDS:
            act = act_on_report(c, settings, store=store, records=records, now=now)
        else:
            act = act_on(c, msg, settings, store=store, records=records, now=now)
    except ConfigError:
        raise  # stops the run; the row stays "received" and is handled next time
    except (LockTimeoutError, sqlite3.OperationalError) as exc:
        # busy, not broken: the row stays "received", the source keeps the message, and
        # the next run handles it (recording it now would make it a "duplicate" then)
        what = exc.message if isinstance(exc, NewsletterError) else f"database: {exc}"
        return ProcessOutcome(
            source, source_id, record_id, c.kind if c else "", RETRY,
            c.sender if c else None, c.addresses if c else (),
            f"busy, left for the next run: {clean_header_text(what, limit=200)}",
        )  # fmt: skip
    except Exception as exc:  # one bad message must not stop the others
        what = exc.message if isinstance(exc, NewsletterError) else f"{type(exc).__name__}: {exc}"
        act = Act("error", f"failed while handling it: {clean_header_text(what, limit=300)}", True)
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
                if not dry_run and outcome.action != RETRY:
                    source.mark_done(item, outcome.action)
                outcomes.append(outcome)
                if on_outcome is not None:
                    on_outcome(outcome)
    finally:
        if own_records:
            records.close()
    return outcomes
