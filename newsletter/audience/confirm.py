"""Double opt-in: asking for a confirmation, and turning a confirmation into a subscription.

Nobody becomes active without a confirmation from that address itself:

* :func:`request_confirmation` lists a new address as ``pending`` and mails it a
  confirmation carrying a signed, expiring token, both as a link
  (``{NEWSLETTER_PUBLIC_URL}/confirm/{token}``, when a public URL is set) and in the
  subject and body, so that simply replying confirms (the email itself:
  :mod:`newsletter.audience.confirm_mail`). A request made for someone else
  only ever results in a confirmation mailed to them. Rate-limited per address
  (``NEWSLETTER_CONFIRM_RATE_LIMIT`` per 24 hours); bounced and complained addresses
  are never mailed (``"suppressed"``). An ``unsubscribed`` address keeps that status
  (anyone can type it into a form): it is only mailed a confirmation, and only
  confirming that fresh confirmation brings it back.
* :func:`confirm_token` (the link) and :func:`activate` (a reply the classifier has
  verified) turn ``pending`` -- or, with a token minted after the unsubscribe,
  ``unsubscribed`` -- into ``active`` with ``confirmed_at``; already active is fine
  (idempotent). A token minted before the row's last change (``updated_at``) is refused
  (:class:`StaleTokenError`): an old confirmation link cannot undo an unsubscribe.

With the store's ledger (the project's list), a change is decided against the address's
status now (the CSV's index, plus the ledger) and recorded as one ledger row, durable at
once and folded into the file later; a bare store applies the same change as a
:class:`~newsletter.audience.subscribers.Mutation` under the file's lock.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from newsletter.audience.confirm_mail import send_confirmation
from newsletter.audience.inbound.records import Records
from newsletter.audience.inbound.replies import confirm_token_minted
from newsletter.audience.inbound.safety import clean_header_text
from newsletter.audience.subscribers import Edit, Header, Mutation, SubscriberRow, SubscriberStore
from newsletter.audience.subscribers.addresses import address_key, normalize_address
from newsletter.audience.subscribers.csvio import neutralize_cell
from newsletter.audience.subscribers.fold import restore_signup
from newsletter.audience.subscribers.ledger import Change, Hold, RowState
from newsletter.errors import NewsletterError, TokenError
from newsletter.i18n import normalize_language
from newsletter.tokens import CONFIRM_TTL, make_token, read_token

if TYPE_CHECKING:
    from newsletter.audience.subscribers.live import LiveList
    from newsletter.config import Settings

__all__ = [
    "REASONS",
    "ConfirmRequest",
    "StaleTokenError",
    "activate",
    "confirm_token",
    "request_confirmation",
]

#: every ``ConfirmRequest.reason``; "unsubscribed" only for a request made by someone else
REASONS = ("sent", "rate-limited", "already active", "suppressed", "unsubscribed")
#: seconds a confirm token may predate a pending row's last change (clocks, rounding)
CLOCK_SLACK = 2


class StaleTokenError(TokenError):
    """A correctly signed, unexpired confirm token minted before the row's last change."""

    stale = True  # the web app shows "link no longer valid", not "broken link"


@dataclass(frozen=True)
class ConfirmRequest:
    """What :func:`request_confirmation` did for one address."""

    email: str
    sent: bool
    reason: str  # one of REASONS


# ----------------------------------------------------------------- list changes


class _RequestMutation(Mutation):
    """Add the address as pending; bounced/complained -> pending only when forced.

    An unsubscribed row is never changed by a request: it stays unsubscribed until the
    person confirms a confirmation minted after the unsubscribe.
    """

    def __init__(self, key: str, values: dict[str, str], *, force: bool) -> None:
        self.key = key
        self.values = values
        self.force = force  # bounced/complained -> pending (a human approved)
        self.before: str | None = None
        self.line = 0
        self.language = ""  # the listed row's language, if it has one

    def begin(self, header: Header, now: str) -> None:
        header.ensure("email", "name", "status", "source", "subscribed_at", "updated_at")
        header.ensure("confirmed_at", "note")
        if "language" in self.values:
            header.ensure("language")
        self.now = now
        self.before = None
        self.found = False
        self.language = ""

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        if row.key != self.key or self.found:
            return Edit.KEEP
        self.found = True
        self.line = row.line
        sub = row.subscriber
        if sub is None:
            self.before = "problem"
            return Edit.KEEP
        self.before = sub.status
        self.language = sub.language
        if not (sub.status in ("bounced", "complained") and self.force):
            return Edit.KEEP
        cells = list(row.cells)
        header.set(cells, "status", "pending")
        header.set(cells, "updated_at", self.now)
        note = f"asked again ({self.values['source']}) after {sub.status}"
        header.set(cells, "note", f"{sub.note}; {note}" if sub.note else note)
        return cells

    def end(self, header: Header) -> list[list[str]]:
        if self.found:
            return []
        values = dict(self.values, subscribed_at=self.now, updated_at=self.now)
        return [header.new_row(values)]


def _timestamp(value: str) -> float | None:
    """Unix time of an ISO 8601 cell (UTC when no offset is given), None if unreadable."""
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.timestamp()


def _fresh(minted: float | None, status: str, updated_at: str) -> bool:
    """Whether a token minted at ``minted`` may confirm a row of ``status`` changed then."""
    if minted is None:
        return status == "pending"
    changed = _timestamp(updated_at) if updated_at else None
    if status == "pending":
        return changed is None or minted >= changed - CLOCK_SLACK
    # unsubscribed: the token must come after the unsubscribe, without slack (the
    # cell is to the second, so a token from the same second is refused: ask again)
    return changed is not None and minted > changed


class _ActivateMutation(Mutation):
    """pending (or unsubscribed, given a fresh token) -> active; reports what the row held.

    ``minted`` is when the confirm token was made (None: not known, e.g. an older
    caller): a token older than the row's ``updated_at`` does not change it (``stale``).
    """

    def __init__(self, key: str, note: str, minted: float | None = None) -> None:
        self.key = key
        self.note = note
        self.minted = minted
        self.before: str | None = None
        self.stale = False

    def _fresh(self, status: str, updated_at: str) -> bool:
        return _fresh(self.minted, status, updated_at)

    def begin(self, header: Header, now: str) -> None:
        header.ensure("status", "updated_at", "confirmed_at", "note")
        self.now = now
        self.before = None
        self.found = False
        self.stale = False

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        if row.key != self.key or self.found:
            return Edit.KEEP
        self.found = True
        sub = row.subscriber
        if sub is None:
            self.before = "problem"
            return Edit.KEEP
        self.before = sub.status
        if sub.status not in ("pending", "unsubscribed"):
            return Edit.KEEP
        if not self._fresh(sub.status, sub.updated_at):
            self.stale = self.minted is not None
            return Edit.KEEP
        cells = list(row.cells)
        header.set(cells, "status", "active")
        header.set(cells, "updated_at", self.now)
        header.set(cells, "confirmed_at", self.now)
        if self.note:
            header.set(cells, "note", f"{sub.note}; {self.note}" if sub.note else self.note)
        return cells


# ------------------------------------------------- the same changes, through the ledger


def _record_request(
    store: SubscriberStore, live: LiveList, mutation: _RequestMutation, *, force: bool
) -> str | None:
    """:class:`_RequestMutation` as a ledger change; the status it found (None: new)."""
    values, key, now = mutation.values, mutation.key, store.clock()

    def decide(state: RowState | None, hold: Hold | None) -> Change | None:
        if state is None:
            return Change(
                key, values["email"], "request", "pending", note=values["note"],
                name=values["name"], source=values["source"], at=now,
                language=values.get("language", ""),
            )  # fmt: skip
        if force and state.status in ("bounced", "complained"):
            return Change(
                key, state.email, "request", "pending", before=state.status,
                note=f"asked again ({values['source']}) after {state.status}", at=now,
            )  # fmt: skip
        return None

    decision = live.decide(key, decide)
    mutation.line = decision.before.line if decision.before else 0
    mutation.language = decision.before.language if decision.before else ""
    return decision.before.status if decision.before else None


def _record_activation(store: SubscriberStore, live: LiveList, mutation: _ActivateMutation) -> None:
    """:class:`_ActivateMutation` as a ledger change; fills in its ``before`` and ``stale``."""
    now = store.clock()

    def decide(state: RowState | None, hold: Hold | None) -> Change | None:
        if state is None or state.status not in ("pending", "unsubscribed"):
            return None
        if not _fresh(mutation.minted, state.status, state.updated_at):
            return None
        return Change(
            mutation.key, state.email, "activate", "active", before=state.status,
            note=mutation.note, at=now,
        )  # fmt: skip

    decision = live.decide(mutation.key, decide)
    before = decision.before
    mutation.before = before.status if before else None
    if before is None and restore_signup(live, mutation.key, mutation.minted, mutation.note, now):
        mutation.before = "pending"  # a pending signup deleted by hand: the reader confirmed
    mutation.stale = (
        decision.change is None
        and before is not None
        and before.status in ("pending", "unsubscribed")
        and mutation.minted is not None
    )


# ------------------------------------------------------------------ public API


def request_confirmation(
    email: str,
    settings: Settings,
    *,
    name: str = "",
    source: str,
    store: SubscriberStore | None = None,
    in_reply_to: str | None = None,
    requested_by: str | None = None,
    records: Records | None = None,
    force: bool = False,
    now: float | None = None,
    language: str | None = None,
) -> ConfirmRequest:
    """List ``email`` as pending and mail it a confirmation; see the module docstring.

    ``source`` is recorded on a new row ("email", "web"). ``in_reply_to`` (a
    Message-ID, cleaned here) threads the confirmation under the request.
    An unsubscribed address stays unsubscribed; it is mailed a confirmation (only
    confirming that one brings it back) unless ``requested_by`` is someone else, who
    gets reason "unsubscribed" and nothing is sent. ``force`` (a human approved it)
    also turns a bounced or complained address back to pending. Raises
    :class:`~newsletter.errors.TransportError` if the email could not be sent (the
    rate-limit slot is given back), ConfigError without NEWSLETTER_SECRET_KEY.
    ``language`` is what the request was written in (``ja``): recorded on a new row,
    and the confirmation is in the listed row's language, else in this one.
    """
    secret = settings.require_secret()
    address = normalize_address(email)
    key = address.lower()
    store = store if store is not None else SubscriberStore.from_settings(settings)
    own = requested_by is None or address_key(requested_by) == key
    values = {
        "email": address,
        # from the public (a form, a message): never a spreadsheet formula in the CSV
        "name": neutralize_cell(clean_header_text(name, limit=100)),
        "status": "pending",
        "source": source,
        "confirmed_at": "",
        "note": "" if own else f"requested by {requested_by}",
    }
    language = normalize_language(language)
    if language is not None:
        values["language"] = language
    mutation = _RequestMutation(key, values, force=force)
    if store.live is not None:
        before = _record_request(store, store.live, mutation, force=force)
    else:
        store.apply(mutation)
        before = mutation.before
    if before == "problem":
        raise NewsletterError(
            f"{store.display}:{mutation.line}: {address} is in a row with problems; "
            "fix the row, then approve the request again",
        )
    if before == "active":
        return ConfirmRequest(address, False, "already active")
    if before in ("bounced", "complained") and not force:
        return ConfirmRequest(address, False, "suppressed")
    if before == "unsubscribed" and not (own or force):
        return ConfirmRequest(address, False, "unsubscribed")

    own_records = records is None
    db = Records.from_settings(settings) if records is None else records
    try:
        when = time.time() if now is None else now
        reservation = db.reserve_confirmation(address, limit=settings.confirm_rate_limit, now=when)
        if reservation is None:
            return ConfirmRequest(address, False, "rate-limited")
        token = make_token(secret, "confirm", address, ttl=CONFIRM_TTL, now=when)
        try:
            reader_language = normalize_language(mutation.language) or language
            send_confirmation(address, name, token, settings, in_reply_to, reader_language)
        except BaseException:
            db.release_confirmation(reservation)
            raise
    finally:
        if own_records:
            db.close()
    return ConfirmRequest(address, True, "sent")


def activate(
    email: str,
    settings: Settings,
    *,
    store: SubscriberStore | None = None,
    how: str = "",
    minted: float | None = None,
) -> str:
    """-> active for an address whose confirmation has been verified.

    ``minted`` (Unix time the confirm token was made) lets a token made after the row's
    last change confirm a ``pending`` or ``unsubscribed`` row (or a pending signup's row
    deleted by hand: back); an older one raises :class:`StaleTokenError`. Idempotent.
    Raises NewsletterError when the address is not listed or was suppressed since."""
    address = normalize_address(email)
    store = store if store is not None else SubscriberStore.from_settings(settings)
    mutation = _ActivateMutation(address.lower(), f"confirmed {how}".strip(), minted)
    if store.live is not None:
        _record_activation(store, store.live, mutation)
    else:
        store.apply(mutation)
    if mutation.stale:
        raise StaleTokenError(
            "this link is older than your last change; ask for a new one",
            hint=f"{address} is {mutation.before}; a new confirmation is needed",
        )
    if mutation.before == "active":
        return address
    if mutation.before == "pending" or (mutation.before == "unsubscribed" and minted is not None):
        return address
    if mutation.before is None:
        raise NewsletterError(
            f"{store.display}: {address} is not on the list (removed since the request?)",
            hint="ask again to subscribe",
        )
    if mutation.before == "problem":
        raise NewsletterError(f"{store.display}: {address} is in a row with problems")
    raise NewsletterError(
        f"{store.display}: {address} is {mutation.before}; this confirmation is no longer valid",
        hint="ask again to subscribe",
    )


def confirm_token(token: str, settings: Settings, *, store: SubscriberStore | None = None) -> str:
    """Confirm by link: check the token, then :func:`activate`. Returns the email.

    Raises TokenError (tampered, expired, malformed), :class:`StaleTokenError` (minted
    before the address's last change, e.g. an unsubscribe) or NewsletterError.
    """
    email = read_token(settings.require_secret(), token, "confirm")
    minted = confirm_token_minted(token)
    if minted is None:  # pragma: no cover - read_token accepted it, so it parses
        raise TokenError("malformed token")
    return activate(email, settings, store=store, how="by link", minted=minted)
