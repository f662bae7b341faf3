"""The list's health, as the per-issue report counts it, against the limits."""

from __future__ import annotations

from pathlib import Path

from newsletter.delivery.journal import Journal
from newsletter.delivery.transports import Outcome
from newsletter.doctor.health import ListHealth, check_health, read_list_health
from tests.support.sendkit import HEADER, address, make_settings


def test_rates_of_the_last_issue_from_its_report(home: Path) -> None:
    settings = make_settings(home)
    emails = [address(i) for i in range(100)]
    settings.state_dir.mkdir(parents=True)
    with Journal(settings.state_dir / "journal.sqlite3") as journal:
        run = journal.begin_run("vol-2.19", "smtp")
        journal.sync("vol-2.19", [(e, e, "") for e in emails])
        journal.record(
            "vol-2.19",
            [Outcome.sent(e) for e in emails[:97]]
            + [Outcome.failed(e, "550 5.1.1 no such user", permanent=True) for e in emails[97:99]]
            + [Outcome.retry(emails[99], "451 4.3.0 later")],
        )
        journal.end_run(run, "partial")
    # a spam report marked in the list after the issue went out counts against it
    settings.subscribers_file.write_text(
        HEADER + f"{emails[0]},,complained,import,,,2999-01-01T10:00:00Z\n", encoding="utf-8"
    )
    health = read_list_health(settings)
    assert health == ListHealth("vol-2.19", 100, 97, 2, 1, 1)
    found = check_health(health)
    assert [(f.status, f.message) for f in found] == [
        ("fail", "complaints about vol-2.19: 1 of 97 (1.03 %, limit 0.30 %)"),
        ("fail", "permanent failures in vol-2.19: 2 of 100 (2.00 %, limit 1.00 %)"),
        ("ok", "temporary failures in vol-2.19: 1 of 100 (1.00 %, limit 5.00 %)"),
    ]
    assert found[1].fix == (
        "`newsletter status` lists them; clean the list (`newsletter subscribers check`)"
    )


def test_the_limits_are_the_reports_own() -> None:
    at_limit = ListHealth("vol-2.19", 1000, 1000, 10, 50, 3)  # 0.3 %, 1 %, 5 % exactly
    statuses = [f.status for f in check_health(at_limit)]
    assert statuses == ["fail", "ok", "ok"]  # complaints must stay under 0.3 %


def test_no_send_yet_is_nothing_to_judge(home: Path) -> None:
    health = read_list_health(make_settings(home))
    assert health.issue is None
    [finding] = check_health(health)
    assert finding.status == "ok"
