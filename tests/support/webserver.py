"""The real web app under uvicorn, in a thread, on 127.0.0.1 and a free port; and the
helpers the web tests share (settings, signed webhook posts, the outbox, the list's
rows, the signup form, a stand-in).

    with running(create_app(settings)) as base_url:
        httpx.get(base_url + "/subscribe")

:func:`web_server` is the same thing as a pytest fixture factory, for modules that
want ``base_url = web_server(app)`` with cleanup at the end of the test.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from cryptography.hazmat.primitives.asymmetric import ec
from starlette.types import ASGIApp

from newsletter.audience.events import SIGNATURE_HEADER, TIMESTAMP_HEADER
from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings, load_settings
from newsletter.tokens import CONFIRM_TTL, UNSUBSCRIBE_TTL, make_token
from newsletter.web.server import ConnectionLimits, server_config
from tests.support.eventkeys import sign


@contextmanager
def running(
    app: ASGIApp,
    *,
    startup_timeout: float = 10.0,
    tls: tuple[Path, Path] | None = None,
    limits: ConnectionLimits | None = None,
    trusted_proxies: str = "",
    lifespan: str = "off",
    parser: str = "httptools",
) -> Iterator[str]:
    """Serve ``app`` until the block ends; yields ``http://127.0.0.1:<port>``, or
    ``https://localhost:<port>`` with ``tls`` = (certificate, key) files.

    The server is configured as ``newsletter serve`` configures it (web/server.py).
    ``lifespan="on"`` also runs the app's start-up and shutdown (the background fold
    of the subscriber ledger); the web tests leave it off unless they test that.
    ``parser`` is the HTTP parser under the guards: "httptools" (as served) or "h11".
    """
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = server_config(
        app,
        limits=limits,
        trusted_proxies=trusted_proxies,
        parser=parser,
        lifespan=lifespan,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=2,
        ssl_certfile=str(tls[0]) if tls else None,
        ssl_keyfile=str(tls[1]) if tls else None,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + startup_timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the web app did not start")
        time.sleep(0.01)
    try:
        yield f"https://localhost:{port}" if tls else f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def web_server() -> Iterator[Callable[[ASGIApp], str]]:
    """``web_server(app) -> base_url``; every server started is stopped after the test."""
    with ExitStack() as stack:
        yield lambda app: stack.enter_context(running(app))


# Helpers for the web tests --------------------------------------------------
INBOUND_SECRET = "inbound-path-secret-123"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"content-type": "application/x-www-form-urlencoded"}

#: ``serve(settings=..., **create_app kwargs) -> httpx.Client``: the web tests' fixture.
Serve = Callable[..., httpx.Client]


def web_settings(public_key: str | None, **extra: Any) -> Settings:
    from tests.conftest import GOLDEN_SETTINGS

    values: dict[str, Any] = {
        **GOLDEN_SETTINGS,
        "inbound_secret": INBOUND_SECRET,
        "sendgrid_webhook_public_key": public_key,
    }
    values.update(extra)
    return load_settings(None, **values)


def unsubscribe_path(settings: Settings, email: str, *, now: float | None = None) -> str:
    return "/u/" + make_token(
        settings.require_secret(), "unsubscribe", email, ttl=UNSUBSCRIBE_TTL, now=now
    )


def confirm_path(settings: Settings, email: str, *, now: float | None = None) -> str:
    return "/confirm/" + make_token(
        settings.require_secret(), "confirm", email, ttl=CONFIRM_TTL, now=now
    )


def signed_post(
    client: httpx.Client,
    private: ec.EllipticCurvePrivateKey,
    events: list[dict[str, Any]],
    *,
    timestamp: int | None = None,
    tamper: bool = False,
) -> httpx.Response:
    body = json.dumps(events).encode()
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    signature = sign(private, body, stamp)
    if tamper:
        flipped = bytearray(body)
        flipped[len(body) // 2] ^= 0x01
        body = bytes(flipped)
    headers = {
        "content-type": "application/json",
        SIGNATURE_HEADER: signature,
        TIMESTAMP_HEADER: stamp,
    }
    return client.post("/webhooks/sendgrid", content=body, headers=headers)


def outbox_messages(home: Path) -> list[tuple[str, str]]:
    """``(To, text body)`` of every .eml written to the outbox (confirmations included)."""
    found = []
    for path in sorted((home / "outbox").rglob("*.eml")):
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        part = msg.get_body(preferencelist=("plain",))
        body = part.get_content() if part is not None else ""
        found.append((str(msg["To"]), body))
    return found


def wait_for_confirmation(home: Path, email: str, *, timeout: float = 10.0) -> str:
    """The confirm link (path only) mailed to ``email``; waits for the background send."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for to, body in outbox_messages(home):
            if email.lower() in to.lower():
                match = re.search(r"https?://[^/\s]+(/confirm/[A-Za-z0-9_.%-]+)", body)
                assert match, f"no confirm link in the confirmation to {email}"
                return match.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no confirmation was sent to {email} within {timeout}s")


def confirmations_to(home: Path, email: str) -> int:
    return sum(1 for to, _ in outbox_messages(home) if email.lower() in to.lower())


def status_of(store: SubscriberStore, email: str) -> str | None:
    sub = store.get(email)
    return None if sub is None else sub.status


def fold_list(home: Path) -> None:
    """Fold the consent ledger into the CSV now (what ``serve`` does after a quiet moment)."""
    SubscriberStore(
        home / "subscribers" / "subscribers.csv",
        backup_dir=home / ".newsletter" / "backups",
        state_dir=home / ".newsletter",
    ).fold()


def csv_row(home: Path, email: str) -> str:
    """The address's line of the CSV, after the ledger is folded into it."""
    fold_list(home)
    text = (home / "subscribers" / "subscribers.csv").read_text(encoding="utf-8")
    return next(line for line in text.splitlines() if line.lower().startswith(email.lower()))


def subscribe_form(client: httpx.Client) -> str:
    """Open the form (sets the CSRF cookie in the client) and return its CSRF token."""
    page = client.get("/subscribe")
    assert page.status_code == 200
    marker = 'name="csrf" value="'
    start = page.text.index(marker) + len(marker)
    return page.text[start : page.text.index('"', start)]


def post_signup(client: httpx.Client, csrf: str, email: str, **fields: str) -> httpx.Response:
    return client.post("/subscribe", data={"csrf": csrf, "email": email, **fields})


@dataclass
class Recorder:
    """A stand-in pipeline step that records its calls and can be told to fail."""

    calls: list[tuple[Any, ...]] = field(default_factory=list)
    fail: Exception | None = None

    def process_raw_message(
        self, raw: bytes, settings: Settings, *, source: str, store: Any = None
    ) -> object:
        self.calls.append((raw, source))
        if self.fail is not None:
            raise self.fail
        return None
