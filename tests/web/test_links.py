"""The signed links' pages through a real uvicorn server: unsubscribe (with RFC 8058
one-click and resubscribe) and confirm."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from tests.support.webserver import (
    FORM,
    ONE_CLICK,
    Serve,
    confirm_path,
    confirmations_to,
    csv_row,
    post_signup,
    status_of,
    subscribe_form,
    unsubscribe_path,
    wait_for_confirmation,
)


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
    SubscriberStore.from_settings(wsettings, clock=lambda: before).set_status(
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
