"""Shared fixtures: an isolated newsletter home, clean settings, the golden switch."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.config import Settings, load_settings

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = Path(__file__).resolve().parent / "golden"
#: Settings the golden files are rendered with (so they do not depend on .env).
GOLDEN_SETTINGS = {
    "sender": "US-Japan Alliance Digest <digest@example.org>",
    "contact": "digest@example.org",
    "public_url": "https://digest.example.org",
    "secret_key": "golden-secret-key-0123456789-vQ7xK2",
}
_PREFIXES = ("NEWSLETTER_", "SMTP_", "SENDGRID_")


@pytest.fixture(scope="session")
def _silent_dns() -> Iterator[str]:
    """A UDP port on 127.0.0.1 that never answers: DNS asked by a test that did not start
    its own server (the preflight of an SMTP send) times out here, never leaves the box."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, _silent_dns: str) -> None:
    """No setting from the developer's shell or CI leaks into a test."""
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.setenv("NEWSLETTER_DNS_SERVER", _silent_dns)
    monkeypatch.setenv("NEWSLETTER_DNS_TIMEOUT", "0.2")


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh newsletter home (issues/, templates/, subscribers/) as the working dir."""
    for name in ("issues", "templates", "subscribers"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, tmp_path / name)
    monkeypatch.chdir(tmp_path)
    yield tmp_path


@pytest.fixture
def settings(home: Path) -> Settings:
    return load_settings(None, **GOLDEN_SETTINGS)


def regen_golden() -> bool:
    return os.environ.get("REGEN_GOLDEN") == "1"


CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium driven by Playwright (scripts/test.sh installs it)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(
            f"Chromium not found at {CHROMIUM}: run `bash scripts/test.sh` (it installs it)"
        )
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        instance = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield instance
        finally:
            instance.close()
