"""Requests in free text: the wordings that ask, and who they ask for."""

from __future__ import annotations

import time

import pytest

from tests.support.inboundkit import classify
from tests.support.inboundkit import mail as _mail


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ("please add me", "subscribe"),
        ("Subscribe", "subscribe"),
        ("I'd like to receive the Alliance Digest.", "subscribe"),
        ("I\u2019d love to get the newsletter.", "subscribe"),
        ("How do I subscribe?", "subscribe"),
        ("sign me up", "subscribe"),
        ("購読を希望します", "subscribe"),
        ("配信を希望します。", "subscribe"),
        ("登録をお願いします", "subscribe"),
        ("unsubscribe", "unsubscribe"),
        ("Please remove me.", "unsubscribe"),
        ("Stop sending these.", "unsubscribe"),
        ("Take me off your list", "unsubscribe"),
        ("I no longer wish to receive this.", "unsubscribe"),
        ("配信停止", "unsubscribe"),
        ("購読を解除してください", "unsubscribe"),
        ("I did not unsubscribe, why did the digest stop?", "review"),
        ("Please don't remove me, I love it.", "review"),
        ("I'd like to add my thoughts on the article.", "review"),
        ("Unsubscribe me, then subscribe me again", "review"),
        ("いつも楽しく購読しています。", "review"),
        ("Is there a fee to subscribe?", "review"),
    ],
)
def test_wordings(body: str, kind: str) -> None:
    assert classify(_mail(body)).kind == kind


def test_subscribe_reason_quotes_the_request() -> None:
    got = classify(_mail("Hello,\nplease add me\nto the list."))
    assert got.reason == "asked to subscribe: 'please add me'"
    assert got.addresses == ("ann@example.com",)
    assert got.excerpt == "Hello,\nplease add me\nto the list."


def test_named_addresses_exclude_contact_our_domain_and_quotes() -> None:
    body = (
        "Please add my colleague bob@example.com and staff@example.org (ours).\n"
        "I found digest@example.org on your site.\n\n"
        "On Mon, 3 Jun 2024, Someone <x@example.net> wrote:\n> add quoted@example.net\n"
    )
    got = classify(_mail(body))
    assert got.kind == "subscribe"
    assert got.addresses == ("bob@example.com",)


def test_self_and_colleagues() -> None:
    got = classify(_mail("Please subscribe me and my colleague bob@example.com"))
    assert got.addresses == ("ann@example.com", "bob@example.com")


def test_request_for_someone_without_an_address_needs_a_human() -> None:
    got = classify(_mail("Please add my colleague, she would enjoy it."))
    assert got.kind == "review"
    assert "names no address" in got.reason


def test_bulk_request_needs_a_human() -> None:
    names = "\n".join(f"user{i}@example.com" for i in range(11))
    got = classify(_mail(f"Please add the following:\n{names}\n"))
    assert got.kind == "review"
    assert "11 addresses" in got.reason


def test_list_unsubscribe_mailto_wins_over_other_words() -> None:
    got = classify(_mail("please add me back one day\n", subject="unsubscribe"))
    assert (got.kind, got.addresses) == ("unsubscribe", ("ann@example.com",))


def test_reply_subject_is_not_a_request() -> None:
    assert classify(_mail("FYI", subject="Fwd: Please subscribe me")).kind == "review"


def test_a_long_run_without_an_at_sign_classifies_quickly() -> None:
    """Review finding 3 (r6.py/r7.py): "please add me" + 99,000 letters took ~17 s."""
    raw = _mail("please add me\n" + "a" * 99_000 + "\n", sender="x@y.example")
    started = time.perf_counter()
    got = classify(raw)
    assert time.perf_counter() - started < 1.0
    assert got.kind == "subscribe" and got.addresses == ("x@y.example",)
    # addresses are still found next to long runs of other text
    raw = _mail(
        "please add bob@example.com\n" + "c" * 50_000 + "@" + "d" * 50_000,
        sender="x@y.example",
    )
    started = time.perf_counter()
    got = classify(raw)
    assert time.perf_counter() - started < 1.0
    assert "bob@example.com" in got.addresses
