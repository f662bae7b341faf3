"""Classify one inbound message to the contact address: the pure core of inbound mail.

The stages, each a pure function of the message::

    parse_message(raw)            bytes -> EmailMessage, defects tolerated
    body_text / strip_quoted      the new text the sender wrote (inbound/text.py)
    classify_message              bounce > auto > confirm > subscribe / unsubscribe > review

:func:`classify_message` is the order of those decisions and their reasons; what each
step reads lives beside it: delivery reports in :mod:`.bounces`, automatic mail in
:mod:`.automatic`, confirm tokens in :mod:`.replies`, forged senders in
:mod:`.authentication`, requests in free text in :mod:`.intent`, headers in
:mod:`.headers`.

Nothing here sends, stores or looks anything up: the caller acts on the
:class:`Classification` (send a confirmation, suppress an address, queue for review).
A request never activates anyone: subscribe only lists who should be sent a
confirmation, and only a valid confirm token naming the From address confirms.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Literal

from newsletter.audience.inbound.authentication import aligned_pass, auth_failure
from newsletter.audience.inbound.automatic import AUTO_ACK, auto_reason
from newsletter.audience.inbound.bounces import (
    bounce_look,
    quoted_message_ids,
    read_failures,
    returned_to,
)
from newsletter.audience.inbound.complaints import read_complaint
from newsletter.audience.inbound.headers import (
    SUBJECT_LIMIT,
    clean_message_id,
    get_header,
    header_text,
    sender_address,
)
from newsletter.audience.inbound.intent import (
    MAX_NAMED_ADDRESSES,
    OTHERS,
    QUESTION,
    REFUSAL,
    REPLY_PREFIX,
    SELF,
    in_domains,
    named_addresses,
    normalise,
    read_intent,
)
from newsletter.audience.inbound.replies import (
    TokenCheck,
    check_tokens,
    expand_refs,
    token_candidates,
)
from newsletter.audience.inbound.safety import clean_text
from newsletter.audience.inbound.situations import (
    address_change_reason,
    automatic_text,
    pitch_reason,
    thread_reason,
)
from newsletter.audience.inbound.text import PARSE_ERRORS, all_text, body_text, strip_quoted
from newsletter.tokens import read_bounce_address

__all__ = ["REPORT_KINDS", "Classification", "Kind", "classify_message", "parse_message"]

Kind = Literal[
    "subscribe", "unsubscribe", "confirm", "bounce", "delay", "complaint", "auto", "review"
]
#: the kinds that are reports about mail we sent (their own group in the review queue)
REPORT_KINDS: tuple[Kind, ...] = ("bounce", "delay", "complaint")

EXCERPT_LIMIT = 500
_TEXT_LIMIT = 100_000  # characters of body text examined; the rest is ignored


@dataclass(frozen=True, slots=True)
class Classification:
    """What one inbound message asks for, and why we think so."""

    kind: Kind
    sender: str | None  # the From address (validated, lowercased domain), None if unusable
    addresses: tuple[str, ...]  # who the request is for; bounce: the failed recipients
    reason: str  # one human sentence: why this kind
    token_email: str | None = None  # confirm: the email a valid confirm token names
    message_id: str | None = None  # sanitised Message-ID, for idempotence records
    subject: str = ""  # sanitised, bounded
    excerpt: str = ""  # the start of the new (unquoted) text, for the review queue
    original_message_id: str | None = None  # bounce: Message-ID of the mail that failed
    token_minted: float | None = None  # confirm: when the confirm token was made (Unix)
    # bounce/delay/complaint: every Message-ID the report quotes of the mail that failed
    quoted_ids: tuple[str, ...] = ()
    # bounce/delay/complaint: (subscriber id, issue tag) of the VERP address it came back to
    verp: tuple[str, str] | None = None
    # a trusted verdict that the From is authentic (SPF or DKIM pass, aligned), or None
    authenticated: str | None = None


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes with ``policy.default``; defects are recorded, never raised."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - policy.default guarantees it
        raise TypeError("expected an EmailMessage")
    return msg


# --------------------------------------------------------------------- reports

_Report = tuple[Kind, str, tuple[str, ...], tuple[str, ...], "tuple[str, str] | None"]


def _verp(
    msg: EmailMessage, secret: str | None, bounce: str | None, sep: str
) -> tuple[str, str] | None:
    if not secret or not bounce:
        return None
    for address in returned_to(msg):
        found = read_bounce_address(secret, address, bounce, separator=sep)
        if found is not None:
            return found
    return None


def _report(
    msg: EmailMessage,
    sender: str | None,
    subject: str,
    secret: str | None,
    bounce: str | None,
    sep: str,
) -> _Report | None:
    """(kind, reason, addresses, quoted Message-IDs, VERP) of a report, or None."""
    complaint = read_complaint(msg)
    if complaint is not None:
        who = ", ".join(complaint.recipients) or "an unnamed recipient"
        ftype = complaint.feedback_type or "unknown"
        return (
            "complaint",
            f"feedback-loop complaint (Feedback-Type: {ftype}) about mail to {who}",
            complaint.recipients,
            quoted_message_ids(msg),
            _verp(msg, secret, bounce, sep),
        )
    look = bounce_look(msg, sender, subject)
    if look is None:  # flufl's heuristics also fire on a person's list of addresses
        return None
    failures = read_failures(msg)
    ids = quoted_message_ids(msg)
    verp = _verp(msg, secret, bounce, sep)
    if failures is None:
        return ("bounce", f"{look}, but no failed address could be read", (), ids, verp)
    if failures.permanent:
        return (
            "bounce",
            f"permanent delivery failure for {', '.join(failures.permanent)}",
            failures.permanent,
            ids,
            verp,
        )
    return (
        "delay",
        f"temporary delivery failure (delay) for {', '.join(failures.temporary)}",
        failures.temporary,
        ids,
        verp,
    )


def _signature_names(msg: EmailMessage) -> tuple[str, ...]:
    """The From's display name, and its words: a line that is one starts a signature."""
    name = header_text(msg, "From", limit=200).split("<", 1)[0].strip().strip('"').strip()
    if not name or "@" in name:
        return ()
    return (name, *name.replace(",", " ").split())


# -------------------------------------------------------------------- classify


def classify_message(
    msg: EmailMessage,
    *,
    contact: str,
    secret: str | None,
    our_domains: Iterable[str] = (),
    now: float | None = None,
    bounce_address: str | None = None,
    separator: str = "+",
    authserv_ids: Iterable[str] = (),
    inbound_parse: bool = False,
) -> Classification:
    """Decide what one inbound message asks for. Pure: no I/O, never raises on bad mail.

    ``contact`` is the address people write to; ``our_domains`` (plus the contact's
    domain) are never subscribed and mail from them is not answered automatically.
    ``secret`` checks confirmation tokens and VERP tokens (``bounce_address`` with its
    subaddress ``separator``); ``authserv_ids`` are the Authentication-Results issuers
    we trust, ``inbound_parse`` says the message came through our Inbound Parse
    webhook; ``now`` defaults to the current time.
    """
    now = time.time() if now is None else now
    contact = contact.strip().lower()
    domains = frozenset(
        d.strip().lower().lstrip("@") for d in (*our_domains, contact.rsplit("@", 1)[-1]) if d
    )
    subject = header_text(msg, "Subject", limit=SUBJECT_LIMIT)
    message_id = clean_message_id(get_header(msg, "Message-ID"))
    sender = sender_address(msg)

    try:
        full = body_text(msg)[:_TEXT_LIMIT]
    except PARSE_ERRORS:
        full = ""
    new = strip_quoted(full)
    excerpt = clean_text(new, limit=EXCERPT_LIMIT)

    def result(
        kind: Kind,
        reason: str,
        addresses: Iterable[str] = (),
        *,
        token_email: str | None = None,
        original_message_id: str | None = None,
        token_minted: float | None = None,
        quoted_ids: tuple[str, ...] = (),
        verp: tuple[str, str] | None = None,
    ) -> Classification:
        return Classification(
            kind=kind,
            sender=sender,
            addresses=tuple(addresses),
            reason=reason,
            token_email=token_email,
            message_id=message_id,
            subject=subject,
            excerpt=excerpt,
            original_message_id=original_message_id,
            token_minted=token_minted,
            quoted_ids=quoted_ids,
            verp=verp,
            authenticated=authenticated,
        )

    authenticated = aligned_pass(
        msg, sender, authserv_ids=authserv_ids, inbound_parse=inbound_parse
    )

    # 1. Reports about mail we sent: complaints, bounces and delays, attributed by the
    # VERP address they came back to or the Message-ID they quote; before the generic
    # auto checks, and nothing that looks like one is merely recorded.
    report = _report(msg, sender, subject, secret, bounce_address, separator)
    if report is not None:
        kind, reason, found, ids, verp = report
        return result(
            kind,
            reason,
            found,
            original_message_id=ids[0] if ids else None,
            quoted_ids=ids,
            verp=verp,
        )

    # 2. Automatic mail (RFC 3834 and friends): recognised, never answered.
    auto = auto_reason(msg, sender, subject, contact) or automatic_text(normalise(new))
    if auto:
        return result("auto", auto)

    if sender is None:
        raw_from = header_text(msg, "From", limit=80)
        shown = f" ({raw_from!r})" if raw_from else ""
        return result("review", f"no usable From address{shown}")
    if in_domains(sender, domains):
        return result("review", f"sent from our own domain ({sender}); not answered automatically")

    # 3. Confirmation replies: a valid confirm token naming the sender, anywhere: the
    # confirmation's Message-ID carries it, so a reply's In-Reply-To/References do too.
    threads = [header_text(msg, name, limit=4000) for name in ("In-Reply-To", "References")]
    try:
        texts = [subject, *threads, *all_text(msg)]
    except PARSE_ERRORS:
        texts = [subject, *threads, full]
    refs, stray = expand_refs(texts, secret=secret, sender=sender)
    check = check_tokens(token_candidates(texts) + refs, secret=secret, sender=sender, now=now)
    if check is None and stray:
        check = TokenCheck(
            None,
            "carries a confirmation reference that is not the sender's (someone else's?)"
            if secret
            else "carries a confirmation reference but no secret key is set",
        )
    normal_new = normalise(new)
    if check is not None:
        if check.problem is not None:
            return result("review", f"not confirmed: the message {check.problem}")
        if read_intent(normal_new).unsubscribe or REFUSAL.search(normal_new):
            return result(
                "review",
                "replied to a confirmation with a valid token but the reply refuses it",
            )
        ack = AUTO_ACK.search(normalise(f"{subject}\n{new}"))
        if ack:
            return result(
                "review",
                "not confirmed: the reply looks like an automatic acknowledgement "
                f"({ack.group(0)!r}), not a person",
            )
        return result(
            "confirm",
            f"replied to the confirmation mail with a valid token for {check.valid}",
            [sender],
            token_email=check.valid,
            token_minted=check.minted,
        )

    # 4. Requests in free text (and an original subject: not "Re:"/"Fwd:"). A From the
    # receiving side says is forged asks nothing automatically.
    failed_auth = auth_failure(msg)
    if failed_auth:
        return result(
            "review",
            f"sender authentication failed ({failed_auth}): not applied automatically",
        )
    own_subject = "" if REPLY_PREFIX.match(subject) else subject
    text = normalise(f"{own_subject}\n{new}")
    ours = {contact, sender}
    signature = _signature_names(msg)
    if own_subject.strip().lower() == "unsubscribe":
        others = named_addresses(new, exclude=ours, domains=domains, signature=signature)
        aside = thread_reason(msg, text, ours=ours)
        if others or aside:
            why = aside or f"the text names {', '.join(others)}"
            return result("review", f"subject 'unsubscribe', but {why}: a human decides")
        return result("unsubscribe", "subject 'unsubscribe' (List-Unsubscribe mailto)", [sender])
    if not text:
        return result("review", "empty message: no subject and no new text")
    intent = read_intent(text)
    if intent.subscribe and intent.unsubscribe:
        return result(
            "review",
            f"ambiguous: asks to subscribe ('{intent.subscribe}') and to unsubscribe "
            f"('{intent.unsubscribe}')",
        )
    phrase = intent.unsubscribe or intent.subscribe
    if phrase is None:
        why = "a question" if QUESTION.search(text) else "no subscribe or unsubscribe request"
        return result("review", f"needs a human: {why} recognised in the new text")
    if intent.subscribe and not intent.subscribe_strong and QUESTION.search(text):
        return result("review", f"a question about subscribing ('{phrase}'), not a request")
    aside = thread_reason(msg, text, ours=ours) or pitch_reason(text) or address_change_reason(text)
    if aside:
        return result("review", f"'{phrase}' in a message that is {aside}")

    verb: Kind = "unsubscribe" if intent.unsubscribe else "subscribe"
    named = named_addresses(new, exclude={contact}, domains=domains, signature=signature)
    self_named = any(a.lower() == sender.lower() for a in named)
    named = [a for a in named if a.lower() != sender.lower()]
    if len(named) > MAX_NAMED_ADDRESSES:
        return result("review", f"asks to {verb} {len(named)} addresses: a bulk request")
    wants_self = self_named or any(p.search(text) for p in SELF)
    if named:
        addresses = ([sender] if wants_self else []) + named
        return result(verb, f"asked to {verb} {', '.join(addresses)}: '{phrase}'", addresses)
    if OTHERS.search(normalise(new)) and not wants_self:
        return result("review", f"asks to {verb} someone else ('{phrase}') but names no address")
    return result(verb, f"asked to {verb}: '{phrase}'", [sender])
