"""Headers of an inbound message, read without ever raising on hostile mail.

Where the stdlib parser chokes on a header, the helpers here fall back to its raw text
(:func:`get_header`). What they give is safe to use: the validated From address
(:func:`sender_address`), a sane Message-ID (:func:`clean_message_id`), any header's
text sanitised and bounded (:func:`header_text`). Used by the classifier and by the
readers of bounces and automatic mail.
"""

from __future__ import annotations

import re
from email.message import Message
from email.utils import getaddresses
from typing import Any

from newsletter.audience.inbound.safety import clean_address, clean_header_text
from newsletter.audience.inbound.text import PARSE_ERRORS

__all__ = [
    "SUBJECT_LIMIT",
    "clean_message_id",
    "get_header",
    "has_header",
    "header_text",
    "sender_address",
]

SUBJECT_LIMIT = 200  # characters of a header's text kept (a Subject's, unless told)


def _raw_header(msg: Message, name: str) -> str | None:
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return str(value)
    return None


def get_header(msg: Message, name: str) -> Any:
    """The header object, or its raw text when the stdlib parser chokes on it."""
    try:
        return msg.get(name)
    except PARSE_ERRORS:
        return _raw_header(msg, name)


def header_text(msg: Message, name: str, *, limit: int = SUBJECT_LIMIT) -> str:
    return clean_header_text(get_header(msg, name), limit=limit)


def has_header(msg: Message, name: str) -> bool:
    return any(key.lower() == name.lower() for key in msg)


def sender_address(msg: Message) -> str | None:
    value = get_header(msg, "From")
    if value is None:
        return None
    addresses = getattr(value, "addresses", None)
    if addresses:
        try:
            return clean_address(addresses[0].addr_spec)
        except PARSE_ERRORS:
            pass
    raw = " ".join((_raw_header(msg, "From") or "").split())
    angle = re.search(r"<([^<>\s]+@[^<>\s]+)>$", raw)
    if angle:  # "display name the parser refused <addr>": the address is what counts
        return clean_address(angle.group(1))
    pairs = getaddresses([raw])
    return clean_address(pairs[0][1]) if pairs and pairs[0][1] else None


def clean_message_id(value: object) -> str | None:
    text = clean_header_text(value, limit=300)
    match = re.search(r"<[^<>\s]{1,250}>", text)
    if match:
        return match.group(0)
    if text and " " not in text and len(text) <= 250:
        return text
    return None
