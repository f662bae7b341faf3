"""Double opt-in: request_confirmation's reasons, the confirmation email, confirm_token."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.audience.confirm import (
    StaleTokenError,
    activate,
    confirm_token,
    request_confirmation,
)
from newsletter.audience.confirm_mail import render_confirmation
from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError, NewsletterError, TokenError
from newsletter.tokens import CONFIRM_TTL, make_token
from tests.conftest import GOLDEN_SETTINGS
from tests.support.signupkit import SECRET, confirmation_for, outbox, statuses, token_in


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


def test_request_adds_pending_and_mails_a_confirmation(settings: Settings) -> None:
    result = request_confirmation("Kim@Example.com", settings, name="Kim 金", source="web")
    assert (result.email, result.sent, result.reason) == ("Kim@example.com", True, "sent")
    row = SubscriberStore.from_settings(settings).get("kim@example.com")
    assert row is not None
    assert (row.status, row.source, row.name, row.confirmed_at) == ("pending", "web", "Kim 金", "")

    msg = confirmation_for(settings, "kim@example.com")
    token = token_in(msg)
    assert msg["Auto-Submitted"] == "auto-replied"
    assert msg["List-Unsubscribe"] is None
    assert msg["Reply-To"] == "digest@example.org"
    assert str(msg["To"]) == "Kim 金 <Kim@example.com>"
    # a plain subject (a token there looks like phishing); the token rides in the
    # Message-ID, which a reply carries back in In-Reply-To/References
    assert str(msg["Subject"]) == "Confirm your subscription to US-Japan Alliance Digest"
    assert msg["Message-ID"] == f"<c.{token}@example.org>"
    html = msg.get_body(("html",)).get_content()  # type: ignore[union-attr]
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert f'href="https://digest.example.org/confirm/{token}"' in html
    assert "Reply to this email to confirm" in html and "Reply to this email to confirm" in text
    assert f"https://digest.example.org/confirm/{token}" in text
    assert max(len(line) for line in text.splitlines() if token not in line) <= 78


def test_no_link_without_a_public_url(home: Path) -> None:
    settings = load_settings(None, **{**GOLDEN_SETTINGS, "public_url": None})
    rendered = render_confirmation("a@example.com", "tok.en", settings)
    assert "/confirm/" not in rendered.html and "/confirm/" not in rendered.text
    assert "Reply to this email to confirm" in rendered.text


def test_already_active_is_not_mailed(settings: Settings) -> None:
    SubscriberStore.from_settings(settings).add("a@example.com", status="active")
    result = request_confirmation("a@example.com", settings, source="web")
    assert (result.sent, result.reason) == (False, "already active")
    assert outbox(settings) == []


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_suppressed_is_not_mailed(settings: Settings, status: str) -> None:
    SubscriberStore.from_settings(settings).add("a@example.com", status=status)
    result = request_confirmation("a@example.com", settings, source="web")
    assert (result.sent, result.reason) == (False, "suppressed")
    assert statuses(settings) == {"a@example.com": status}
    assert outbox(settings) == []


def past_store(settings: Settings, stamp: str = "2024-01-01T00:00:00Z") -> SubscriberStore:
    """The project's list, writing ``updated_at`` as ``stamp`` (a change made back then)."""
    return SubscriberStore.from_settings(settings, clock=lambda: stamp)


def test_unsubscribed_asking_again_stays_unsubscribed_until_confirmed(
    settings: Settings,
) -> None:
    # review finding: a request used to turn "unsubscribed" into "pending" for whoever
    # typed the address; now the row is left alone and only the fresh link brings it back
    past_store(settings).add("a@example.com", status="unsubscribed")
    result = request_confirmation("a@example.com", settings, source="web")
    assert (result.sent, result.reason) == (True, "sent")
    assert statuses(settings) == {"a@example.com": "unsubscribed"}
    token = token_in(confirmation_for(settings, "a@example.com"))
    assert confirm_token(token, settings) == "a@example.com"
    row = SubscriberStore.from_settings(settings).get("a@example.com")
    assert row is not None and row.status == "active" and row.confirmed_at


def test_an_unsubscribe_cannot_be_undone_by_a_stranger_or_an_old_link(
    settings: Settings, tmp_path: Path
) -> None:
    """Review finding 1 (r1.py): subscribe, confirm, unsubscribe; then a stranger's web
    request, the victim's old confirm link and an admin import of an old spreadsheet."""
    minted = time.time() - 3 * 86400
    old = make_token(SECRET, "confirm", "victim@example.com", ttl=CONFIRM_TTL, now=minted)
    past_store(settings, "2024-01-01T00:00:00Z").add("victim@example.com", status="pending")
    assert confirm_token(old, settings) == "victim@example.com"
    unsubscribed_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(minted + 3600))
    past_store(settings, unsubscribed_at).set_status("victim@example.com", "unsubscribed")

    stranger = request_confirmation("victim@example.com", settings, source="web")
    assert (stranger.sent, stranger.reason) == (True, "sent")  # mailed to the victim only
    assert statuses(settings) == {"victim@example.com": "unsubscribed"}
    with pytest.raises(StaleTokenError, match="older than your last change; ask for a new one"):
        confirm_token(old, settings)
    assert statuses(settings) == {"victim@example.com": "unsubscribed"}

    sheet = tmp_path / "old.csv"
    sheet.write_text("email,name,status\nvictim@example.com,V,active\n")
    from newsletter.audience.subscribers.importer import read_import_file

    entries, _ = read_import_file(sheet)
    report = SubscriberStore.from_settings(settings).import_entries(entries)
    assert [o.email for o in report.skipped] == ["victim@example.com"]
    assert statuses(settings) == {"victim@example.com": "unsubscribed"}


def test_a_token_older_than_the_pending_row_is_refused(settings: Settings) -> None:
    # the row was (re)listed after the token was made: that link is not for this row
    old = make_token(SECRET, "confirm", "a@example.com", ttl=CONFIRM_TTL, now=time.time() - 60)
    SubscriberStore.from_settings(settings).add("a@example.com", status="pending")
    with pytest.raises(StaleTokenError):
        confirm_token(old, settings)
    assert statuses(settings) == {"a@example.com": "pending"}
    # a token from a couple of seconds before the row (clock slack) still works
    near = make_token(SECRET, "confirm", "a@example.com", ttl=CONFIRM_TTL, now=time.time() - 1)
    assert confirm_token(near, settings) == "a@example.com"
    assert statuses(settings) == {"a@example.com": "active"}


@pytest.mark.parametrize("status", ["bounced", "complained"])
def test_a_fresh_token_never_reactivates_bounced_or_complained(
    settings: Settings, status: str
) -> None:
    past_store(settings).add("a@example.com", status=status)
    fresh = make_token(SECRET, "confirm", "a@example.com", ttl=CONFIRM_TTL)
    with pytest.raises(NewsletterError, match=f"is {status}"):
        confirm_token(fresh, settings)
    assert statuses(settings) == {"a@example.com": status}


def test_activate_without_a_mint_time_only_confirms_pending(settings: Settings) -> None:
    past_store(settings).add("a@example.com", status="unsubscribed")
    with pytest.raises(NewsletterError, match="is unsubscribed"):
        activate("a@example.com", settings)
    assert statuses(settings) == {"a@example.com": "unsubscribed"}


def test_rate_limited_per_address(settings: Settings) -> None:
    now = time.time()
    reasons = [
        request_confirmation("a@example.com", settings, source="web", now=now).reason
        for _ in range(4)
    ]
    assert reasons == ["sent", "sent", "sent", "rate-limited"]
    assert request_confirmation("b@example.com", settings, source="web").reason == "sent"
    later = request_confirmation("a@example.com", settings, source="web", now=now + 86401)
    assert later.reason == "sent"


def test_confirm_token_activates_once(settings: Settings) -> None:
    request_confirmation("a@example.com", settings, source="web")
    token = token_in(confirmation_for(settings, "a@example.com"))
    assert confirm_token(token, settings) == "a@example.com"
    row = SubscriberStore.from_settings(settings).get("a@example.com")
    assert row is not None and row.status == "active" and row.confirmed_at
    assert confirm_token(token, settings) == "a@example.com"  # idempotent
    again = SubscriberStore.from_settings(settings).get("a@example.com")
    assert again == row


def test_confirm_token_refuses_tampered_expired_and_foreign(settings: Settings) -> None:
    request_confirmation("a@example.com", settings, source="web")
    token = token_in(confirmation_for(settings, "a@example.com"))
    _body, sig = token.split(".")
    other = make_token(SECRET, "confirm", "b@example.com", ttl=CONFIRM_TTL).split(".")[0]
    with pytest.raises(TokenError):
        confirm_token(f"{other}.{sig}", settings)
    expired = make_token(SECRET, "confirm", "a@example.com", ttl=CONFIRM_TTL, now=0)
    with pytest.raises(TokenError, match="expired"):
        confirm_token(expired, settings)
    unsubscribe = make_token(SECRET, "unsubscribe", "a@example.com", ttl=CONFIRM_TTL)
    with pytest.raises(TokenError):
        confirm_token(unsubscribe, settings)
    assert statuses(settings) == {"a@example.com": "pending"}


def test_confirm_token_for_someone_unsubscribed_since(settings: Settings) -> None:
    request_confirmation("a@example.com", settings, source="web")
    token = token_in(confirmation_for(settings, "a@example.com"))
    SubscriberStore.from_settings(settings).set_status("a@example.com", "unsubscribed")
    # minted before the unsubscribe (here: the same second): refused as stale
    with pytest.raises(StaleTokenError, match="older than your last change"):
        confirm_token(token, settings)
    SubscriberStore.from_settings(settings).purge("a@example.com")
    with pytest.raises(NewsletterError, match="not on the list"):
        confirm_token(token, settings)


def test_request_needs_the_secret(home: Path) -> None:
    settings = load_settings(None, **{**GOLDEN_SETTINGS, "secret_key": None})
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY"):
        request_confirmation("a@example.com", settings, source="web")


def test_in_reply_to_is_cleaned(settings: Settings) -> None:
    request_confirmation(
        "a@example.com", settings, source="email", in_reply_to="<x@y>\r\nBcc: evil@example.net"
    )
    msg = confirmation_for(settings, "a@example.com")
    assert msg["In-Reply-To"] is None and msg["Bcc"] is None
    request_confirmation("b@example.com", settings, source="email", in_reply_to="<ok.1@mail.x>")
    assert confirmation_for(settings, "b@example.com")["In-Reply-To"] == "<ok.1@mail.x>"
