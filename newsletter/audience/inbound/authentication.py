"""Whether the receiving side vouches for the From of an inbound message, or says it is forged.

Reads the verdicts others wrote down; nothing is verified here. Two kinds of header
carry them: ``Authentication-Results`` (RFC 8601), written by a receiving MTA that
names itself by its authserv-id, and the SPF and DKIM results SendGrid Inbound Parse
posts, which the web server carries into the rebuilt message as
:data:`INBOUND_SPF_HEADER`, :data:`INBOUND_DKIM_HEADER` and
:data:`INBOUND_ENVELOPE_HEADER`.

A sender can write either kind into their own message. So:

* a *failure* counts wherever it is written (it can only make us more careful):
  :func:`auth_failure`;
* a *pass* counts only from our own boundary (:func:`aligned_pass`): an
  Authentication-Results header whose authserv-id is one we trust
  (``NEWSLETTER_TRUSTED_AUTHSERV_IDS``), or the Inbound Parse headers of a message that
  came through our webhook, which first removes any the sender supplied
  (:func:`strip_untrusted`). A pass counts when its domain is aligned with the From's.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message

__all__ = [
    "INBOUND_DKIM_HEADER",
    "INBOUND_ENVELOPE_HEADER",
    "INBOUND_SPF_HEADER",
    "aligned_pass",
    "auth_failure",
    "strip_untrusted",
]

#: SendGrid Inbound Parse's ``SPF`` and ``dkim`` fields and its envelope sender, carried
#: into the rebuilt message by the web server (newsletter/web/pipeline.py)
INBOUND_SPF_HEADER = "X-Inbound-Parse-SPF"
INBOUND_DKIM_HEADER = "X-Inbound-Parse-DKIM"
INBOUND_ENVELOPE_HEADER = "X-Inbound-Parse-Envelope-From"
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)


def _all_raw(msg: Message, name: str) -> list[str]:
    lname = name.lower()
    return [" ".join(str(v).split()) for k, v in msg.raw_items() if k.lower() == lname]


def auth_failure(msg: Message) -> str | None:
    """Why the receiving side says the From is not authentic, or None.

    Only a failure counts (a header the sender added can only make us more careful):
    ``dmarc=fail``, or ``spf=fail`` together with ``dkim=fail``, in an
    Authentication-Results header; or Inbound Parse's SPF and DKIM both failing.
    """
    for value in _all_raw(msg, "Authentication-Results"):
        results: dict[str, set[str]] = {}
        for method, result in _AUTH_RESULT.findall(value):
            results.setdefault(method.lower(), set()).add(result.lower())
        if "fail" in results.get("dmarc", set()):
            return "Authentication-Results: dmarc=fail"
        if "fail" in results.get("spf", set()) and "fail" in results.get("dkim", set()):
            return "Authentication-Results: spf=fail, dkim=fail"
    spf = " ".join(_all_raw(msg, INBOUND_SPF_HEADER)).lower()
    dkim = " ".join(_all_raw(msg, INBOUND_DKIM_HEADER)).lower()
    if re.search(r"\bfail\b", spf) and re.search(r"\bfail\b", dkim) and "pass" not in dkim:
        return "Inbound Parse: SPF fail, DKIM fail"
    return None


# ------------------------------------------------------------------ trusted passes


def _authserv_id(value: str) -> str:
    """The authserv-id an Authentication-Results value starts with, lowercased."""
    head = value.split(";", 1)[0].strip()
    return head.split()[0].lower() if head else ""


def _aligned(domain: str, from_domain: str) -> bool:
    """Relaxed alignment: the same domain, or one a subdomain of the other."""
    a, b = domain.strip().strip(".").lower(), from_domain.lower()
    return bool(a) and (a == b or a.endswith("." + b) or b.endswith("." + a))


_PROP = re.compile(r"\b(smtp\.mailfrom|header\.d|header\.i|header\.from)\s*=\s*([^\s;]+)", re.I)


def _ar_pass(value: str, from_domain: str) -> str | None:
    """The aligned pass one Authentication-Results value records, or None."""
    body = value.split(";", 1)[1] if ";" in value else ""
    for clause in body.split(";"):
        found = _AUTH_RESULT.search(clause)
        if not found or found.group(2).lower() != "pass":
            continue
        method = found.group(1).lower()
        props = {k.lower(): v.strip("\"'") for k, v in _PROP.findall(clause)}
        if method == "dmarc":
            return "dmarc=pass"
        if method == "spf":
            domain = props.get("smtp.mailfrom", "").rsplit("@", 1)[-1]
            if _aligned(domain, from_domain):
                return f"spf=pass ({domain})"
        if method == "dkim":
            domain = props.get("header.d") or props.get("header.i", "").rsplit("@", 1)[-1]
            if _aligned(domain, from_domain):
                return f"dkim=pass ({domain})"
    return None


def aligned_pass(
    msg: Message, sender: str | None, *, authserv_ids: Iterable[str], inbound_parse: bool
) -> str | None:
    """Which trusted verdict says the From ``sender`` is authentic (SPF or DKIM pass,
    aligned with its domain), or None. ``inbound_parse``: the message came through our
    Inbound Parse webhook, so its ``X-Inbound-Parse-*`` headers are SendGrid's."""
    if sender is None or "@" not in sender:
        return None
    from_domain = sender.rsplit("@", 1)[1].lower()
    trusted = {a.lower() for a in authserv_ids}
    for value in _all_raw(msg, "Authentication-Results"):
        if _authserv_id(value) in trusted:
            verdict = _ar_pass(value, from_domain)
            if verdict:
                return f"{verdict} by {_authserv_id(value)}"
    if not inbound_parse:
        return None
    dkim = " ".join(_all_raw(msg, INBOUND_DKIM_HEADER))
    for domain, result in re.findall(r"@?([\w.-]+)\s*:\s*(\w+)", dkim):
        if result.lower() == "pass" and _aligned(domain, from_domain):
            return f"Inbound Parse: DKIM pass ({domain})"
    spf = " ".join(_all_raw(msg, INBOUND_SPF_HEADER)).lower()
    envelope = " ".join(_all_raw(msg, INBOUND_ENVELOPE_HEADER))
    envelope_domain = envelope.strip(" <>").rsplit("@", 1)[-1] if "@" in envelope else ""
    if re.fullmatch(r"\s*pass\s*", spf) and _aligned(envelope_domain, from_domain):
        return f"Inbound Parse: SPF pass ({envelope_domain})"
    return None


# ------------------------------------------------------------------------ boundary

_VERDICT_HEADER = re.compile(rb"^(x-inbound-parse-[a-z0-9-]*|authentication-results)\s*:", re.I)


def strip_untrusted(raw: bytes, *, authserv_ids: Iterable[str] = ()) -> bytes:
    """``raw`` without the verdict headers a sender may have written: every
    ``X-Inbound-Parse-*``, and every ``Authentication-Results`` whose authserv-id is
    not one of ``authserv_ids``. Only the header block changes; the body is untouched."""
    trusted = {a.lower() for a in authserv_ids}
    if b"\r\n\r\n" in raw and (b"\n\n" not in raw or raw.index(b"\r\n\r\n") < raw.index(b"\n\n")):
        newline = b"\r\n"
    else:
        newline = b"\n"
    head, sep, body = raw.partition(newline + newline)
    if not sep:
        head, body = raw, b""
    fields: list[list[bytes]] = []  # each header: its first line and continuations
    for line in head.split(newline):
        if line[:1] in (b" ", b"\t") and fields:
            fields[-1].append(line)
        else:
            fields.append([line])
    kept: list[bytes] = []
    for lines in fields:
        match = _VERDICT_HEADER.match(lines[0])
        if match:
            name = match.group(1).lower()
            value = b" ".join(lines).split(b":", 1)[1].decode("ascii", "replace")
            if name.startswith(b"x-inbound-parse") or _authserv_id(value) not in trusted:
                continue
        kept.extend(lines)
    return newline.join(kept) + sep + body
