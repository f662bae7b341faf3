"""Make values taken from inbound mail safe to show, store and reuse.

Never copy a header object from an inbound message into an outbound one: take its text
through :func:`clean_header_text` (or its address through :func:`clean_address`) and
build a fresh header. Python before 3.11.10 lets an RFC 2047 encoded CR/LF in a parsed
header turn into new header lines when the message is serialised again (CVE-2024-6923);
both functions here remove or refuse every such character.
"""

from __future__ import annotations

import unicodedata
from email.header import decode_header, make_header
from email.headerregistry import Address
from email.utils import getaddresses

from email_validator import EmailNotValidError, validate_email

__all__ = ["clean_address", "clean_header_text", "clean_text", "has_control_chars"]

# Character categories that never belong in a header: controls (C0, C1 with NEL, DEL),
# format characters (bidi overrides, zero-width), lone surrogates (undecodable bytes
# carried by surrogateescape), and the Unicode line and paragraph separators.
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_ELLIPSIS = "…"


def _is_unsafe(ch: str) -> bool:
    return unicodedata.category(ch) in _UNSAFE_CATEGORIES


def has_control_chars(text: str) -> bool:
    """True if ``text`` holds any character :func:`clean_header_text` would remove."""
    return any(_is_unsafe(ch) for ch in text)


def _decode_encoded_words(text: str) -> str:
    if "=?" not in text:
        return text
    try:
        return str(make_header(decode_header(text)))
    except (ValueError, LookupError, UnicodeError, AssertionError):
        return text


def _bound(text: str, limit: int) -> str:
    if limit <= 0:
        return ""
    if len(text) <= limit:
        return text
    return text[: limit - 1].rstrip() + _ELLIPSIS


def clean_header_text(value: object, *, limit: int = 200) -> str:
    """One safe line of text from a header value (or anything else).

    Takes ``str(value)``, decodes RFC 2047 encoded words still present, replaces every
    control, format and line-separator character with a space, collapses whitespace and
    bounds the length to ``limit`` characters (an ellipsis marks a cut).
    """
    if value is None:
        return ""
    try:
        text = str(value)
    except Exception:  # a broken header object must not stop the caller
        return ""
    text = _decode_encoded_words(text)
    text = "".join(" " if _is_unsafe(ch) else ch for ch in text)
    return _bound(" ".join(text.split()), limit)


def clean_text(value: str, *, limit: int = 500) -> str:
    """Multi-line text for a review queue: keeps newlines, drops other controls."""
    lines = []
    for raw_line in value.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        line = "".join(" " if _is_unsafe(ch) else ch for ch in raw_line)
        lines.append(" ".join(line.split()))
    text = "\n".join(lines)
    while "\n\n\n" in text:
        text = text.replace("\n\n\n", "\n\n")
    return _bound(text.strip(), limit)


def clean_address(value: object) -> str | None:
    """A syntactically valid address (domain lowercased), or None.

    Accepts a bare address, ``<addr>``, ``Name <addr>`` or a
    :class:`~email.headerregistry.Address`. Anything that holds a control character,
    CR/LF included, before or after RFC 2047 decoding, is refused rather than repaired.
    No DNS look-ups are made.
    """
    if value is None:
        return None
    if isinstance(value, Address):
        text = value.addr_spec
    else:
        try:
            text = str(value)
        except Exception:
            return None
    if has_control_chars(text) or has_control_chars(_decode_encoded_words(text)):
        return None
    text = text.strip()
    if "<" in text or " " in text or "," in text:
        pairs = getaddresses([text])
        if len(pairs) != 1:
            return None
        text = pairs[0][1]
    if text.startswith("mailto:"):
        text = text[len("mailto:") :]
    if not text or "@" not in text or len(text) > 254:
        return None
    if any(ch in text for ch in '<>,;:\\"()[] '):
        return None
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError:
        return None
    normalized = result.normalized
    if has_control_chars(normalized):
        return None
    return normalized
