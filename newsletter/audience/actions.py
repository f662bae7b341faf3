"""The act stage of the signup pipeline: what each kind of inbound message does.

:func:`act_on` takes one classified message (see :mod:`newsletter.audience.signups` for
what each kind does and why) and makes its changes: confirmations asked for through
:mod:`newsletter.audience.confirm`, suppressions (unsubscribed, bounced) written to the
list by :func:`suppress`. The review queue (:mod:`newsletter.audience.review`) makes
the same two changes when a human approves an item.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import TYPE_CHECKING, Literal, get_args

from newsletter.audience.confirm import ConfirmRequest, activate, request_confirmation
from newsletter.audience.inbound.safety import clean_header_text
from newsletter.audience.subscribers import Edit, Header, Mutation, SubscriberRow, SubscriberStore
from newsletter.audience.subscribers.addresses import address_key
from newsletter.errors import TokenError
from newsletter.i18n import detect_language
from newsletter.tokens import verify_message_id

if TYPE_CHECKING:
    from newsletter.audience.inbound.classify import Classification
    from newsletter.audience.inbound.records import Records
    from newsletter.config import Settings

__all__ = ["ACTIONS", "Act", "Action", "act_on", "request_confirmations", "suppress"]

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


@dataclass
class Act:
    """What was done with one message, before it is recorded."""

    action: Action
    detail: str
    review: bool = False
    results: list[tuple[str, str]] = field(default_factory=list)


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


def suppress(
    store: SubscriberStore, addresses: Sequence[str], status: str, note: str
) -> list[tuple[str, str]]:
    """Set ``status`` on the pending/active ones of ``addresses``; (address, what happened)."""
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
    confirmations are written in it."""
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
            language=language,
        )
        done.append((address, request))
    return done


# ------------------------------------------------------------------------ acting


def _bounce_matches(address: str, original_id: str | None, settings: Settings) -> bool:
    """True when the report quotes a Message-ID we signed for ``address``."""
    if not original_id or settings.secret_key is None:
        return False
    secret = settings.secret_key.get_secret_value()
    return bool(secret) and verify_message_id(secret, original_id, address)


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

    if c.kind == "bounce":
        matched: list[str] = []
        unmatched: list[str] = []
        for address in c.addresses:
            ok = _bounce_matches(address, c.original_message_id, settings)
            (matched if ok else unmatched).append(address)
        results = (
            suppress(store, matched, "bounced", f"bounced: {c.reason}"[:300]) if matched else []
        )
        parts = [f"{a}: {r}" for a, r in results]
        if unmatched:
            parts.append(
                f"bounce does not quote a message we sent to {', '.join(unmatched)}: "
                "a human decides"
            )
            results += [(a, "unmatched") for a in unmatched]
        return Act("bounced" if matched else "review", "; ".join(parts), bool(unmatched), results)

    if c.kind == "auto":
        return Act("recorded", f"automatic mail, not answered: {c.reason}")

    return Act("review", c.reason, True)
