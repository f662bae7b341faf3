"""The mail-side cap on confirmations: one requester cannot mail a crowd through us."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.actions import REQUESTER_DAILY_LIMIT
from newsletter.audience.signups import process_raw_message
from newsletter.config import Settings
from tests.support.inboundkit import mail
from tests.support.signupkit import outbox


def test_one_message_naming_ten_colleagues_mails_nobody(settings: Settings, home: Path) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    names = "\n".join(f"member{i}@example.net" for i in range(10))
    raw = mail(f"Please add my whole team:\n{names}\n", sender="boss@example.com")
    outcome = process_raw_message(raw, settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert "bulk request" in outcome.detail
    assert outcome_mails(settings) == 0


def test_a_requester_has_a_daily_cap_across_messages(settings: Settings, home: Path) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    results = []
    for n in range(3):  # 3 messages x 2 colleagues = 6 > the cap of 5
        raw = mail(
            f"Please add my colleagues c{n}a@example.net and c{n}b@example.net.",
            sender="keen@example.com",
        ).replace(b"<t1@example.com>", f"<t{n}@example.com>".encode())
        outcome = process_raw_message(raw, settings, source="test")
        results += [r for _, r in outcome.results]
    assert results.count("sent") == REQUESTER_DAILY_LIMIT == 5
    assert results.count("rate-limited") == 1
    assert outcome_mails(settings) == 5


def outcome_mails(settings: Settings) -> int:
    return len(outbox(settings))
