"""Helpers shared by the send tests: subscriber files, a builder, settings."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from newsletter.compose.issuefile import load_issue, resolve_issue_path
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.compose.render import render_issue
from newsletter.config import Settings, load_settings

HEADER = "email,name,status,source,subscribed_at,confirmed_at,updated_at\n"
SEND_SETTINGS: dict[str, Any] = {
    "sender": "US-Japan Alliance Digest <digest@example.org>",
    "contact": "digest@example.org",
    "public_url": "https://digest.example.org",
    "secret_key": "send-test-secret-key-0123456789-Zk4wP",
}

#: SEND_SETTINGS as a `newsletter` process reads them from its environment
SEND_ENV: dict[str, str] = {
    "NEWSLETTER_FROM": SEND_SETTINGS["sender"],
    "NEWSLETTER_CONTACT": SEND_SETTINGS["contact"],
    "NEWSLETTER_PUBLIC_URL": SEND_SETTINGS["public_url"],
    "NEWSLETTER_SECRET_KEY": SEND_SETTINGS["secret_key"],
}
ROOT = Path(__file__).resolve().parents[2]


def send_env(**extra: str) -> dict[str, str]:
    """The environment of a `newsletter` process a test or bench starts: this one's without
    its NEWSLETTER_, SENDGRID_ and SMTP_ settings, but for its DNS server (a pre-flight's
    questions stay on 127.0.0.1), then SEND_ENV, this checkout's package, and ``extra``."""
    ours = ("NEWSLETTER_", "SENDGRID_", "SMTP_")
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(ours) or k.startswith("NEWSLETTER_DNS_")
    }
    env.update(SEND_ENV, PYTHONPATH=str(ROOT), **extra)
    return env


def address(i: int) -> str:
    return f"reader{i:05d}@example.net"


def write_subscribers(
    path: Path, active: int, *, inactive: dict[str, str] | None = None, names: bool = True
) -> list[str]:
    """``active`` rows reader00000@... plus ``inactive`` {email: status}; returns active emails."""
    path.parent.mkdir(parents=True, exist_ok=True)
    emails = [address(i) for i in range(active)]
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        for i, email in enumerate(emails):
            name = f"Reader {i}" if names else ""
            fh.write(f"{email},{name},active,import,,,\n")
        for email, status in (inactive or {}).items():
            fh.write(f"{email},,{status},import,,,\n")
    return emails


def make_settings(home: Path, **overrides: Any) -> Settings:
    return load_settings(None, home=home, **{**SEND_SETTINGS, **overrides})


def make_builder(settings: Settings, issue: str = "vol-2.19", prefix: str = "") -> MessageBuilder:
    rendered = render_issue(load_issue(resolve_issue_path(issue, settings)), settings)
    return MessageBuilder(rendered, settings, subject_prefix=prefix)


def recipients(n: int) -> list[Recipient]:
    return [Recipient(address(i), f"Reader {i}") for i in range(n)]
