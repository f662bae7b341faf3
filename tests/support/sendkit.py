"""Helpers shared by the send tests: subscriber files, a builder, settings."""

from __future__ import annotations

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
