"""Feedback-loop complaints (ARF, RFC 5965): a reader marked our mail as spam.

flufl.bounce reads delivery failures only; a mailbox provider's feedback report
(``multipart/report; report-type=feedback-report``) is read here: the complaining
recipients (``Original-Rcpt-To``, else the returned message's ``To``), the Message-ID
and Return-Path of the mail complained about. The classifier attributes it like a
bounce; the reader is then marked ``complained``.
"""

from __future__ import annotations

from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import HeaderParser
from email.utils import getaddresses

from newsletter.audience.inbound.headers import header_text
from newsletter.audience.inbound.safety import clean_address
from newsletter.audience.inbound.text import child_parts, part_text

__all__ = ["Complaint", "read_complaint"]


@dataclass(frozen=True, slots=True)
class Complaint:
    """What one feedback report says."""

    feedback_type: str  # abuse, fraud, not-spam, ... ("" when missing)
    recipients: tuple[str, ...]  # who complained, as far as the report tells


def _fields(part: Message) -> Message:
    blocks = child_parts(part)
    if blocks:
        return blocks[0]
    return HeaderParser(policy=policy.default).parsestr(part_text(part).strip() + "\n")


def read_complaint(msg: Message) -> Complaint | None:
    """The complaint ``msg`` reports, or None when it is not a feedback report."""
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "") or "").lower() != "feedback-report":
        return None
    feedback_type = ""
    recipients: list[str] = []

    def add(value: str) -> None:
        for _name, addr in getaddresses([value]):
            clean = clean_address(addr) if addr else None
            if clean and clean.lower() not in (r.lower() for r in recipients):
                recipients.append(clean)

    original: Message | None = None
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/feedback-report":
            fields = _fields(part)
            feedback_type = header_text(fields, "Feedback-Type", limit=40).lower()
            for key, value in fields.raw_items():
                if key.lower() == "original-rcpt-to":
                    add(str(value))
        elif ctype == "message/rfc822" and original is None:
            inner = child_parts(part)
            original = inner[0] if inner else None
        elif ctype == "text/rfc822-headers" and original is None:
            original = HeaderParser(policy=policy.default).parsestr(part_text(part))
    if not recipients and original is not None:
        add(header_text(original, "To", limit=400))
    return Complaint(feedback_type, tuple(recipients[:10]))
