"""Automatic mail (RFC 3834 headers, lists, system senders, out-of-office): never answered."""

from __future__ import annotations

import pytest

from newsletter.tokens import CONFIRM_TTL, make_token
from tests.support.inboundkit import NOW, SECRET, classify
from tests.support.inboundkit import mail as _mail


def test_auto_reply_quoting_a_confirmation_never_confirms() -> None:
    token = make_token(SECRET, "confirm", "ann@example.com", ttl=CONFIRM_TTL, now=NOW)
    got = classify(_mail(f"I am away.\n> {token}\n", extra="Auto-Submitted: auto-replied\n"))
    assert got.kind == "auto"


@pytest.mark.parametrize(
    "extra",
    [
        "Auto-Submitted: auto-generated\n",
        "Return-Path: <>\n",
        "X-Autorespond: yes\n",
        "X-Auto-Response-Suppress: All\n",
        "Precedence: bulk\n",
        "Precedence: junk\n",
        "List-Id: <x.example.net>\n",
        "List-Unsubscribe: <mailto:x-request@example.net>\n",
    ],
)
def test_auto_headers(extra: str) -> None:
    assert classify(_mail("please add me", extra=extra)).kind == "auto"


def test_auto_submitted_no_is_a_person() -> None:
    assert classify(_mail("please add me", extra="Auto-Submitted: no\n")).kind == "subscribe"


@pytest.mark.parametrize(
    "sender",
    [
        "list-request@example.net",
        "noreply@example.net",
        "no-reply@example.net",
    ],
)
def test_system_senders_are_auto(sender: str) -> None:
    assert classify(_mail("please add me", sender=sender)).kind == "auto"


@pytest.mark.parametrize("sender", ["MAILER-DAEMON@example.net", "postmaster@example.net"])
def test_mail_from_a_mail_system_is_a_report_even_unreadable(sender: str) -> None:
    """Nothing that looks like a bounce is merely recorded: unreadable, it is reviewed."""
    got = classify(_mail("please add me", sender=sender))
    assert got.kind == "bounce" and got.addresses == ()
    assert "no failed address could be read" in got.reason


@pytest.mark.parametrize(
    "subject", ["Automatic reply: hello", "自動返信", "不在通知", "Out of Office"]
)
def test_out_of_office_subjects(subject: str) -> None:
    assert classify(_mail("please add me", subject=subject)).kind == "auto"
