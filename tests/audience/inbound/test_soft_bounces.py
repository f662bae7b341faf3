"""Soft bounces: N temporary failures on distinct issues within the window make the
reader bounced; repeated warnings about one issue count once; a delivery resets."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.audience.bounce_score import DAY, BounceScore
from newsletter.audience.inbound.records import Records
from newsletter.audience.signups import process_raw_message
from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings, load_settings
from newsletter.tokens import make_bounce_address
from tests.conftest import GOLDEN_SETTINGS

SECRET = GOLDEN_SETTINGS["secret_key"]
BOUNCE = "bounce@example.org"
READER = "wendy@example.net"
NOW = 1_800_000_000.0


@pytest.fixture
def ssettings(home: Path) -> Settings:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    settings = load_settings(None, **GOLDEN_SETTINGS, bounce_address=BOUNCE)
    store = SubscriberStore.from_settings(settings)
    store.add(READER, status="active", source="seed")
    store.add("other@example.net", status="active", source="seed")
    return settings


def delay(issue: str, n: int) -> bytes:
    """An RFC 3464 delay warning returned to the VERP address of ``issue``'s mail."""
    verp = make_bounce_address(SECRET, BOUNCE, READER, issue)
    return (
        f"Delivered-To: {verp}\r\nFrom: MAILER-DAEMON@mx.example.net\r\nTo: {verp}\r\n"
        f"Subject: Delayed Mail (still being retried)\r\nMessage-ID: <w{n}@mx.example.net>\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: text/plain\r\n\r\nStill trying.\r\n"
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; mx\r\n\r\n"
        f"Final-Recipient: rfc822; {READER}\r\nAction: delayed\r\nStatus: 4.4.7\r\n\r\n"
        "--b--\r\n"
    ).encode()


def status(settings: Settings) -> dict[str, str]:
    return {s.email: s.status for s in SubscriberStore.from_settings(settings).iter_valid()}


def test_three_issues_make_a_bounce(ssettings: Settings) -> None:
    actions = [
        process_raw_message(delay(issue, n), ssettings, source="t", now=NOW + n * DAY).action
        for n, issue in enumerate(["vol-2.19", "vol-2.20", "vol-2.21"])
    ]
    assert actions == ["soft bounce", "soft bounce", "bounced"]
    assert status(ssettings) == {READER: "bounced", "other@example.net": "active"}


def test_warnings_about_one_issue_count_once(ssettings: Settings) -> None:
    for n in range(4):
        outcome = process_raw_message(delay("vol-2.19", n), ssettings, source="t", now=NOW + n)
        assert outcome.action == "soft bounce"
        assert "1 of 3" in outcome.detail
    assert status(ssettings)[READER] == "active"


def test_old_failures_fall_out_of_the_window(ssettings: Settings) -> None:
    for n, issue in enumerate(["vol-2.19", "vol-2.20", "vol-2.21"]):
        when = NOW + n * 61 * DAY  # each one outside the 60 days of the one before
        assert process_raw_message(delay(issue, n), ssettings, source="t", now=when).action == (
            "soft bounce"
        )
    assert status(ssettings)[READER] == "active"


def test_a_delivery_resets_the_count(ssettings: Settings) -> None:
    process_raw_message(delay("vol-2.19", 0), ssettings, source="t", now=NOW)
    process_raw_message(delay("vol-2.20", 1), ssettings, source="t", now=NOW + DAY)
    with Records.from_settings(ssettings) as records:
        BounceScore(records.db).note_delivered(READER, now=NOW + 2 * DAY)
    outcome = process_raw_message(delay("vol-2.21", 2), ssettings, source="t", now=NOW + 3 * DAY)
    assert outcome.action == "soft bounce" and "1 of 3" in outcome.detail
    assert status(ssettings)[READER] == "active"


def test_the_limit_is_a_setting(home: Path) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    settings = load_settings(None, **GOLDEN_SETTINGS, bounce_address=BOUNCE, soft_bounce_limit=1)
    SubscriberStore.from_settings(settings).add(READER, status="active", source="seed")
    assert process_raw_message(delay("vol-2.19", 0), settings, source="t").action == "bounced"


def test_an_unattributed_delay_is_reviewed(ssettings: Settings) -> None:
    raw = delay("vol-2.19", 0).replace(b"bounce+", b"other+")
    outcome = process_raw_message(raw, ssettings, source="t")
    assert outcome.action == "review" and outcome.review
    assert status(ssettings)[READER] == "active"
