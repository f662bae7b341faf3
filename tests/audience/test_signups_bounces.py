"""Bounce reports through the pipeline: a report marks an address bounced only when it
quotes a Message-ID we signed for that address; forged, foreign or mass reports go to
review and suppress nobody."""

from __future__ import annotations

from email.parser import BytesParser
from pathlib import Path

import pytest

from newsletter.audience.signups import process_raw_message
from newsletter.compose.issuefile import load_issue
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.compose.render import render_issue
from newsletter.config import Settings
from newsletter.tokens import verify_message_id
from tests.support.signupkit import SECRET, confirmation_for, load, seed, statuses


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    """Start from an empty subscriber list (the home's sample list is someone else's)."""
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


def issue_headers(settings: Settings, email: str) -> bytes:
    """The header block of a real issue built by MessageBuilder for ``email``."""
    builder = MessageBuilder(
        render_issue(load_issue(settings.issues_dir / "vol-2.19.yaml"), settings), settings
    )
    raw = builder.to_bytes(Recipient(email))
    return raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def dsn(headers: bytes, failed: list[str], *, message_id: str = "dsn.1") -> bytes:
    """A multipart/report delivery-status report for ``failed``, quoting ``headers``."""
    blocks = b"".join(
        f"Final-Recipient: rfc822; {a}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n".encode()
        for a in failed
    )
    return (
        b"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        b"To: digest@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        + f"Message-ID: <{message_id}@mx.example.net>\r\n".encode()
        + b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n" + blocks + b"--b\r\n"
        b"Content-Type: text/rfc822-headers\r\n\r\n" + headers + b"--b--\r\n"
    )


OTHERS = [f"reader{i}@corp{i}.example" for i in range(25)]


def test_bounce_quoting_our_signed_message_id_marks_bounced(settings: Settings) -> None:
    seed(settings, ["victor@example.com", *OTHERS])
    headers = issue_headers(settings, "victor@example.com")
    assert verify_message_id(
        SECRET, BytesParser().parsebytes(headers)["Message-ID"], "victor@example.com"
    )
    outcome = process_raw_message(dsn(headers, ["victor@example.com"]), settings, source="test")
    assert outcome.action == "bounced" and not outcome.review, outcome.detail
    assert statuses(settings)["victor@example.com"] == "bounced"


def test_the_same_bounce_naming_many_subscribers_bounces_nobody(settings: Settings) -> None:
    seed(settings, ["victor@example.com", *OTHERS])
    headers = issue_headers(settings, "victor@example.com")
    raw = dsn(headers, ["victor@example.com", *OTHERS])
    outcome = process_raw_message(raw, settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert "26 recipients" in outcome.detail and "VERP" in outcome.detail
    assert set(statuses(settings).values()) == {"active"}


def test_a_bounce_quoting_the_id_sent_to_someone_else_bounces_nobody(
    settings: Settings,
) -> None:
    seed(settings, ["victor@example.com", *OTHERS])
    headers = issue_headers(settings, "victor@example.com")
    for n, target in enumerate(OTHERS[:3]):
        raw = dsn(headers, [target], message_id=f"dsn.{n}")
        outcome = process_raw_message(raw, settings, source="test")
        assert outcome.action == "review" and outcome.review
        assert f"bounce report ({target}) neither came back to a VERP address" in outcome.detail
    assert set(statuses(settings).values()) == {"active"}


def test_forged_bounce_suppresses_nobody(settings: Settings) -> None:
    """Review finding 2 (r3.py): a report naming every subscriber, quoting nothing."""
    seed(settings, ["victor@example.com", *OTHERS[:4]])
    for n, names in enumerate((["victor@example.com"], ["victor@example.com", *OTHERS[:4]])):
        outcome = process_raw_message(dsn(b"", names, message_id=f"f{n}"), settings, source="t")
        assert outcome.action == "review" and outcome.review, outcome.detail
    # the corpus DSN quotes an unsigned Message-ID at our domain: not ours either
    outcome = process_raw_message(load("27-dsn-5.1.1.eml"), settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert "nor quotes a message we sent to an address it names" in outcome.detail
    assert set(statuses(settings).values()) == {"active"}


def test_bounce_quoting_a_foreign_message_id_suppresses_nobody(settings: Settings) -> None:
    seed(settings, ["victor@example.com"])
    raw = load("27-dsn-5.1.1.eml").replace(
        b"<vol-2.19.7f3a9c@example.org>", b"<forged.1@attacker.example.net>"
    )
    outcome = process_raw_message(raw, settings, source="test")
    assert outcome.action == "review"
    assert statuses(settings)["victor@example.com"] == "active"


def test_bounce_of_a_confirmation_marks_bounced(settings: Settings) -> None:
    process_raw_message(load("01-plain-please-add-me.eml"), settings, source="test")
    confirmation = confirmation_for(settings, "alice@example.com")
    headers = b"".join(
        f"{k}: {v}\r\n".encode() for k, v in confirmation.items() if k in ("From", "Message-ID")
    )
    outcome = process_raw_message(dsn(headers, ["alice@example.com"]), settings, source="test")
    assert outcome.action == "bounced", outcome.detail
    assert statuses(settings)["alice@example.com"] == "bounced"
