"""SendGrid Inbound Parse: the POSTed form turned back into one raw message.

:func:`raw_from_inbound_parse` takes either mode (raw: the whole message in ``email``;
parsed: the header block and the text and HTML bodies, each in its declared charset)
and gives the bytes of one message, so the webhook goes through the same pipeline as
every source. A retried POST rebuilds the very same bytes.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping

from newsletter.audience.inbound.safety import clean_address
from newsletter.errors import NewsletterError

__all__ = ["raw_from_inbound_parse"]

_DROPPED_HEADERS = re.compile(
    r"^(?:content-type|content-transfer-encoding|mime-version|content-disposition|"
    r"return-path)\s*:",
    re.IGNORECASE,
)


def _field(form: Mapping[str, str | bytes], name: str, charsets: Mapping[str, str]) -> str:
    """A form field as text, honouring the charset SendGrid declared for it.

    A field declared in a legacy charset (ISO-2022-JP, Shift_JIS) may arrive as bytes,
    or as text a web framework decoded as Latin-1: both are turned back into bytes and
    decoded with the declared charset.
    """
    value = form.get(name)
    if value is None:
        return ""
    declared = (charsets.get(name) or "utf-8").strip().lower()
    if isinstance(value, bytes):
        data = value
    else:
        if declared in ("utf-8", "utf8", "us-ascii", "ascii"):
            return value
        try:
            data = value.encode("latin-1")
        except UnicodeEncodeError:
            return value  # already real text
    from newsletter.audience.inbound.text import decode_bytes

    return decode_bytes(data, declared)


def _one_line(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def _envelope_sender(form: Mapping[str, str | bytes]) -> str | None:
    """``"<>"`` for a null envelope sender, ``"<addr>"`` for a clean one, else None."""
    value = form.get("envelope")
    if value is None:
        return None
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    try:
        envelope = json.loads(text)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or "from" not in envelope:
        return None
    sender = envelope.get("from")
    if sender is None or not str(sender).strip() or str(sender).strip() == "<>":
        return "<>"
    address = clean_address(str(sender))
    return f"<{address}>" if address else None


def _header_lines(block: str) -> list[str]:
    """Header fields of a header block (continuation lines joined to their field)."""
    fields: list[str] = []
    for line in block.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and fields:
            fields[-1] += "\r\n" + line
        elif ":" in line:
            fields.append(line)
    return fields


def _b64_part(content_type: str, text: str) -> bytes:
    body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'.encode()
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + body
    )


def raw_from_inbound_parse(form: Mapping[str, str | bytes]) -> bytes:
    """The raw message a SendGrid Inbound Parse POST carries.

    *Raw mode* posts the whole message in ``email``. *Parsed mode* posts ``headers``
    (the header block), ``from``, ``to``, ``subject``, ``text`` and ``html``, with
    ``charsets`` (JSON: each field's charset); the message is rebuilt from the
    original header block (MIME headers dropped) and a fresh UTF-8
    multipart/alternative body. In both modes an ``envelope`` (JSON) with an empty
    ``from`` becomes ``Return-Path: <>``: a null sender, treated as automatic mail.
    Raises NewsletterError when the form holds no message.
    """
    charsets_text = form.get("charsets") or "{}"
    if isinstance(charsets_text, bytes):
        charsets_text = charsets_text.decode("utf-8", errors="replace")
    try:
        loaded = json.loads(charsets_text)
    except ValueError:
        loaded = {}
    charsets = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    return_path = _envelope_sender(form)

    email = form.get("email")
    if email:
        raw = email if isinstance(email, bytes) else email.encode("utf-8", "surrogateescape")
        if return_path is None:
            return raw
        head, sep, body = (
            raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else (raw.partition(b"\n\n"))
        )
        newline = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
        lines = head.split(newline)
        kept: list[bytes] = []
        skipping = False
        for line in lines:
            if line[:1] in (b" ", b"\t") and skipping:
                continue
            skipping = line.lower().startswith(b"return-path:")
            if not skipping:
                kept.append(line)
        return f"Return-Path: {return_path}".encode() + newline + newline.join(kept) + sep + body

    headers = _field(form, "headers", charsets)
    text = _field(form, "text", charsets)
    html = _field(form, "html", charsets)
    if not headers and not form.get("from") and not text and not html:
        raise NewsletterError(
            "inbound parse: the form holds no message (neither 'email' nor 'headers')"
        )
    fields = [f for f in _header_lines(headers) if not _DROPPED_HEADERS.match(f)]
    present = {f.split(":", 1)[0].strip().lower() for f in fields}
    for name in ("from", "to", "subject"):
        value = _one_line(_field(form, name, charsets))
        if name not in present and value:
            fields.append(f"{name.capitalize()}: {value}")
    if return_path is not None:
        fields.insert(0, f"Return-Path: {return_path}")
    head = "".join(f + "\r\n" for f in fields).encode("utf-8", "surrogateescape")
    mime = b"MIME-Version: 1.0\r\n"
    if text and html:
        # derived from the content, so a retried POST rebuilds the very same bytes
        digest = hashlib.sha256(head + text.encode() + html.encode()).hexdigest()[:24]
        boundary = f"=_inbound_parse_{digest}"
        body = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
            + f"--{boundary}\r\n".encode()
            + _b64_part("text/plain", text)
            + f"--{boundary}\r\n".encode()
            + _b64_part("text/html", html)
            + f"--{boundary}--\r\n".encode()
        )
    elif html:
        body = _b64_part("text/html", html)
    else:
        body = _b64_part("text/plain", text)
    return head + mime + body
