"""Gates before a real send: shown with the plan, enforced with --yes and without a terminal."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from newsletter.cli.send_gates import issue_gates, volume_key
from newsletter.compose.issuefile import load_issue
from tests.support.archivekit import write_variant
from tests.support.sendkit import address, write_subscribers

runner = CliRunner()


@pytest.fixture
def outbox(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "outbox")
    write_subscribers(home / "subscribers" / "subscribers.csv", 4)
    write_variant(home, "2.20", "2023-10-27")
    return home


def delivered(home: Path, slug: str) -> int:
    return len(list((home / "outbox" / slug).glob("*.eml")))


def test_warnings_are_counted_in_the_plan_and_strict_refuses_them(outbox: Path) -> None:
    shown = runner.invoke(app, ["send", "vol-2.19", "--dry-run"])
    assert shown.exit_code == 0, shown.output
    assert "check:      19 warnings (`newsletter check vol-2.19` lists them)" in shown.stdout
    refused = runner.invoke(app, ["send", "vol-2.19", "--yes", "--strict"])
    assert refused.exit_code == 4
    assert refused.stderr.startswith(
        "error: vol-2.19: not sending: 19 warnings, and --strict refuses warnings\n"
    )
    assert delivered(outbox, "vol-2.19") == 0


def test_an_issue_older_than_one_already_sent_is_refused_unless_forced(outbox: Path) -> None:
    assert runner.invoke(app, ["send", "vol-2.20", "--yes"]).exit_code == 0
    refused = runner.invoke(app, ["send", "vol-2.19", "--yes"])
    assert refused.exit_code == 4
    assert refused.stderr.splitlines()[0] == (
        "error: vol-2.19: not sending: vol-2.19 is older than vol-2.20, which was already sent"
    )
    assert "--force sends vol-2.19 anyway" in refused.stderr
    assert delivered(outbox, "vol-2.19") == 0
    forced = runner.invoke(app, ["send", "vol-2.19", "--yes", "--force"])
    assert forced.exit_code == 0, forced.output
    assert "which was already sent; sending anyway (--force)" in forced.stdout
    assert delivered(outbox, "vol-2.19") == 4


def test_the_recipient_set_is_compared_with_the_last_issue_sent(outbox: Path) -> None:
    assert runner.invoke(app, ["send", "vol-2.19", "--yes"]).exit_code == 0
    csv = outbox / "subscribers" / "subscribers.csv"
    text = csv.read_text()
    lines = text.splitlines(keepends=True)
    lines[1] = lines[1].replace(",active,", ",bounced,")
    lines[2] = lines[2].replace(",active,", ",unsubscribed,")
    del lines[3]
    lines.append(f"{address(7)},New Reader,active,import,,,\n")
    lines.append(f"{address(8)},Newer Reader,active,import,,,\n")
    csv.write_text("".join(lines))
    result = runner.invoke(app, ["send", "vol-2.20", "--dry-run"])
    assert result.exit_code == 0, result.output
    assert (
        "check:      recipients since vol-2.19: 2 added, 3 removed "
        "(1 bounced, 1 unsubscribed, 1 deleted from the list)"
    ) in result.stdout


def test_dates_far_from_today_are_warned_about(home: Path) -> None:
    issue = load_issue(home / "issues" / "vol-2.19.yaml")
    today = dt.date(2026, 12, 1)
    (gate,) = issue_gates(issue, [], [], strict=False, force=False, today=today)
    assert gate.message == "vol-2.19 is dated 2023-10-13, 1,145 days ago"
    assert not gate.refuses
    ahead = issue_gates(issue, [], [], strict=False, force=False, today=dt.date(2023, 9, 1))
    assert [g.message for g in ahead] == ["vol-2.19 is dated 2023-10-13, 42 days ahead"]
    assert issue_gates(issue, [], [], strict=False, force=False, today=issue.date) == []


def test_volumes_order_numerically() -> None:
    assert volume_key("vol-2.9") < volume_key("vol-2.10") < volume_key("vol-3.1")  # type: ignore[operator]
    assert volume_key("special") is None


def test_a_lost_journal_is_refused_while_the_outbox_shows_the_send(outbox: Path) -> None:
    assert runner.invoke(app, ["send", "vol-2.19", "--yes"]).exit_code == 0
    (outbox / ".newsletter" / "journal.sqlite3").unlink()
    for extra in ("-wal", "-shm"):
        (outbox / ".newsletter" / f"journal.sqlite3{extra}").unlink(missing_ok=True)
    refused = runner.invoke(app, ["send", "vol-2.19", "--yes"])
    assert refused.exit_code == 4, refused.output
    first = refused.stderr.splitlines()[0]
    assert first.startswith("error: vol-2.19: not sending: the send journal knows of 0 sent, ")
    assert "outbox/vol-2.19/ holds 4 messages" in first
    assert "--journal-lost" in refused.stderr
    assert delivered(outbox, "vol-2.19") == 4
    again = runner.invoke(app, ["send", "vol-2.19", "--yes", "--journal-lost"])
    assert again.exit_code == 0, again.output
    assert "sending anyway (--journal-lost)" in again.stdout


def test_the_send_record_outlives_a_journal_without_its_outbox(outbox: Path) -> None:
    """SMTP and SendGrid leave no outbox: the send record in build/ is the evidence."""
    assert runner.invoke(app, ["send", "vol-2.19", "--yes"]).exit_code == 0
    for eml in (outbox / "outbox" / "vol-2.19").glob("*.eml"):
        eml.unlink()
    (outbox / ".newsletter" / "journal.sqlite3").write_bytes(b"")  # truncated to nothing
    for extra in ("-wal", "-shm"):
        (outbox / ".newsletter" / f"journal.sqlite3{extra}").unlink(missing_ok=True)
    refused = runner.invoke(app, ["send", "vol-2.19", "--yes"])
    assert refused.exit_code == 4, refused.output
    assert "reached 4 readers (build/.sends.json)" in refused.stderr
    assert delivered(outbox, "vol-2.19") == 0


def test_a_test_copy_is_no_evidence_of_a_send(outbox: Path) -> None:
    """The README's order: a test copy to yourself, then the real send."""
    test = runner.invoke(app, ["send", "vol-2.19", "--to", "me@example.org"])
    assert test.exit_code == 0, test.output
    assert len(list((outbox / "outbox" / "vol-2.19" / "test").glob("*.eml"))) == 1
    assert delivered(outbox, "vol-2.19") == 0
    real = runner.invoke(app, ["send", "vol-2.19", "--yes"])
    assert real.exit_code == 0, real.output
    assert delivered(outbox, "vol-2.19") == 4
