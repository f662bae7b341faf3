"""The act stage of the signup pipeline: what each kind of inbound message does.

:func:`act_on` takes one classified message (see :mod:`newsletter.audience.signups` for
what each kind does and why) and makes its changes: confirmations asked for through
:mod:`newsletter.audience.confirm`, suppressions (unsubscribed, bounced) written to the
list by :func:`suppress`. The review queue (:mod:`newsletter.audience.review`) makes
the same two changes when a human approves an item.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal, get_args

from newsletter.audience.confirm import ConfirmRequest, activate, request_confirmation
from newsletter.audience.inbound.safety import clean_header_text
from newsletter.audience.subscribers import SubscriberStore
from newsletter.audience.subscribers.addresses import address_key
from newsletter.errors import TokenError
from newsletter.i18n import detect_language

if TYPE_CHECKING:
    from newsletter.audience.inbound.classify import Classification
    from newsletter.audience.inbound.records import Records
    from newsletter.config import Settings

__all__ = [
    "ACTIONS",
    "REQUESTER_DAILY_LIMIT",
    "Act",
    "Action",
    "act_on",
    "request_confirmations",
    "suppress",
]

#: confirmations one sender may have mailed to others (colleagues) per 24 hours
REQUESTER_DAILY_LIMIT = 5

Action = Literal[
    "confirmation sent",
    "nothing sent",
    "confirmed",
    "unsubscribed",
    "no change",
    "bounced",
    "soft bounce",
    "complained",
    "leave link sent",
    "recorded",
    "review",
    "error",
    "duplicate",
    "dry run",
    "retry",  # busy (the list, a database): left at the source for the next run
]
#: order of the summary line
ACTIONS: tuple[Action, ...] = get_args(Action)


@dataclass
class Act:
    """What was done with one message, before it is recorded."""

    action: Action
    detail: str
    review: bool = False
    results: list[tuple[str, str]] = field(default_factory=list)


# ------------------------------------------------------------------- list changes


def suppress(
    store: SubscriberStore, addresses: Sequence[str], status: str, note: str
) -> list[tuple[str, str]]:
    """Set ``status`` on the pending/active ones of ``addresses``; (address, what happened).

    Recorded in the store's ledger (durable at once, in the file at the next fold); rows
    already suppressed keep their status (a bounce does not hide an unsubscribe).
    """
    keys = {address_key(a): a for a in addresses}
    before = store.suppress(
        {address: (status, note) for address in keys.values()}, only_open=True, source="email"
    )
    results = []
    for key, address in keys.items():
        held = before.get(key)
        if held is None:
            results.append((address, "not on the list"))
        elif held in ("pending", "active"):
            results.append((address, status))
        else:
            results.append((address, f"already {held}"))
    return results


def request_confirmations(
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
    language: str | None = None,
) -> list[tuple[str, ConfirmRequest]]:
    """A confirmation for each address; the sender's own is named and threaded.

    ``language`` is what the request was written in: new rows record it, and their
    confirmations are written in it. Addresses the sender names for others count against
    the sender's own daily cap (:data:`REQUESTER_DAILY_LIMIT`), so no one can mail a crowd
    through us by writing one message after another."""
    done = []
    for address in addresses:
        own = sender is not None and address.lower() == sender.lower()
        slot: int | None = None
        if sender is not None and not own and not force:
            slot = records.reserve_confirmation(
                f"requested-by:{sender}", limit=REQUESTER_DAILY_LIMIT, now=now
            )
            if slot is None:
                done.append((address, ConfirmRequest(address, False, "rate-limited")))
                continue
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
            language=language,
        )
        if slot is not None and not request.sent:
            records.release_confirmation(slot)  # only mails sent count against the cap
        done.append((address, request))
    return done


# ------------------------------------------------------------------------ acting


def _display_name(msg: EmailMessage) -> str:
    try:
        header = msg.get("From")
        addresses = getattr(header, "addresses", ())
        name = addresses[0].display_name if addresses else ""
    except Exception:  # hostile header: no name is fine
        return ""
    return clean_header_text(name, limit=100)


def _subscribe_act(requests: list[tuple[str, ConfirmRequest]]) -> Act:
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
    return Act(
        "confirmation sent" if sent else "nothing sent",
        "; ".join(parts),
        review=bool(held),
        results=results,
    )


def _unverified_unsubscribe(
    c: Classification,
    own: list[str],
    others: list[str],
    settings: Settings,
    store: SubscriberStore,
    records: Records,
    now: float | None,
) -> Act:
    """An unsubscribe nobody vouched for: a one-click "confirm you want to leave" mail
    (to a pending or active reader only: anyone else has nothing to leave)."""
    from newsletter.audience.leave_mail import leave_url, send_leave

    email = own[0]
    tail = f"; {c.sender} also names {', '.join(others)}: a human decides" if others else ""
    current = store.get(email) if store.path.exists() else None
    if current is None or current.status not in ("pending", "active"):
        state = "not on the list" if current is None else f"already {current.status}"
        return Act("no change", f"{email}: {state}{tail}", bool(others), [(email, state)])
    url = leave_url(email, settings)
    if url is None:
        return Act(
            "review",
            f"unsubscribe of {email} by mail not authenticated (neither SPF- nor DKIM-aligned) "
            f"and no NEWSLETTER_PUBLIC_URL for a confirm link: a human decides{tail}",
            True,
        )
    reservation = records.reserve_confirmation(
        f"leave:{email}", limit=settings.confirm_rate_limit, now=now
    )
    if reservation is None:
        return Act("nothing sent", f"{email}: leave link rate-limited{tail}", bool(others))
    try:
        # the reader's own language (their row), else the one they wrote the request in
        language = current.language or detect_language(f"{c.subject}\n{c.excerpt}")
        send_leave(email, url, settings, language)
    except Exception:
        records.release_confirmation(reservation)
        raise
    return Act(
        "leave link sent",
        f"unsubscribe by mail not authenticated (neither SPF- nor DKIM-aligned): {email} was "
        f"sent a one-click link to confirm{tail}",
        bool(others),
        [(email, "leave link sent")],
    )


def act_on(
    c: Classification,
    msg: EmailMessage,
    settings: Settings,
    *,
    store: SubscriberStore,
    records: Records,
    now: float | None,
) -> Act:
    """Do what a message of kind ``c.kind`` asks, or queue it for review."""
    if c.kind == "subscribe":
        requests = request_confirmations(
            c.addresses,
            c.sender,
            settings,
            name=_display_name(msg),
            in_reply_to=c.message_id,
            store=store,
            records=records,
            now=now,
            # a request written in Japanese is answered in Japanese
            language=detect_language(f"{c.subject}\n{c.excerpt}"),
        )
        return _subscribe_act(requests)

    if c.kind == "unsubscribe":
        own = [a for a in c.addresses if c.sender and a.lower() == c.sender.lower()]
        others = [a for a in c.addresses if a not in own]
        if own and not c.authenticated:
            return _unverified_unsubscribe(c, own, others, settings, store, records, now)
        results = suppress(store, own, "unsubscribed", "unsubscribed by email") if own else []
        parts = [f"{a}: {r}" for a, r in results]
        if others:
            parts.append(f"{c.sender} asks to unsubscribe {', '.join(others)}: a human decides")
            return Act("unsubscribed" if own else "review", "; ".join(parts), True, results)
        changed = any(r == "unsubscribed" for _, r in results)
        return Act("unsubscribed" if changed else "no change", "; ".join(parts), False, results)

    if c.kind == "confirm":
        email = c.token_email or ""
        try:
            activate(email, settings, store=store, how="by reply", minted=c.token_minted)
        except TokenError as exc:  # a stale token: older than the address's last change
            return Act("review", f"{email} not confirmed: {exc.message}", True)
        return Act("confirmed", f"{email} confirmed by reply", False, [(email, "active")])

    if c.kind == "auto":
        return Act("recorded", f"automatic mail, not answered: {c.reason}")

    return Act("review", c.reason, True)
