"""The list's health from the send journal and the subscriber file, against the limits."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from newsletter.delivery.journal import Journal
from newsletter.delivery.transports import Outcome
from newsletter.doctor.health import ListHealth, check_health, read_list_health
from tests.support.sendkit import HEADER, address, make_settings


def test_rates_from_the_journal_and_recent_complaints(home: Path) -> None:
    settings = make_settings(home)
    emails = [address(i) for i in range(100)]
    settings.state_dir.mkdir(parents=True)
    with Journal(settings.state_dir / "journal.sqlite3") as journal:
        journal.sync("vol-2.19", [(e, e, "") for e in emails])
        journal.record(
            "vol-2.19",
            [Outcome.sent(e) for e in emails[:97]]
            + [Outcome.failed(e, "550 5.1.1 no such user", permanent=True) for e in emails[97:99]]
            + [Outcome.retry(emails[99], "451 4.3.0 later")],
        )
    settings.subscribers_file.write_text(
        HEADER
        + f"{emails[0]},,complained,import,,,2026-11-20T10:00:00Z\n"
        + f"{emails[1]},,complained,import,,,2025-01-01T10:00:00Z\n",  # too old to count
        encoding="utf-8",
    )
    health = read_list_health(settings, now=datetime(2026, 12, 1, tzinfo=UTC))
    assert health == ListHealth("vol-2.19", 100, 97, 2, 1, 1)
    found = check_health(health)
    assert [(f.status, f.message) for f in found] == [
        ("fail", "complaints (last 30 days): 1 of 97 (1.03 %, limit 0.30 %)"),
        ("fail", "permanent failures in vol-2.19: 2 of 100 (2.00 %, limit 1.00 %)"),
        ("ok", "temporary failures in vol-2.19: 1 of 100 (1.00 %, limit 5.00 %)"),
    ]
    assert found[1].fix == (
        "`newsletter status` lists them; clean the list (`newsletter subscribers check`)"
    )


def test_no_send_yet_is_nothing_to_judge(home: Path) -> None:
    health = read_list_health(make_settings(home))
    assert health.issue is None
    [finding] = check_health(health)
    assert finding.status == "ok"
