"""The review queue: a human's decision on an inbound message the pipeline held back.

:mod:`newsletter.audience.signups` queues what it must not decide alone (a request for
someone else's unsubscribe, a bounce that quotes nothing of ours, a question, a
message it could not read). Here a human decides an open item: :func:`approve` does
what it asks (through the same list changes as :mod:`newsletter.audience.actions`),
:func:`reject` refuses it, :func:`ignore` drops it. Each decision is recorded on the
item (:class:`~newsletter.audience.inbound.records.Records`); only open items can be
decided. ``newsletter signups review|approve|reject|ignore`` is the shell over these.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Literal

from newsletter.audience.actions import request_confirmations, suppress
from newsletter.audience.inbound.records import InboundRecord, Records, ReviewState
from newsletter.audience.inbound.safety import clean_address
from newsletter.audience.subscribers import SubscriberStore
from newsletter.errors import NewsletterError
from newsletter.i18n import detect_language

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["REPORT_KINDS", "ApproveAs", "approve", "ignore", "reject", "review_groups"]

ApproveAs = Literal["subscribe", "unsubscribe", "bounce", "complaint"]
#: classifications about mail we sent: their own group in the queue, so a pile of
#: unreadable bounces does not bury a person's request (and the reverse)
REPORT_KINDS = ("bounce", "delay", "complaint")
#: what approving a report does, by its kind
_REPORT_APPROVAL: dict[str, ApproveAs] = {
    "bounce": "bounce",
    "delay": "bounce",
    "complaint": "complaint",
}


def review_groups(
    items: Sequence[InboundRecord],
) -> list[tuple[str, list[InboundRecord]]]:
    """The queue in its groups, each in id order: people's mail first, then reports
    (bounces, delays, complaints); empty groups left out."""
    mail = [i for i in items if i.kind not in REPORT_KINDS]
    reports = [i for i in items if i.kind in REPORT_KINDS]
    groups = [("requests and other mail", mail), ("bounces and delivery reports", reports)]
    return [(title, group) for title, group in groups if group]


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
    before: the person still has to confirm). unsubscribe: applied at once. bounce (and
    a delay): marked bounced. complaint: marked complained. ``as_kind`` and
    ``addresses`` override the classification (needed for an item the classifier could
    not read); addresses default to the item's, or to its sender.
    """
    own_records = records is None
    db = Records.from_settings(settings) if records is None else records
    store = store if store is not None else SubscriberStore.from_settings(settings)
    try:
        record = _open_item(db, record_id)
        kind: str = as_kind or _REPORT_APPROVAL.get(record.kind) or record.kind
        if kind not in ("subscribe", "unsubscribe", "bounce", "complaint"):
            raise NewsletterError(
                f"inbound message [{record_id}] is a '{record.kind or 'failed'}' item: say what "
                "to do with --as subscribe|unsubscribe|bounce|complaint (and --address)",
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
            requests = request_confirmations(
                chosen,
                None,
                settings,
                name="",
                in_reply_to=None,
                store=store,
                records=db,
                now=None,
                force=True,
                # answered in the language the request was written in
                language=detect_language(f"{record.subject}\n{record.excerpt}"),
            )
            done = "; ".join(f"{a}: {r.reason}" for a, r in requests)
        else:
            status = {"unsubscribe": "unsubscribed", "complaint": "complained"}.get(kind, "bounced")
            results = suppress(store, chosen, status, f"{status} on review of [{record_id}]")
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
