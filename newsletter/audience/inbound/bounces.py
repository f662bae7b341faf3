"""Delivery reports: who a bounce says failed, for good or for now, and which mail.

The detection is GNU Mailman's (``flufl.bounce``): RFC 3464 DSNs and the non-standard
reports of dozens of MTAs (qmail, Exim, Exchange, GroupWise, Yahoo, ...), wherever in
the message they sit, each failure permanent or temporary (:func:`read_failures`).
Around it, what that library leaves to its caller: whether a message *looks* like a
bounce even when no address can be read from it (:func:`bounce_look`), the
Message-IDs the report quotes of the mail that failed (:func:`quoted_message_ids`),
and the addresses the report was returned to, where a VERP token sits
(:func:`returned_to`). The classifier decides what the report means; feedback-loop
complaints (RFC 5965) are read by :mod:`.complaints`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import message_from_bytes, policy
from email.message import Message
from email.parser import HeaderParser

from flufl.bounce import all_failures

from newsletter.audience.inbound.headers import clean_message_id, get_header, header_text
from newsletter.audience.inbound.safety import clean_address
from newsletter.audience.inbound.text import child_parts, part_text

__all__ = [
    "Failures",
    "bounce_look",
    "quoted_message_ids",
    "read_failures",
    "returned_to",
]


@dataclass(frozen=True, slots=True)
class Failures:
    """The failed recipients a delivery report names."""

    permanent: tuple[str, ...]
    temporary: tuple[str, ...]


def _addresses(found: frozenset[bytes]) -> tuple[str, ...]:
    out: list[str] = []
    for item in sorted(found):
        address = clean_address(item.decode("utf-8", "replace"))
        if address is not None and address.lower() not in (a.lower() for a in out):
            out.append(address)
    return tuple(out)


def read_failures(msg: Message) -> Failures | None:
    """The failures flufl.bounce reads in ``msg``, or None when it finds none.

    The detectors were written for ``compat32`` messages: they get the message parsed
    that way first, the modern object only if that fails; a detector that chokes on
    both counts as finding nothing (the caller still sees the report by its look).
    """
    for attempt in ("compat32", "default"):
        try:
            candidate = (
                message_from_bytes(msg.as_bytes(policy=policy.compat32))
                if attempt == "compat32"
                else msg
            )
            temporary, permanent = all_failures(candidate)
        except Exception:  # a detector's bug on hostile mail: try the other parse, then none
            continue
        perm, temp = _addresses(permanent), _addresses(temporary)
        if perm or temp:
            return Failures(perm, tuple(a for a in temp if a not in perm))
        return None
    return None


_BOUNCE_SUBJECT = re.compile(
    r"undeliver|undelivered|delivery (?:status )?notification|failure notice|returned mail|"
    r"mail delivery (?:failed|failure|system|problem)|delivery (?:failure|problem|failed)|"
    r"could not be delivered|non[- ]?deliver|nondeliverable|unzustellbar|"
    r"non remis|mail error|delivery has failed|not (?:be )?delivered|returned to sender|"
    r"delayed mail|delivery delayed|warning: could not send|delivery warning|user unknown|"
    r"unknown user|mailbox (?:is )?(?:full|unavailable)|over quota|配信(?:エラー|失敗|不能)|"
    r"送信(?:エラー|失敗)|届きませんでした",
    re.IGNORECASE,
)
_DAEMON = re.compile(r"^(?:mailer-daemon|postmaster|mail-daemon|mailerdaemon)$", re.IGNORECASE)


def bounce_look(msg: Message, sender: str | None, subject: str) -> str | None:
    """Why ``msg`` looks like a delivery report (even an unreadable one), or None."""
    ctype = msg.get_content_type()
    report = str(msg.get_param("report-type", "") or "").lower()
    if ctype == "multipart/report" and report in ("delivery-status", ""):
        return f"a delivery report (multipart/report; report-type={report or 'missing'})"
    if any(p.get_content_type() == "message/delivery-status" for p in msg.walk()):
        return "a delivery report (a message/delivery-status part)"
    raw_from = header_text(msg, "From", limit=200).lower()
    if sender is not None and _DAEMON.match(sender.rsplit("@", 1)[0]):
        return f"sent by a mail system ({sender})"
    if "mailer-daemon" in raw_from or "mail delivery" in raw_from:
        return "sent by a mail system"
    if subject and _BOUNCE_SUBJECT.search(subject):
        return f"a delivery-failure subject ({subject[:80]!r})"
    return None


_QUOTED_ID = re.compile(r"(?im)^[ \t>]*message-id:[ \t]*(<[^<>\s]{1,250}>)")


def quoted_message_ids(msg: Message) -> tuple[str, ...]:
    """Message-IDs of the mail that failed: in a returned message or its headers, in a
    quoted header block of a plain-text report, or in the report's In-Reply-To /
    References. The report's own Message-ID is never one of them."""
    own = clean_message_id(get_header(msg, "Message-ID"))
    found: list[str] = []

    def add(value: object) -> None:
        mid = clean_message_id(value)
        if mid and mid != own and mid not in found:
            found.append(mid)

    for part in msg.walk():
        if part is msg:
            continue
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            for inner in child_parts(part):
                add(get_header(inner, "Message-ID"))
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser(policy=policy.default).parsestr(part_text(part))
            add(get_header(headers, "Message-ID"))
        elif part.get_content_maintype() == "text":
            for match in _QUOTED_ID.finditer(part_text(part)[:200_000]):
                add(match.group(1))
    if not msg.is_multipart():
        for match in _QUOTED_ID.finditer(part_text(msg)[:200_000]):
            add(match.group(1))
    for name in ("In-Reply-To", "References"):
        for mid in re.findall(r"<[^<>\s]{1,250}>", header_text(msg, name, limit=2000)):
            add(mid)
    return tuple(found)


_RETURNED_HEADERS = (
    "Delivered-To",
    "X-Original-To",
    "Envelope-To",
    "X-Envelope-To",
    "X-Original-Recipient",
    "To",
)
_RETURN_PATH = re.compile(r"(?im)^[ \t>]*return-path:[ \t]*<([^<>\s]{1,300})>")


def returned_to(msg: Message) -> tuple[str, ...]:
    """Where the report was delivered (a VERP address, if we sent with one), and the
    Return-Path of the returned message when the report quotes it."""
    found: list[str] = []
    for key, value in msg.raw_items():
        if key.lower() in (h.lower() for h in _RETURNED_HEADERS):
            for piece in re.findall(r"[^\s<>,;\"']+@[^\s<>,;\"']+", str(value)):
                if piece not in found:
                    found.append(piece)
    for part in msg.walk():
        if part is msg and msg.is_multipart():
            continue
        if part.get_content_type() == "message/rfc822":
            for inner in child_parts(part):
                path = header_text(inner, "Return-Path", limit=300).strip(" <>")
                if path and path not in found:
                    found.append(path)
        elif part.get_content_maintype() == "text":
            for match in _RETURN_PATH.finditer(part_text(part)[:200_000]):
                if match.group(1) not in found:
                    found.append(match.group(1))
    return tuple(found[:50])
