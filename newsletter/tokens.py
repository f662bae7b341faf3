"""Signed, expiring tokens for unsubscribe and confirm links.

A token is ``base64url(payload) "." base64url(HMAC-SHA256(secret, purpose "|" payload))``
where payload is ``expiry_unix ":" email``. The purpose ("unsubscribe", "confirm") is in
the MAC, so a token minted for one purpose is refused for another.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from newsletter.errors import TokenError

UNSUBSCRIBE_TTL = 400 * 24 * 3600  # old issues stay unsubscribable for over a year
CONFIRM_TTL = 7 * 24 * 3600


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, purpose: str, payload: bytes) -> bytes:
    return hmac.new(secret.encode(), purpose.encode() + b"|" + payload, hashlib.sha256).digest()


def make_token(secret: str, purpose: str, email: str, *, ttl: int, now: float | None = None) -> str:
    expiry = int((time.time() if now is None else now) + ttl)
    payload = f"{expiry}:{email.strip().lower()}".encode()
    return f"{_b64(payload)}.{_b64(_mac(secret, purpose, payload))}"


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
