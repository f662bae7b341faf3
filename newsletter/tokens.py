"""Signed, expiring tokens for unsubscribe and confirm links.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(secret, purpose "|" payload))``
where payload is ``expiry_unix ":" email``. The purpose ("unsubscribe", "confirm") is in
the MAC, so a token minted for one purpose is refused for another.

:func:`secret_key_problem` says whether a NEWSLETTER_SECRET_KEY is fit to be that
``secret`` (long enough, not a pattern a person typed); config refuses one that is not.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import itertools
import re
import secrets
import time
from collections.abc import Iterable

from newsletter.errors import TokenError

UNSUBSCRIBE_TTL = 400 * 24 * 3600  # old issues stay unsubscribable for over a year
CONFIRM_TTL = 7 * 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    """Strict: only the canonical unpadded base64url spelling is accepted."""
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError(str(exc)) from exc
    if _b64(data) != text:
        raise ValueError("not the canonical spelling")
    return data


def _mac(secret: str, purpose: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose.encode() + b"|" + payload, hashlib.sha256).digest()


def make_token(secret: str, purpose: str, email: str, *, ttl: int, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + ttl)
    payload = f"{expiry}:{email.strip().lower()}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, purpose, payload))}"


#: base64 to base64url, one C call per token instead of the module's Python wrapper
_URLSAFE = bytes.maketrans(b"+/", b"-_")
_BLOCK = 64  # SHA-256's block size, for the HMAC pads


def make_tokens(
    secret: str, purpose: str, emails: Iterable[str], *, ttl: int, now: float | None = None
) -> list[str]:
    """:func:`make_token` for many addresses at once (one expiry for all): the same
    tokens at a third of the cost per address (a send signs one per reader). The HMAC's
    keyed inner and outer hashes are computed once (RFC 2104) and copied per address."""
    expiry = int((time.time() if now is None else now) + ttl)
    key = secret.encode()
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    inner = hashlib.sha256(bytes(k ^ 0x36 for k in key) + purpose.encode() + b"|")
    outer = hashlib.sha256(bytes(k ^ 0x5C for k in key))
    prefix = f"{expiry}:".encode()
    b64 = binascii.b2a_base64
    tokens = []
    for email in emails:
        payload = prefix + email.strip().lower().encode()
        mac_in = inner.copy()
        mac_in.update(payload)
        mac = outer.copy()
        mac.update(mac_in.digest())
        tokens.append(
            b64(payload, newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")
            + "."
            + b64(mac.digest(), newline=False).translate(_URLSAFE).rstrip(b"=").decode("ascii")
        )
    return tokens


def read_token(secret: str, token: str, purpose: str, *, now: float | None = None) -> str:
    """Return the email a valid token names; raise TokenError if tampered or expired."""
    try:
        body, sig = token.strip().split(".", 1)
        payload = _unb64(body)
        given = _unb64(sig)
    except (ValueError, UnicodeError) as exc:
        raise TokenError("malformed token") from exc
    if not hmac.compare_digest(given, _mac(secret, purpose, payload)):
        raise TokenError("invalid token signature")
    try:
        expiry_text, email = payload.decode().split(":", 1)
        expiry = int(expiry_text)
    except (ValueError, UnicodeError) as exc:
        raise TokenError("malformed token") from exc
    if (time.time() if now is None else now) > expiry:
        raise TokenError("token expired")
    return email


# Signed Message-IDs -------------------------------------------------------------------
# Our Message-IDs are <unique.tag@domain> where tag = HMAC(secret, unique|recipient): a
# delivery report that quotes one can be checked against the address it names, without
# storing anything, and a forged report (which cannot know a real Message-ID sent to
# that person) suppresses nobody.
_MSGID = re.compile(r"^<?([A-Za-z0-9_-]{8,64})\.([A-Za-z0-9_-]{22})@([^<>@\s]+)>?$")
_CONFIRM_MSGID = re.compile(r"^<?c\.([A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{43})@([^<>@\s]+)>?$")


def message_id_tag(secret: str, unique: str, email: str) -> str:
    mac = hmac.new(
        secret.encode(),
        b"msgid|" + unique.encode() + b"|" + email.strip().lower().encode(),
        hashlib.sha256,
    ).digest()
    return _b64(mac[:16])


def make_message_id(secret: str, email: str, domain: str) -> str:
    unique = _b64(secrets.token_bytes(12))
    return f"<{unique}.{message_id_tag(secret, unique, email)}@{domain}>"


def verify_message_id(secret: str, message_id: str, email: str) -> bool:
    """True when ``message_id`` is one we minted for ``email`` (any of our domains)."""
    found = _MSGID.match(message_id.strip())
    if not found:
        # a confirmation's Message-ID carries its confirm token (<c.TOKEN@domain>)
        confirm = _CONFIRM_MSGID.match(message_id.strip())
        if not confirm:
            return False
        try:  # signature only: a bounce may come back after the token expired
            named = read_token(secret, confirm.group(1), "confirm", now=0.0)
        except TokenError:
            return False
        return named.lower() == email.strip().lower()
    unique, tag, _domain = found.groups()
    return hmac.compare_digest(tag, message_id_tag(secret, unique, email))


# VERP bounce addresses ----------------------------------------------------------------
# Each SMTP message's envelope sender is ``<local><sep><token>@<domain>`` where token is
# ``<subscriber id>-<issue tag>-<mac>``, all lowercase (some MTAs fold the local part's
# case) and short enough for a 64-octet local part: a report returned to that address
# names the reader and the issue even when it quotes nothing of the mail that failed.
_VERP_TOKEN = re.compile(r"([0-9a-f]{16})-([0-9a-f]{6})-([a-z2-7]{16})")


def subscriber_id(email: str) -> str:
    """A stable, non-reversible id of an address (also SendGrid's ``custom_args``)."""
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()[:16]


def issue_tag(issue: str) -> str:
    """Six hex digits naming an issue (its slug) inside a VERP token."""
    return hashlib.sha256(issue.encode()).hexdigest()[:6]


def _verp_mac(secret: str, sid: str, tag: str) -> str:
    mac = hmac.new(secret.encode(), f"verp|{sid}|{tag}".encode(), hashlib.sha256).digest()
    return base64.b32encode(mac[:10]).decode("ascii").lower()


def make_bounce_address(
    secret: str, bounce_address: str, email: str, issue: str, *, separator: str = "+"
) -> str:
    """``bounce+<token>@domain`` for the message to ``email`` of ``issue``."""
    local, domain = bounce_address.rsplit("@", 1)
    sid, tag = subscriber_id(email), issue_tag(issue)
    return f"{local}{separator}{sid}-{tag}-{_verp_mac(secret, sid, tag)}@{domain}"


def read_bounce_address(
    secret: str, address: str, bounce_address: str, *, separator: str = "+"
) -> tuple[str, str] | None:
    """``(subscriber id, issue tag)`` of a VERP address we signed, else None."""
    local, _, domain = address.strip().strip("<>").rpartition("@")
    base_local, _, base_domain = bounce_address.rpartition("@")
    if domain.lower() != base_domain.lower():
        return None
    prefix = f"{base_local}{separator}".lower()
    if not local.lower().startswith(prefix):
        return None
    found = _VERP_TOKEN.fullmatch(local[len(prefix) :].lower())
    if not found:
        return None
    sid, tag, mac = found.groups()
    if not hmac.compare_digest(mac, _verp_mac(secret, sid, tag)):
        return None
    return sid, tag


#: The signing key's floor: 256 bits, the size of the HMAC-SHA256 key it becomes.
MIN_SECRET_BYTES = 32
# .env is read, not run: "$(python -c ...)" there would be the key itself, letter for letter.
SECRET_KEY_HINT = (
    "make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' and "
    "paste the printed text into .env as NEWSLETTER_SECRET_KEY=<that text> "
    "(.env is not run by a shell: $(...) there would become the key itself)"
)


def secret_key_problem(value: str) -> str | None:
    """Why ``value`` is not fit to sign links (None if it is): too short or guessable.

    "Guessable" is what a person types, not what a generator prints: a shell command
    pasted in, few distinct characters, a short pattern repeated, a keyboard run.
    """
    if "$(" in value or value.startswith("`"):
        return "looks like a shell command: .env is not run, so that text itself would be the key"
    size = len(value.encode("utf-8"))
    if size < MIN_SECRET_BYTES:
        return f"is too short ({size} bytes): use at least {MIN_SECRET_BYTES} random bytes"
    if len(set(value)) < 8:
        return f"has too little entropy (only {len(set(value))} different characters)"
    for period in range(1, len(value) // 3 + 1):
        if all(value[i] == value[i % period] for i in range(len(value))):
            return f"has too little entropy (a {period}-character pattern repeated)"
    steps = sum(1 for a, b in itertools.pairwise(value) if abs(ord(b) - ord(a)) == 1)
    if steps > len(value) // 2:
        return "has too little entropy (mostly a run like 'abcd' or '1234')"
    return None


# Short confirmation references --------------------------------------------------------
# The confirmation mail's body shows ``NL-<expiry base36>-<12 base32 of a MAC>`` instead
# of the ~100-character token (which spelled the address in base64 and looked like
# phishing). A reply quoting it is checked against its sender: the sender's address and
# the expiry rebuild the full confirm token, so expiry and the rest are checked as before.
CONFIRM_REF = re.compile(r"(?<![A-Za-z0-9])NL-([0-9A-Za-z]{5,8})-([A-Za-z2-7]{12})(?![A-Za-z0-9])")


def _ref_mac(secret: str, payload: bytes) -> str:
    mac = hmac.new(secret.encode(), b"confirm-ref|" + payload, hashlib.sha256).digest()
    return base64.b32encode(mac).decode("ascii")[:12]


def _base36(n: int) -> str:
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"
    out = ""
    while n:
        n, r = divmod(n, 36)
        out = digits[r] + out
    return out or "0"


def confirm_ref(secret: str, token: str) -> str | None:
    """The short reference of a confirm token (None if the token is malformed)."""
    try:
        payload = _unb64(token.strip().split(".", 1)[0])
        expiry = int(payload.decode().split(":", 1)[0])
    except (ValueError, UnicodeError):
        return None
    return f"NL-{_base36(expiry)}-{_ref_mac(secret, payload)}"


def expand_confirm_ref(secret: str, ref: str, sender: str) -> str | None:
    """The full confirm token a reference stands for when ``sender`` is whom it was
    minted for; None when it names someone else (or was altered)."""
    found = CONFIRM_REF.fullmatch(ref.strip())
    if not found:
        return None
    expiry = int(found.group(1), 36)
    payload = f"{expiry}:{sender.strip().lower()}".encode()
    if not hmac.compare_digest(found.group(2).upper(), _ref_mac(secret, payload)):
        return None
    return f"{_b64(payload)}.{_b64(_mac(secret, 'confirm', payload))}"
