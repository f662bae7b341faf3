"""The confirm link's page answers the reader's real question: a link used already
says "you are subscribed" (and offers to leave); an expired one offers a fresh link."""

from __future__ import annotations

import re
import time
from pathlib import Path

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from tests.support.webserver import (
    Serve,
    confirm_path,
    confirmations_to,
    status_of,
    wait_for_confirmation,
)

SAME_SITE = {"sec-fetch-site": "same-origin"}


def test_a_used_link_says_subscribed_and_offers_to_leave(
    serve: Serve, wsettings: Settings, store: SubscriberStore
) -> None:
    client = serve()
    path = confirm_path(wsettings, "carol@example.com")
    assert client.post(path, headers=SAME_SITE).status_code == 200
    assert status_of(store, "carol@example.com") == "active"
    again = client.get(path)
    assert again.status_code == 200
    assert "You are already subscribed" in again.text
    assert "Confirm subscription</button>" not in again.text
    leave = re.search(r'href="(/u/[^"]+)"', again.text)
    assert leave, again.text
    # the offered link is a working unsubscribe link for that address
    page = client.get(leave.group(1))
    assert page.status_code == 200 and 'value="unsubscribe"' in page.text
    assert status_of(store, "carol@example.com") == "active"  # GET changes nothing


def test_an_expired_link_offers_a_fresh_one(
    serve: Serve, wsettings: Settings, store: SubscriberStore, home: Path
) -> None:
    client = serve()
    expired = confirm_path(wsettings, "carol@example.com", now=time.time() - 8 * 86400)
    page = client.get(expired)
    assert page.status_code == 400
    assert "This link has expired" in page.text and 'value="resend"' in page.text
    assert "carol@example.com" in page.text
    assert confirmations_to(home, "carol@example.com") == 0
    sent = client.post(expired, data={"action": "resend"}, headers=SAME_SITE)
    assert sent.status_code == 200 and "Check your inbox" in sent.text
    fresh = wait_for_confirmation(home, "carol@example.com")
    assert status_of(store, "carol@example.com") == "pending"  # a link, never activation
    assert client.post(fresh, headers=SAME_SITE).status_code == 200
    assert status_of(store, "carol@example.com") == "active"


def test_an_expired_link_of_a_subscribed_reader_says_subscribed(
    serve: Serve, wsettings: Settings, store: SubscriberStore
) -> None:
    store.set_status("carol@example.com", "active")
    client = serve()
    expired = confirm_path(wsettings, "carol@example.com", now=time.time() - 8 * 86400)
    page = client.get(expired)
    assert page.status_code == 200 and "You are already subscribed" in page.text


def test_resend_needs_a_signed_link_and_this_site(
    serve: Serve, wsettings: Settings, home: Path
) -> None:
    client = serve()
    forged = "/confirm/" + confirm_path(wsettings, "carol@example.com")[9:-4] + "AAAA"
    assert client.post(forged, data={"action": "resend"}, headers=SAME_SITE).status_code == 400
    expired = confirm_path(wsettings, "carol@example.com", now=time.time() - 8 * 86400)
    cross = client.post(
        expired, data={"action": "resend"}, headers={"sec-fetch-site": "cross-site"}
    )
    assert cross.status_code == 403
    assert confirmations_to(home, "carol@example.com") == 0
