"""Replies to the confirmation mail: the confirm tokens they carry, checked.

:func:`token_candidates` finds token-shaped strings anywhere in a message;
:func:`check_tokens` keeps the confirm tokens and says whether one is valid for the
sender (or why not: no secret, a bad signature, another address, expired); a quoted
unsubscribe token is not a confirmation attempt. :func:`confirm_token_minted` says when
a token was made.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Iterable
from dataclasses import dataclass

from newsletter.errors import TokenError
from newsletter.tokens import CONFIRM_REF, CONFIRM_TTL, expand_confirm_ref, read_token

__all__ = [
    "TokenCheck",
    "check_tokens",
    "confirm_token_minted",
    "expand_refs",
    "token_candidates",
]

_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{8,})\.([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """What the confirm tokens in a message say about its sender."""

    valid: str | None  # the email of a valid confirm token naming the sender
    problem: str | None  # why a confirm-shaped token is refused
    minted: float | None = None  # when the valid token was made


def token_candidates(texts: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for text in texts:
        for match in _TOKEN.finditer(text):
            token = match.group(0)
            if token not in seen:
                seen.append(token)
    return seen


def expand_refs(texts: Iterable[str], *, secret: str | None, sender: str) -> tuple[list[str], bool]:
    """The confirm tokens the short references (``NL-...``) in ``texts`` stand for when
    they were minted for ``sender``, and whether any reference was not (someone else's,
    or altered)."""
    tokens: list[str] = []
    stray = False
    for text in texts:
        for match in CONFIRM_REF.finditer(text):
            token = expand_confirm_ref(secret, match.group(0), sender) if secret else None
            if token is None:
                stray = True
            elif token not in tokens:
                tokens.append(token)
    return tokens, stray


def confirm_token_minted(token: str, ttl: int = CONFIRM_TTL) -> float | None:
    """When a confirm token was made (its expiry minus ``ttl``); None if unreadable.

    Only meaningful for a token whose signature has been checked.
    """
    body = token.strip().split(".", 1)[0]
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
        return float(int(payload.split(":", 1)[0]) - ttl)
    except (ValueError, UnicodeError):
        return None


def _looks_like_token(token: str) -> bool:
    body = token.split(".", 1)[0]
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
    except (ValueError, UnicodeError):
        return False
    return re.fullmatch(r"\d{9,12}:[^@\s]+@[^@\s]+", payload) is not None


def check_tokens(
    tokens: list[str], *, secret: str | None, sender: str, now: float
) -> TokenCheck | None:
    shaped = [t for t in tokens if _looks_like_token(t)]
    if not shaped:
        return None
    if secret is None:
        return TokenCheck(None, "carries a confirmation token but no secret key is set")
    problems: list[str] = []
    for token in shaped:
        try:
            email = read_token(secret, token, "confirm", now=0.0)  # signature only
        except TokenError:
            try:  # a quoted unsubscribe link from an issue is not a confirmation attempt
                read_token(secret, token, "unsubscribe", now=0.0)
                continue
            except TokenError:
                problems.append("a confirmation token with an invalid signature (tampered?)")
                continue
        if email.lower() != sender.lower():
            problems.append(f"a confirmation token for {email}, not for the sender {sender}")
            continue
        try:
            read_token(secret, token, "confirm", now=now)
        except TokenError:
            problems.append(f"an expired confirmation token for {email}")
            continue
        return TokenCheck(email, None, confirm_token_minted(token))
    if not problems:
        return None
    return TokenCheck(None, "carries " + problems[0])
