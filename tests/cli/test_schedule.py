"""Scheduled sends: `send --at`, `cancel`, `run-due` (once, even when run twice at once)."""

from __future__ import annotations

import datetime as dt
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from tests.support.archivekit import write_variant
from tests.support.sendkit import write_subscribers

runner = CliRunner()
FAR = "2999-01-01 09:00"


@pytest.fixture
def home4(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "outbox")
    write_subscribers(home / "subscribers" / "subscribers.csv", 4)
    write_variant(home, "2.20", "2023-10-27")
    return home


def copies(home: Path, slug: str) -> int:
    return len(list((home / "outbox" / slug).glob("*.eml")))


def move_due(home: Path, slug: str, ago: dt.timedelta) -> None:
    """Pretend the scheduled time has come (``ago`` in the past)."""
    when = (dt.datetime.now(dt.UTC) - ago).isoformat(timespec="seconds")
    with sqlite3.connect(home / ".newsletter" / "schedule.sqlite3") as db:
        db.execute("UPDATE schedules SET send_at = ? WHERE issue = ?", (when, slug))


def schedule(slug: str = "vol-2.20") -> None:
    result = runner.invoke(app, ["send", slug, "--at", FAR, "--tz", "America/New_York", "--yes"])
    assert result.exit_code == 0, result.output


def test_send_at_records_a_schedule_and_sends_nothing(home4: Path) -> None:
    result = runner.invoke(app, ["send", "vol-2.20", "--at", FAR, "--tz", "America/New_York",
                                 "--yes"])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "recipients: 4 new, 0 already sent" in result.stdout
    assert (
        "scheduled: vol-2.20 for 2999-01-01 09:00 America/New_York (2999-01-01 14:00 UTC)"
        in result.stdout
    )
    assert copies(home4, "vol-2.20") == 0
    status = runner.invoke(app, ["status", "vol-2.20"])
    assert status.stdout.startswith(
        "schedule: scheduled for 2999-01-01 09:00 America/New_York (2999-01-01 14:00 UTC) (local)"
    )
    again = runner.invoke(app, ["send", "vol-2.20", "--at", "2999-01-02 09:00", "--yes"])
    assert again.exit_code == 2
    assert "vol-2.20 is already scheduled" in again.stderr
    assert "`newsletter cancel vol-2.20` first" in again.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "2001-01-01 09:00"], "is in the past"),
        (["--at", "next tuesday"], "not a date and time"),
        (["--at", FAR, "--tz", "Mars/Olympus"], "--tz Mars/Olympus: not a time zone"),
        (["--tz", "UTC"], "--tz needs --at"),
        (["--at", FAR, "--dry-run"], "does not go with --to, --dry-run or --limit"),
    ],
)
def test_bad_schedules_are_refused_with_a_reason(
    home4: Path, args: list[str], message: str
) -> None:
    result = runner.invoke(app, ["send", "vol-2.20", "--yes", *args])
    assert result.exit_code == 2
    assert message in result.stderr.splitlines()[0]
    assert not (home4 / ".newsletter" / "schedule.sqlite3").exists()


def test_run_due_sends_a_due_issue_once(home4: Path) -> None:
    assert runner.invoke(app, ["run-due"]).stdout == "nothing due\n"
    schedule()
    assert runner.invoke(app, ["run-due"]).stdout == "nothing due\n"  # not yet
    move_due(home4, "vol-2.20", dt.timedelta(minutes=2))
    result = runner.invoke(app, ["run-due"])
    assert result.exit_code == 0, result.output
    assert "vol-2.20: due 2" in result.stdout and ", sending" in result.stdout
    assert "done: vol-2.20 sent to 4 recipients" in result.stdout
    assert copies(home4, "vol-2.20") == 4
    assert runner.invoke(app, ["run-due"]).stdout == "nothing due\n"
    assert "schedule: done" in runner.invoke(app, ["status", "vol-2.20"]).stdout


def test_two_run_due_at_the_same_moment_send_once(home4: Path) -> None:
    schedule()
    move_due(home4, "vol-2.20", dt.timedelta(minutes=1))
    env = {**os.environ, "NEWSLETTER_TRANSPORT": "outbox"}
    command = [sys.executable, "-m", "newsletter", "run-due"]
    runs = [
        subprocess.Popen(command, cwd=home4, env=env, stdout=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    outputs = [run.communicate(timeout=120)[0] for run in runs]
    assert [run.returncode for run in runs] == [0, 0], outputs
    assert sum("sending" in out for out in outputs) == 1, outputs
    assert copies(home4, "vol-2.20") == 4


def test_a_send_found_hours_late_is_missed_not_sent(home4: Path) -> None:
    schedule()
    move_due(home4, "vol-2.20", dt.timedelta(hours=3))
    result = runner.invoke(app, ["run-due"])
    assert result.exit_code == 4
    assert "h late: not sent unasked" in result.stderr
    assert copies(home4, "vol-2.20") == 0
    assert "schedule: missed" in runner.invoke(app, ["status", "vol-2.20"]).stdout
    assert runner.invoke(app, ["run-due"]).stdout == "nothing due\n"


def test_late_ok_sends_a_late_one(home4: Path) -> None:
    schedule()
    move_due(home4, "vol-2.20", dt.timedelta(hours=3))
    result = runner.invoke(app, ["run-due", "--late-ok"])
    assert result.exit_code == 0, result.output
    assert copies(home4, "vol-2.20") == 4


def test_cancel_stops_a_schedule(home4: Path) -> None:
    schedule()
    result = runner.invoke(app, ["cancel", "vol-2.20"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("cancelled: vol-2.20 was scheduled for 2999-01-01 09:00")
    move_due(home4, "vol-2.20", dt.timedelta(minutes=1))
    assert runner.invoke(app, ["run-due"]).stdout == "nothing due\n"
    assert copies(home4, "vol-2.20") == 0
    again = runner.invoke(app, ["cancel", "vol-2.20"])
    assert again.exit_code == 4
    assert again.stderr.startswith("error: vol-2.20: nothing to cancel (cancelled)")


def test_a_gate_that_refuses_at_run_time_is_recorded(home4: Path) -> None:
    schedule("vol-2.19")
    assert runner.invoke(app, ["send", "vol-2.20", "--yes"]).exit_code == 0  # newer one first
    move_due(home4, "vol-2.19", dt.timedelta(minutes=1))
    result = runner.invoke(app, ["run-due"])
    assert result.exit_code == 4
    assert "vol-2.19 is older than vol-2.20" in result.stderr
    assert copies(home4, "vol-2.19") == 0
    status = runner.invoke(app, ["status", "vol-2.19"]).stdout
    assert status.startswith("schedule: failed for ")
    assert "is older than vol-2.20" in status
