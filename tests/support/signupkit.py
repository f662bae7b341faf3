"""Helpers shared by the signup tests: the inbound corpus with live tokens, the list, the
confirmation outbox.

The corpus (``tests/data/inbound/*.eml``) writes confirm tokens as placeholders,
``{{TOKEN:addr}}``, ``{{EXPIRED:addr}}`` and ``{{TAMPERED:addr}}``; :func:`load` fills
them in, signed with :data:`SECRET` (the golden settings' key) unless told otherwise.
"""

from __future__ import annotations

import re
import time
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from newsletter.tokens import CONFIRM_TTL, make_token
from tests.conftest import GOLDEN_SETTINGS

DATA = Path(__file__).resolve().parent.parent / "data" / "inbound"
SECRET = GOLDEN_SETTINGS["secret_key"]
PLACEHOLDER = re.compile(rb"\{\{(TOKEN|EXPIRED|TAMPERED):([^}]+)\}\}")


def token_for(
    kind: str, email: str, now: float | None = None, *, secret: str = SECRET, age: float = 0
) -> str:
    """What a placeholder stands for at ``now``: TOKEN, minted ``age`` seconds before;
    EXPIRED, eight days old; TAMPERED, another address's payload under this signature."""
    now = time.time() if now is None else now
    if kind == "TOKEN":
        # minted now: the corpus's reply (29) answers the confirmation its request (01)
        # triggers in the same run, and a token older than the row is refused as stale
        return make_token(secret, "confirm", email, ttl=CONFIRM_TTL, now=now - age)
    if kind == "EXPIRED":
        return make_token(secret, "confirm", email, ttl=CONFIRM_TTL, now=now - 8 * 86400)
    signature = make_token(secret, "confirm", email, ttl=CONFIRM_TTL, now=now).split(".")[1]
    other = make_token(secret, "confirm", "mallory@example.net", ttl=CONFIRM_TTL, now=now)
    return other.split(".")[0] + "." + signature


def load(name: str, now: float | None = None, *, secret: str = SECRET, age: float = 0) -> bytes:
    """A corpus file with its token placeholders filled (valid at ``now``, default now)."""
    raw = (DATA / name).read_bytes()
    return PLACEHOLDER.sub(
        lambda m: token_for(m[1].decode(), m[2].decode(), now, secret=secret, age=age).encode(),
        raw,
    )


def corpus() -> list[str]:
    return sorted(p.name for p in DATA.glob("*.eml"))


def seed(settings: Settings, emails: list[str]) -> SubscriberStore:
    """``emails`` added to the list as active."""
    store = SubscriberStore.from_settings(settings)
    for email in emails:
        store.add(email, status="active", source="seed")
    return store


def statuses(settings: Settings) -> dict[str, str]:
    """Every valid row's status, after the consent ledger is folded into the file."""
    store = SubscriberStore.from_settings(settings)
    store.fold()
    return {s.key: s.status for s in store.iter_valid()}


def outbox(settings: Settings) -> list[EmailMessage]:
    """The confirmations mailed so far (``outbox/confirm/``), in file order."""
    folder = settings.outbox_dir / "confirm"
    out = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def confirmation_for(settings: Settings, email: str) -> EmailMessage:
    found = [m for m in outbox(settings) if m["To"].addresses[0].addr_spec.lower() == email]
    assert len(found) == 1, [m["To"] for m in outbox(settings)]
    return found[0]


def token_in(msg: EmailMessage) -> str:
    """The confirm token of a confirmation: its Message-ID carries it (<c.TOKEN@domain>)."""
    match = re.fullmatch(r"<c\.(\S+)@[^@\s]+>", str(msg["Message-ID"]).strip())
    assert match
    return match.group(1)
