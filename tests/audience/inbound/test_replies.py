"""Replies to the confirmation mail: only a valid token for the sender, from a person,
confirms."""

from __future__ import annotations

import re

import pytest

from newsletter.tokens import CONFIRM_TTL, UNSUBSCRIBE_TTL, make_token
from tests.support.inboundkit import NOW, SECRET, classify, load
from tests.support.inboundkit import mail as _mail


def test_confirm_reply_that_refuses_is_not_a_confirmation() -> None:
    token = make_token(SECRET, "confirm", "ann@example.com", ttl=CONFIRM_TTL, now=NOW)
    body = f"I never asked for this, please remove me.\n\n> https://example.org/c?t={token}\n"
    got = classify(_mail(body))
    assert got.kind == "review"
    assert got.token_email is None


def test_confirm_token_is_case_insensitive_and_found_in_html() -> None:
    token = make_token(SECRET, "confirm", "Ann@Example.com", ttl=CONFIRM_TTL, now=NOW)
    raw = (
        "From: Ann <ANN@example.com>\nTo: digest@example.org\nSubject: Re: Confirm\n"
        "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n\n"
        f'<p>Yes!</p><blockquote><a href="https://example.org/c?t={token}">confirm</a>'
        "</blockquote>"
    ).encode()
    got = classify(raw)
    assert (got.kind, got.token_email) == ("confirm", "ann@example.com")


def test_confirm_needs_a_secret() -> None:
    got = classify(load("29-confirm-valid-reply.eml"), secret=None)
    assert got.kind == "review"
    assert "no secret" in got.reason


def test_quoted_unsubscribe_token_is_not_a_forged_confirmation() -> None:
    token = make_token(SECRET, "unsubscribe", "ann@example.com", ttl=UNSUBSCRIBE_TTL, now=NOW)
    body = f"Please add my colleague bob@example.com\n\n> Unsubscribe: https://example.org/u?t={token}\n"
    got = classify(_mail(body))
    assert (got.kind, got.addresses) == ("subscribe", ("bob@example.com",))


def test_forged_token_reasons() -> None:
    assert "not for the sender" in classify(load("30-confirm-forged-other.eml")).reason
    assert "invalid signature" in classify(load("31-confirm-tampered.eml")).reason
    assert "expired" in classify(load("32-confirm-expired.eml")).reason


@pytest.mark.parametrize(
    "name", ["45-helpdesk-ticket-ack.eml", "46-japanese-auto-ack.eml", "47-customer-care-ack.eml"]
)
def test_an_automatic_acknowledgement_quoting_a_confirmation_is_not_a_confirmation(
    name: str,
) -> None:
    """Review finding 5 (r4.py): a helpdesk acknowledgement without automatic-mail
    headers, quoting our confirmation subject with a valid token, is not a person."""
    got = classify(load(name))
    assert got.kind == "review" and got.token_email is None
    assert "automatic acknowledgement" in got.reason
    # the same token in a plain human reply does confirm
    human = load(name).split(b"\r\n\r\n", 1)[0] + b"\r\n\r\nYes please, sign me up.\r\n"
    human = re.sub(rb"\[Ticket #4411\] ", b"", human)
    assert classify(human).kind == "confirm"


def test_a_confirmation_records_when_its_token_was_minted() -> None:
    got = classify(load("29-confirm-valid-reply.eml"))
    assert got.kind == "confirm" and got.token_minted == NOW - 3600
