"""Requests and confirmations by mail, through the pipeline: a reply confirms (quoted or
by the subject), a forged or stale reply or a helpdesk acknowledgement confirms nobody, a
request for a colleague mails only the colleague, the rate limit, and addresses that
unsubscribed or bounced before."""

from __future__ import annotations

import time
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.audience.inbound.records import Records
from newsletter.audience.review import approve
from newsletter.audience.signups import ProcessOutcome, process_raw_message
from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings, load_settings
from tests.conftest import GOLDEN_SETTINGS
from tests.support.signupkit import confirmation_for, load, outbox, seed, statuses, token_in


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    """Start from an empty subscriber list (the home's sample list is someone else's)."""
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


def reply_to(confirmation: EmailMessage, sender: str, *, quote: bool = True) -> bytes:
    body = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    quoted = "\n".join("> " + line for line in body.splitlines()) if quote else ""
    subject = str(confirmation["Subject"])
    return (
        f"From: Someone <{sender}>\r\n"
        "To: digest@example.org\r\n"
        f"Subject: Re: {subject}\r\n"
        f"Message-ID: <reply.{time.time_ns()}@mail.example.com>\r\n"
        f"In-Reply-To: {confirmation['Message-ID']}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "\r\n"
        f"Yes please.\r\n\r\nOn Monday, the digest wrote:\r\n{quoted}\r\n"
    ).encode()


def pat_asks_to_subscribe(settings: Settings) -> EmailMessage:
    """Pat's request by mail (corpus 04) is processed; the confirmation it mailed them."""
    process_raw_message(load("04-subject-only-subscribe.eml"), settings, source="test")
    return confirmation_for(settings, "pat@example.net")


def answer(confirmation: EmailMessage, sender: str, settings: Settings) -> ProcessOutcome:
    """``sender`` replies to ``confirmation``, quoting it; what the pipeline did."""
    return process_raw_message(reply_to(confirmation, sender), settings, source="test")


def test_reply_to_the_confirmation_confirms(settings: Settings) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    assert statuses(settings)["pat@example.net"] == "pending"
    outcome = answer(confirmation, "pat@example.net", settings)
    assert outcome.action == "confirmed", outcome.detail
    assert statuses(settings)["pat@example.net"] == "active"
    row = SubscriberStore.from_settings(settings).get("pat@example.net")
    assert row is not None and row.confirmed_at


def test_reply_without_the_quote_confirms_by_its_thread_headers(settings: Settings) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    reply = reply_to(confirmation, "pat@example.net", quote=False)
    assert token_in(confirmation).encode() not in reply.split(b"\r\n\r\n", 1)[1]
    assert process_raw_message(reply, settings, source="test").action == "confirmed"


def test_a_forged_confirmation_reply_confirms_nobody(settings: Settings) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    outcome = answer(confirmation, "mallory@example.net", settings)
    assert outcome.action == "review" and outcome.review
    assert statuses(settings) == {"pat@example.net": "pending"}


def test_a_request_for_a_colleague_only_mails_the_colleague(settings: Settings) -> None:
    outcome = process_raw_message(load("07-colleague-one.eml"), settings, source="test")
    assert outcome.results == (("bob.lee@example.com", "sent"),)
    assert statuses(settings) == {"bob.lee@example.com": "pending"}
    assert [m["To"].addresses[0].addr_spec for m in outbox(settings)] == ["bob.lee@example.com"]


def test_rate_limit_per_address(home: Path) -> None:
    settings = load_settings(None, **GOLDEN_SETTINGS, confirm_rate_limit=2)
    raw = load("01-plain-please-add-me.eml")
    results = []
    for n in range(3):
        again = raw.replace(b"Message-ID: <", f"Message-ID: <again{n}.".encode(), 1)
        outcome = process_raw_message(again, settings, source="test")
        results.append(outcome.results)
    assert [r[0][1] for r in results] == ["sent", "sent", "rate-limited"]
    with Records.from_settings(settings) as records:
        assert records.confirmations_sent("alice@example.com") == 2
    later = raw.replace(b"Message-ID: <", b"Message-ID: <later.", 1)
    outcome = process_raw_message(later, settings, source="test", now=time.time() + 25 * 3600)
    assert outcome.results == (("alice@example.com", "sent"),)


def test_unsubscribed_person_asking_again_gets_a_confirmation(settings: Settings) -> None:
    seed(settings, ["alice@example.com"])
    past = SubscriberStore.from_settings(settings, clock=lambda: "2024-01-01T00:00:00Z")
    past.set_status("alice@example.com", "unsubscribed")
    outcome = process_raw_message(load("01-plain-please-add-me.eml"), settings, source="test")
    assert outcome.results == (("alice@example.com", "sent"),)
    # review finding: the request used to make the row "pending"; it now stays
    # unsubscribed until the confirmation it was mailed is answered
    assert statuses(settings)["alice@example.com"] == "unsubscribed"
    confirmation = confirmation_for(settings, "alice@example.com")
    outcome = answer(confirmation, "alice@example.com", settings)
    assert outcome.action == "confirmed", outcome.detail
    assert statuses(settings)["alice@example.com"] == "active"


def test_a_reply_with_a_token_older_than_the_unsubscribe_confirms_nobody(
    settings: Settings,
) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    SubscriberStore.from_settings(settings, clock=lambda: later).set_status(
        "pat@example.net", "unsubscribed"
    )
    outcome = answer(confirmation, "pat@example.net", settings)
    assert outcome.action == "review" and outcome.review
    assert "older than your last change" in outcome.detail
    assert statuses(settings)["pat@example.net"] == "unsubscribed"


def test_a_helpdesk_acknowledgement_quoting_the_confirmation_confirms_nobody(
    settings: Settings,
) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    subject = str(confirmation["Subject"])
    raw = (
        "From: Support <pat@example.net>\r\nTo: digest@example.org\r\n"
        f"Subject: [Ticket #4411] Re: {subject}\r\nMessage-ID: <ack.1@example.net>\r\n\r\n"
        "Thank you for contacting us. A ticket has been opened.\r\n"
    ).encode()
    outcome = process_raw_message(raw, settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert statuses(settings)["pat@example.net"] == "pending"


def test_someone_else_cannot_bring_back_an_unsubscribed_address(settings: Settings) -> None:
    store = seed(settings, ["bob.lee@example.com"])
    store.set_status("bob.lee@example.com", "unsubscribed")
    outcome = process_raw_message(load("07-colleague-one.eml"), settings, source="test")
    assert outcome.results == (("bob.lee@example.com", "unsubscribed"),)
    assert outcome.review and outcome.action == "nothing sent"
    assert statuses(settings)["bob.lee@example.com"] == "unsubscribed"
    assert outbox(settings) == []


def test_bounced_address_is_not_mailed_until_a_human_approves(settings: Settings) -> None:
    store = seed(settings, ["alice@example.com"])
    store.set_status("alice@example.com", "bounced")
    outcome = process_raw_message(load("01-plain-please-add-me.eml"), settings, source="test")
    assert outcome.results == (("alice@example.com", "suppressed"),) and outcome.review
    assert outbox(settings) == []
    assert outcome.record_id is not None
    note = approve(outcome.record_id, settings)
    assert "alice@example.com: sent" in note
    assert statuses(settings)["alice@example.com"] == "pending"
    assert len(outbox(settings)) == 1
