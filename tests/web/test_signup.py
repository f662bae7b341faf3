"""The signup form through a real uvicorn server: CSRF, honeypot, rate limits, one answer."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from newsletter.audience.subscribers import SubscriberStore
from newsletter.web import Limits
from newsletter.web.signup import clean_name
from tests.support.webserver import (
    Serve,
    confirmations_to,
    post_signup,
    status_of,
    subscribe_form,
    wait_for_confirmation,
)


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


def test_clean_name() -> None:
    assert clean_name("  Ann\r\nBcc: x  ") == "Ann Bcc: x"
    assert clean_name("a\u202eb\x00c\u200dd") == "abc\u200dd"
    assert clean_name("x" * 500) == "x" * 100
