"""Delivery-status reports (RFC 3464): who a bounce says failed, and which mail.

:func:`dsn_recipients` reads the per-recipient fields (Final-Recipient,
Original-Recipient, Action, Status) of a ``multipart/report; report-type=delivery-status``,
whether the status part holds them as parsed blocks or as text;
:func:`original_message_id` finds the Message-ID of the mail that failed, in the
returned message or its headers. The classifier decides what the report means.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import HeaderParser

from newsletter.audience.inbound.headers import clean_message_id, get_header, header_text
from newsletter.audience.inbound.safety import clean_address, clean_header_text
from newsletter.audience.inbound.text import child_parts, part_text

__all__ = ["MAX_BOUNCE_RECIPIENTS", "DsnRecipient", "dsn_recipients", "original_message_id"]

MAX_BOUNCE_RECIPIENTS = 5  # a delivery report naming more is not acted on: a human checks


@dataclass(frozen=True, slots=True)
class DsnRecipient:
    """One recipient's fields in a delivery-status report."""

    final: str | None  # Final-Recipient: the address the report is about
    original: str | None  # Original-Recipient: the address as first given, if reported
    action: str  # Action, lowercased: failed, delayed, delivered, relayed, expanded or ""
    status: str  # the Status code (e.g. 5.1.1), "" if none


def _field_blocks(part: Message) -> list[Message]:
    blocks = child_parts(part)
    if blocks:
        return blocks
    text = part_text(part)
    parser = HeaderParser(policy=policy.default)
    return [
        parser.parsestr(chunk.strip() + "\n")
        for chunk in re.split(r"\n\s*\n", text)
        if chunk.strip()
    ]


def _dsn_address(value: str) -> str | None:
    text = clean_header_text(value, limit=400)
    if ";" in text:
        kind, text = text.split(";", 1)
        if kind.strip().lower() not in ("rfc822", ""):
            return None
    return clean_address(text.strip())


def dsn_recipients(msg: Message) -> list[DsnRecipient] | None:
    """The per-recipient fields of a delivery-status report, or None if not a DSN."""
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "")).lower() != "delivery-status":
        return None
    status_part = next(
        (p for p in msg.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return []
    recipients = []
    for block in _field_blocks(status_part):
        final = header_text(block, "Final-Recipient", limit=400)
        original = header_text(block, "Original-Recipient", limit=400)
        if not final and not original:
            continue
        status = header_text(block, "Status", limit=40)
        recipients.append(
            DsnRecipient(
                final=_dsn_address(final) if final else None,
                original=_dsn_address(original) if original else None,
                action=header_text(block, "Action", limit=40).lower(),
                status=status.split()[0] if status else "",
            )
        )
    return recipients


def original_message_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = child_parts(part)
            if inner:
                return clean_message_id(get_header(inner[0], "Message-ID"))
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser(policy=policy.default).parsestr(part_text(part))
            return clean_message_id(get_header(headers, "Message-ID"))
    return None
