"""`newsletter serve`: every endpoint through a real uvicorn server on 127.0.0.1."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from newsletter.audience.events import EventLedger
from newsletter.audience.subscribers import SubscriberStore
from newsletter.cli.app import app as cli_app
from newsletter.config import Settings
from newsletter.errors import ConfigError, LockTimeoutError
from newsletter.web import Limits, Pipeline, RedactTokens, create_app, redact_path
from newsletter.web.app import clean_name
from tests.support.webserver import (
    FORM,
    INBOUND_SECRET,
    ONE_CLICK,
    Recorder,
    confirm_path,
    confirmations_to,
    keypair,
    running,
    signed_post,
    unsubscribe_path,
    wait_for_confirmation,
    web_settings,
)

Serve = Callable[..., httpx.Client]


@pytest.fixture
def keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    return keypair()


@pytest.fixture
def wsettings(home: Path, keys: tuple[ec.EllipticCurvePrivateKey, str]) -> Settings:
    return web_settings(keys[1])


@pytest.fixture
def store(wsettings: Settings) -> SubscriberStore:
    return SubscriberStore.from_settings(wsettings)


@pytest.fixture
def serve(wsettings: Settings) -> Iterator[Serve]:
    """``serve(settings=..., **create_app kwargs) -> httpx.Client`` on a live server."""
    clients: list[tuple[httpx.Client, Any]] = []

    def start(settings: Settings | None = None, **kwargs: Any) -> httpx.Client:
        ctx = running(create_app(settings or wsettings, **kwargs))
        base = ctx.__enter__()
        client = httpx.Client(base_url=base, timeout=30, follow_redirects=False)
        clients.append((client, ctx))
        return client

    yield start
    for client, ctx in reversed(clients):
        client.close()
        ctx.__exit__(None, None, None)


def status_of(store: SubscriberStore, email: str) -> str | None:
    sub = store.get(email)
    return None if sub is None else sub.status


def csv_row(home: Path, email: str) -> str:
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


# RFC 8058 one-click ------------------------------------------------------------------
def test_one_click_post_unsubscribes_at_once(
    serve: Serve, wsettings: Settings, store: SubscriberStore, home: Path
) -> None:
    client = serve()
    assert status_of(store, "alice@example.org") == "active"
    response = client.post(
        unsubscribe_path(wsettings, "alice@example.org"), content=ONE_CLICK, headers=FORM
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    assert "set-cookie" not in response.headers and "location" not in response.headers
    assert response.text == "You have been unsubscribed.\n"
    assert ",unsubscribed," in csv_row(home, "alice@example.org")
    assert "one-click unsubscribe (RFC 8058)" in csv_row(home, "alice@example.org")
    # a provider posting twice changes nothing more
    before = (home / "subscribers" / "subscribers.csv").read_bytes()
    again = client.post(
        unsubscribe_path(wsettings, "alice@example.org"), content=ONE_CLICK, headers=FORM
    )
    assert again.status_code == 200
    assert (home / "subscribers" / "subscribers.csv").read_bytes() == before


def test_one_click_multipart_and_unknown_address(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    response = client.post(
        unsubscribe_path(wsettings, "bob.brown@example.org"),
        files={"List-Unsubscribe": (None, "One-Click")},
    )
    assert response.status_code == 200
    stranger = client.post(
        unsubscribe_path(wsettings, "stranger@example.net"), content=ONE_CLICK, headers=FORM
    )
    assert stranger.status_code == 200
    assert stranger.text == "This address is not on the list.\n"


def test_one_click_does_not_weaken_a_complaint(
    serve: Serve, wsettings: Settings, store: SubscriberStore
) -> None:
    store.set_status("alice@example.org", "complained")
    client = serve()
    client.post(unsubscribe_path(wsettings, "alice@example.org"), content=ONE_CLICK, headers=FORM)
    assert status_of(store, "alice@example.org") == "complained"


def test_one_click_with_bad_token_is_400_text(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    path = unsubscribe_path(wsettings, "alice@example.org")
    response = client.post(path[:-3] + "AAA", content=ONE_CLICK, headers=FORM)
    assert response.status_code == 400
    assert response.headers["content-type"].startswith("text/plain")
    assert "digest@example.org" in response.text


# Unsubscribe page ----------------------------------------------------------------------
def test_get_shows_a_button_and_changes_nothing(
    serve: Serve, wsettings: Settings, store: SubscriberStore, home: Path
) -> None:
    client = serve()
    before = (home / "subscribers" / "subscribers.csv").read_bytes()
    path = unsubscribe_path(wsettings, "alice@example.org")
    for _ in range(3):  # link scanners prefetch, some more than once
        page = client.get(path)
        assert page.status_code == 200
        assert client.head(path).status_code == 200
    assert '<form class="form" method="post">' in page.text
    assert 'name="action" value="unsubscribe"' in page.text
    assert "alice@example.org" in page.text
    assert (home / "subscribers" / "subscribers.csv").read_bytes() == before


def test_button_unsubscribes_then_offers_a_confirmed_resubscribe(
    serve: Serve, wsettings: Settings, store: SubscriberStore, home: Path
) -> None:
    client = serve()
    path = unsubscribe_path(wsettings, "alice@example.org")
    done = client.post(
        path, data={"action": "unsubscribe"}, headers={"sec-fetch-site": "same-origin"}
    )
    assert done.status_code == 200
    assert "You are unsubscribed" in done.text
    assert 'value="resubscribe"' in done.text
    assert status_of(store, "alice@example.org") == "unsubscribed"
    # the page for an unsubscribed address says so and offers to come back
    assert "already unsubscribed" in client.get(path).text
    again = client.post(path, data={"action": "resubscribe"}, headers={"origin": "null"})
    assert again.status_code == 200
    assert "Check your inbox" in again.text
    # never a direct activation: a confirmation goes out and the row stays unsubscribed
    # until it is confirmed (review finding: it used to become "pending")
    assert status_of(store, "alice@example.org") == "unsubscribed"
    assert confirmations_to(home, "alice@example.org") == 1


def test_cross_site_button_posts_are_refused(
    serve: Serve, wsettings: Settings, store: SubscriberStore
) -> None:
    client = serve()
    path = unsubscribe_path(wsettings, "alice@example.org")
    for headers in ({"sec-fetch-site": "cross-site"}, {"origin": "https://evil.example"}):
        refused = client.post(path, data={"action": "unsubscribe"}, headers=headers)
        assert refused.status_code == 403
        assert "Request refused" in refused.text
        carol = confirm_path(wsettings, "carol@example.com")
        assert client.post(carol, headers=headers).status_code == 403
    assert status_of(store, "alice@example.org") == "active"
    assert status_of(store, "carol@example.com") == "pending"
    # the RFC 8058 post is exempt: mail providers post it from their own servers
    one_click = client.post(
        path, content=ONE_CLICK, headers={**FORM, "origin": "https://mail.provider.example"}
    )
    assert one_click.status_code == 200
    assert status_of(store, "alice@example.org") == "unsubscribed"


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("kind", ["tampered", "expired", "wrong-purpose", "garbage"])
def test_bad_unsubscribe_links_get_a_friendly_400(
    serve: Serve, wsettings: Settings, store: SubscriberStore, method: str, kind: str
) -> None:
    client = serve()
    good = unsubscribe_path(wsettings, "alice@example.org")
    path = {
        "tampered": good[:-2] + ("A" if good[-2] != "A" else "B") + good[-1],
        "expired": unsubscribe_path(wsettings, "alice@example.org", now=time.time() - 500 * 86400),
        "wrong-purpose": "/u/" + confirm_path(wsettings, "alice@example.org").split("/")[-1],
        "garbage": "/u/not-a-token",
    }[kind]
    response = client.request(
        method, path, data={"action": "unsubscribe"} if method == "POST" else None
    )
    assert response.status_code == 400
    assert "This link does not work" in response.text
    assert 'href="mailto:digest@example.org?subject=unsubscribe"' in response.text
    assert status_of(store, "alice@example.org") == "active"


def test_valid_token_for_an_unknown_address(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    page = client.get(unsubscribe_path(wsettings, "stranger@example.net"))
    assert page.status_code == 200
    assert "You are not on the list" in page.text


# Confirm -------------------------------------------------------------------------------
def test_confirm_link_needs_the_button(
    serve: Serve, wsettings: Settings, store: SubscriberStore
) -> None:
    client = serve()
    path = confirm_path(wsettings, "carol@example.com")
    page = client.get(path)
    assert page.status_code == 200
    assert "Confirm subscription</button>" in page.text
    assert status_of(store, "carol@example.com") == "pending"
    done = client.post(path)
    assert done.status_code == 200
    assert "You are subscribed" in done.text
    assert status_of(store, "carol@example.com") == "active"
    assert client.post(path).status_code == 200  # idempotent


@pytest.mark.parametrize("method", ["GET", "POST"])
def test_bad_confirm_links_get_a_friendly_400(
    serve: Serve, wsettings: Settings, store: SubscriberStore, method: str
) -> None:
    client = serve()
    expired = confirm_path(wsettings, "carol@example.com", now=time.time() - 8 * 86400)
    wrong = "/confirm/" + unsubscribe_path(wsettings, "carol@example.com").split("/")[-1]
    for path in (expired, wrong, "/confirm/x.y"):
        response = client.request(method, path)
        assert response.status_code == 400
        assert "Confirmation links work for seven days" in response.text
        assert 'href="/subscribe"' in response.text
    assert status_of(store, "carol@example.com") == "pending"


def test_confirm_of_an_unsubscribed_address_is_a_friendly_error(
    serve: Serve, wsettings: Settings, store: SubscriberStore
) -> None:
    # the link was mailed before the unsubscribe (a link minted after it is a fresh
    # request by the address itself, and confirms: see the test below)
    link = confirm_path(wsettings, "carol@example.com", now=time.time() - 60)
    store.set_status("carol@example.com", "unsubscribed")
    client = serve()
    response = client.post(link)
    assert response.status_code == 409
    assert "This confirmation can no longer be used" in response.text
    assert status_of(store, "carol@example.com") == "unsubscribed"


def test_a_stranger_cannot_undo_an_unsubscribe(
    serve: Serve, wsettings: Settings, store: SubscriberStore, home: Path
) -> None:
    """Review finding 1: the signup form for an unsubscribed address leaves it
    unsubscribed; a confirm link minted before the unsubscribe is refused (409); the
    fresh link mailed to the address is the only way back."""
    old = confirm_path(wsettings, "carol@example.com", now=time.time() - 3 * 86400)
    before = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 86400))
    SubscriberStore(wsettings.subscribers_file, clock=lambda: before).set_status(
        "carol@example.com", "unsubscribed"
    )
    client = serve()
    csrf = subscribe_form(client)
    assert post_signup(client, csrf, "carol@example.com").status_code == 200
    link = wait_for_confirmation(home, "carol@example.com")
    assert status_of(store, "carol@example.com") == "unsubscribed"
    stale = client.post(old)
    assert stale.status_code == 409
    assert "This confirmation can no longer be used" in stale.text
    assert status_of(store, "carol@example.com") == "unsubscribed"
    assert client.post(link).status_code == 200
    assert status_of(store, "carol@example.com") == "active"


# Signup form ---------------------------------------------------------------------------
def test_signup_form_page(serve: Serve) -> None:
    client = serve()
    for path in ("/", "/subscribe"):
        page = client.get(path)
        assert page.status_code == 200
        assert '<label for="email">Email address</label>' in page.text
        assert 'action="/subscribe"' in page.text
    cookie = page.headers["set-cookie"].lower()
    assert "samesite=strict" in cookie and "httponly" in cookie and "path=/" in cookie
    headers = page.headers
    assert "default-src 'self'" in headers["content-security-policy"]
    assert "style-src 'self'" in headers["content-security-policy"]
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["cache-control"] == "no-store"
    assert "server" not in headers


def test_signup_sends_a_confirmation(serve: Serve, store: SubscriberStore, home: Path) -> None:
    client = serve()
    csrf = subscribe_form(client)
    response = post_signup(client, csrf, "New.Person@Example.net", name="山田 太郎\r\nBcc: x")
    assert response.status_code == 200
    assert "Check your inbox" in response.text
    link = wait_for_confirmation(home, "new.person@example.net")
    sub = store.get("new.person@example.net")
    assert sub is not None and sub.status == "pending" and sub.source == "web"
    assert sub.email == "New.Person@example.net"
    assert sub.name == "山田 太郎 Bcc: x"
    # the link in the email confirms
    assert client.post(link).status_code == 200
    assert status_of(store, "new.person@example.net") == "active"


def test_signup_csrf_is_required(serve: Serve, store: SubscriberStore, home: Path) -> None:
    client = serve()
    bare = client.post("/subscribe", data={"email": "x@example.net"})
    assert bare.status_code == 403 and "This form has expired" in bare.text
    csrf = subscribe_form(client)
    # the token without the cookie (a cross-site post under SameSite=Strict)
    other = httpx.Client(base_url=str(client.base_url))
    assert post_signup(other, csrf, "x@example.net").status_code == 403
    # the cookie of one visitor with the token of another
    subscribe_form(other)
    assert post_signup(other, csrf, "x@example.net").status_code == 403
    # a forged token
    assert post_signup(client, "1." + "0" * 64, "x@example.net").status_code == 403
    other.close()
    time.sleep(0.3)
    assert store.get("x@example.net") is None
    assert confirmations_to(home, "x@example.net") == 0


def test_signup_answer_is_the_same_whoever_you_are(
    serve: Serve, store: SubscriberStore, home: Path
) -> None:
    store.set_status("bob.brown@example.org", "complained")
    client = serve()
    csrf = subscribe_form(client)
    bodies = {}
    for email in (
        "alice@example.org",  # active
        "carol@example.com",  # pending
        "bob.brown@example.org",  # complained
        "nobody.yet@example.net",  # unknown
    ):
        response = post_signup(client, csrf, email)
        assert response.status_code == 200
        assert "set-cookie" not in response.headers
        bodies[email] = response.content
    assert len(set(bodies.values())) == 1, "the answer reveals who is on the list"
    wait_for_confirmation(home, "nobody.yet@example.net")
    wait_for_confirmation(home, "carol@example.com")
    time.sleep(0.2)
    assert status_of(store, "alice@example.org") == "active"
    assert status_of(store, "bob.brown@example.org") == "complained"
    assert confirmations_to(home, "alice@example.org") == 0


def test_signup_invalid_address_redisplays_the_form(serve: Serve, home: Path) -> None:
    client = serve()
    csrf = subscribe_form(client)
    for typed in ("not-an-address", "a@b", "", "x" * 300 + "@example.org", "<script>@x.org"):
        response = post_signup(client, csrf, typed, name="Ann")
        assert response.status_code == 400
        assert "Please enter a complete email address" in response.text
        assert 'aria-invalid="true"' in response.text
        assert 'value="Ann"' in response.text
        assert "<script>" not in response.text
    assert not (home / "outbox").exists()


def test_signup_honeypot_looks_like_success(serve: Serve, home: Path) -> None:
    client = serve()
    csrf = subscribe_form(client)
    normal = post_signup(client, csrf, "human@example.net")
    bot = post_signup(client, csrf, "bot@example.net", website="http://spam.example")
    assert bot.status_code == 200 and bot.content == normal.content
    wait_for_confirmation(home, "human@example.net")
    time.sleep(0.2)
    assert confirmations_to(home, "bot@example.net") == 0


def test_signup_rate_limits(serve: Serve, home: Path, store: SubscriberStore) -> None:
    client = serve(limits=Limits(per_ip=(4, 600), per_address=(1, 3600)))
    csrf = subscribe_form(client)
    first = post_signup(client, csrf, "limited@example.net")
    second = post_signup(client, csrf, "limited@example.net")  # per address: same answer
    assert first.status_code == second.status_code == 200
    assert first.content == second.content
    post_signup(client, csrf, "other@example.net")
    post_signup(client, csrf, "third@example.net")
    blocked = post_signup(client, csrf, "fourth@example.net")
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert "Too many attempts" in blocked.text
    wait_for_confirmation(home, "third@example.net")
    time.sleep(0.2)
    assert confirmations_to(home, "limited@example.net") == 1
    assert store.get("fourth@example.net") is None


def test_form_bodies_are_limited(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    big = b"email=" + b"a" * (70 * 1024)
    assert client.post("/subscribe", content=big, headers=FORM).status_code == 413
    path = unsubscribe_path(wsettings, "alice@example.org")
    assert client.post(path, content=big, headers=FORM).status_code == 413


# SendGrid Event Webhook ------------------------------------------------------------------
EVENTS: list[dict[str, Any]] = [
    {"email": "alice@example.org", "event": "bounce", "type": "bounce", "sg_event_id": "e-1"},
    {"email": "bob.brown@example.org", "event": "spamreport", "sg_event_id": "e-2"},
    {"email": "hanako.yamada@example.com", "event": "unsubscribe", "sg_event_id": "e-3"},
    {"email": "carol@example.com", "event": "delivered", "sg_event_id": "e-4"},
    {"email": "carol@example.com", "event": "bounce", "type": "blocked", "sg_event_id": "e-5"},
]


def test_event_webhook_applies_signed_events(
    serve: Serve,
    keys: tuple[ec.EllipticCurvePrivateKey, str],
    store: SubscriberStore,
    wsettings: Settings,
) -> None:
    client = serve()
    response = signed_post(client, keys[0], EVENTS)
    assert response.status_code == 200, response.text
    assert status_of(store, "alice@example.org") == "bounced"
    assert status_of(store, "bob.brown@example.org") == "complained"
    assert status_of(store, "hanako.yamada@example.com") == "unsubscribed"
    assert status_of(store, "carol@example.com") == "pending"
    assert EventLedger.in_state_dir(wsettings.state_dir).count() == 5
    assert (wsettings.state_dir / "webhooks.sqlite3").exists()


@pytest.mark.parametrize("attack", ["flipped-byte", "wrong-key", "old-timestamp", "unsigned"])
def test_event_webhook_refuses_what_does_not_verify(
    serve: Serve,
    keys: tuple[ec.EllipticCurvePrivateKey, str],
    store: SubscriberStore,
    home: Path,
    attack: str,
) -> None:
    client = serve()
    before = (home / "subscribers" / "subscribers.csv").read_bytes()
    if attack == "flipped-byte":
        response = signed_post(client, keys[0], EVENTS, tamper=True)
    elif attack == "wrong-key":
        response = signed_post(client, keypair()[0], EVENTS)
    elif attack == "old-timestamp":
        response = signed_post(client, keys[0], EVENTS, timestamp=int(time.time()) - 3600)
    else:
        response = client.post("/webhooks/sendgrid", content=json.dumps(EVENTS))
    assert response.status_code == 403
    assert (home / "subscribers" / "subscribers.csv").read_bytes() == before


def test_event_webhook_applies_a_duplicate_once(
    serve: Serve, keys: tuple[ec.EllipticCurvePrivateKey, str], store: SubscriberStore
) -> None:
    client = serve()
    batch = [EVENTS[0]]
    assert signed_post(client, keys[0], batch).status_code == 200
    assert status_of(store, "alice@example.org") == "bounced"
    store.set_status("alice@example.org", "active", note="admin: mailbox fixed")
    retried = signed_post(client, keys[0], batch)  # SendGrid's retry of the same event
    assert retried.status_code == 200
    assert status_of(store, "alice@example.org") == "active"


def test_event_webhook_bad_json_and_busy_store(
    serve: Serve,
    keys: tuple[ec.EllipticCurvePrivateKey, str],
    store: SubscriberStore,
    wsettings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = serve()
    import base64

    from cryptography.hazmat.primitives import hashes

    stamp = str(int(time.time()))
    body = b'{"not": "a list"}'
    sig = base64.b64encode(keys[0].sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    response = client.post(
        "/webhooks/sendgrid",
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": sig.decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )
    assert response.status_code == 400

    def locked(*args: object, **kwargs: object) -> bool:
        raise LockTimeoutError("subscribers.csv.lock: held")

    with monkeypatch.context() as patch:
        patch.setattr(SubscriberStore, "apply", locked)
        assert signed_post(client, keys[0], [EVENTS[0]]).status_code == 503
    # nothing was recorded, so SendGrid's retry is applied
    assert signed_post(client, keys[0], [EVENTS[0]]).status_code == 200
    assert status_of(store, "alice@example.org") == "bounced"


def test_endpoints_are_disabled_without_their_settings(serve: Serve, home: Path) -> None:
    client = serve(web_settings(None, inbound_secret=None))
    assert client.post("/webhooks/sendgrid", content=b"[]").status_code == 404
    response = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, "x")})
    assert response.status_code == 404


# SendGrid Inbound Parse ------------------------------------------------------------------
RAW = (
    b"From: Dana <dana@example.net>\r\nTo: digest@example.org\r\n"
    b"Subject: subscribe\r\nMessage-ID: <abc@example.net>\r\n\r\nPlease add me.\r\n"
)


def test_inbound_parse_secret_path(serve: Serve, wsettings: Settings) -> None:
    recorder = Recorder()
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    wrong = client.post("/inbound/not-the-secret", files={"email": (None, RAW)})
    assert wrong.status_code == 404
    assert client.post("/inbound/", files={"email": (None, RAW)}).status_code == 404
    assert recorder.calls == []
    right = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)})
    assert right.status_code == 200
    assert recorder.calls == [(RAW, "sendgrid-inbound")]


def test_inbound_parse_keeps_8bit_bytes_exactly(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    raw = RAW.replace(b"Please add me.", "購読お願いします".encode("shift_jis"))
    client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, raw)})
    assert recorder.calls[0][0] == raw


def test_inbound_parse_end_to_end(serve: Serve, store: SubscriberStore, home: Path) -> None:
    client = serve()
    response = client.post(
        f"/inbound/{INBOUND_SECRET}",
        files={"email": (None, RAW), "envelope": (None, '{"from": "dana@example.net"}')},
    )
    assert response.status_code == 200, response.text
    assert status_of(store, "dana@example.net") == "pending"
    assert confirmations_to(home, "dana@example.net") == 1
    # SendGrid's retry of the same post changes nothing
    client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)})
    assert confirmations_to(home, "dana@example.net") == 1


def test_inbound_parse_malformed_and_failing_payloads_are_kept(
    serve: Serve, wsettings: Settings
) -> None:
    recorder = Recorder(fail=RuntimeError("classifier crashed"))
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    kept = wsettings.state_dir / "inbound-unprocessed"
    empty = client.post(f"/inbound/{INBOUND_SECRET}", files={"nothing": (None, "here")})
    assert empty.status_code == 200
    assert "kept for review" in empty.text
    garbage = client.post(
        f"/inbound/{INBOUND_SECRET}",
        content=b"--x\r\nbroken",
        headers={"content-type": "multipart/form-data"},
    )
    assert garbage.status_code == 200
    failing = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)})
    assert failing.status_code == 200
    assert len(list(kept.glob("*.form"))) == 2
    assert [p.read_bytes() for p in kept.glob("*.eml")] == [RAW]
    assert "classifier crashed" in next(kept.glob("*.eml.txt")).read_text()
    # a busy list is transient: SendGrid is asked to retry
    recorder.fail = LockTimeoutError("subscribers.csv.lock: held")
    assert (
        client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)}).status_code == 503
    )


def test_inbound_parse_body_limit(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    big = b"x" * (30 * 1024 * 1024 + 1)
    response = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, big)})
    assert response.status_code == 413
    assert recorder.calls == []


# Archive, static files, errors -----------------------------------------------------------
def test_archive_is_mounted(serve: Serve, wsettings: Settings) -> None:
    client = serve()
    assert client.get("/archive/vol-2.19.html").status_code == 404  # not built yet
    folder = wsettings.build_dir / "archive"
    folder.mkdir(parents=True)
    (folder / "index.html").write_text("<!DOCTYPE html><title>Archive</title>index")
    (folder / "vol-2.19.html").write_text('<p style="color:red">issue</p>')
    issue = client.get("/archive/vol-2.19.html")
    assert issue.status_code == 200 and "issue" in issue.text
    assert "'unsafe-inline'" in issue.headers["content-security-policy"]
    assert "frame-ancestors 'none'" in issue.headers["content-security-policy"]
    assert "index" in client.get("/archive/").text
    missing = client.get("/archive/vol-9.99.html")
    assert missing.status_code == 404 and "Page not found" in missing.text


def test_static_files_and_not_found(serve: Serve) -> None:
    client = serve()
    css = client.get("/static/web.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert "#0b2545" in css.text and "#bc002d" in css.text and "@import" not in css.text
    assert client.get("/static/favicon.svg").status_code == 200
    assert client.get("/static/base.html.j2").status_code == 404
    assert client.get("/static/../web/base.html.j2").status_code == 404
    missing = client.get("/nope")
    assert missing.status_code == 404 and "Page not found" in missing.text
    assert client.delete("/subscribe").status_code == 405


# Configuration, logging, helpers ---------------------------------------------------------
def test_create_app_needs_the_secret_key(home: Path) -> None:
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        create_app(web_settings(None, secret_key=None))
    with pytest.raises(Exception, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        create_app(web_settings("bm90IGEga2V5"))


def test_serve_command_refuses_to_start_without_a_secret(home: Path) -> None:
    result = CliRunner().invoke(cli_app, ["serve", "--port", "0"])
    assert result.exit_code == 3
    assert "error: NEWSLETTER_SECRET_KEY is not set" in result.output
    help_text = CliRunner().invoke(cli_app, ["serve", "--help"]).output
    assert "--host" in help_text and "--port" in help_text


def test_access_log_never_shows_tokens_or_the_inbound_secret() -> None:
    assert redact_path("/u/abc.def") == "/u/[redacted]"
    assert redact_path("/confirm/abc.def?x=1") == "/confirm/[redacted]?x=1"
    assert redact_path("/inbound/s3cret") == "/inbound/[redacted]"
    assert redact_path("/subscribe") == "/subscribe"
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        "",
        0,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5", "POST", "/u/tok.en", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert "tok.en" not in record.getMessage()


def test_clean_name() -> None:
    assert clean_name("  Ann\r\nBcc: x  ") == "Ann Bcc: x"
    assert clean_name("a\u202eb\x00c\u200dd") == "abc\u200dd"
    assert clean_name("x" * 500) == "x" * 100


def test_inbound_parse_verdicts_are_carried_into_the_message() -> None:
    from newsletter.web.pipeline import with_inbound_auth

    raw = b"From: a@example.com\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n"
    form: dict[str, str | bytes] = {"SPF": "fail", "dkim": b"{@example.com : fail}\r\nBcc: x"}
    out = with_inbound_auth(form, raw)
    assert out.startswith(
        b"X-Inbound-Parse-SPF: fail\r\nX-Inbound-Parse-DKIM: {@example.com : fail}  Bcc: x\r\n"
    )
    assert out.endswith(raw)
    assert with_inbound_auth({}, raw) == raw
