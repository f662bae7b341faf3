"""Staged sends: the seed list and a canary first, --hold, then the rest, never twice."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from tests.support.archivekit import write_variant
from tests.support.sendkit import address, write_subscribers

runner = CliRunner()


@pytest.fixture
def twenty(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "outbox")
    write_subscribers(home / "subscribers" / "subscribers.csv", 20)
    write_variant(home, "2.20", "2023-10-27")
    return home


def received(home: Path) -> list[str]:
    """Who has a copy of vol-2.20 (the outbox names each file after its reader)."""
    folder = home / "outbox" / "vol-2.20"
    return sorted(p.name for p in folder.glob("*.eml")) if folder.is_dir() else []


def test_canary_hold_then_the_rest_each_reader_once(twenty: Path) -> None:
    first = runner.invoke(app, ["send", "vol-2.20", "--canary", "5", "--hold", "--yes"])
    assert first.exit_code == 0, first.output
    assert "stage: canary of 5, 5 readers" in first.stdout
    assert "held: 15 readers still to send" in first.stdout
    canary = received(twenty)
    assert len(canary) == 5
    rest = runner.invoke(app, ["send", "vol-2.20", "--yes"])
    assert rest.exit_code == 0, rest.output
    assert "recipients: 15 new, 5 already sent" in rest.stdout
    everyone = received(twenty)
    assert len(everyone) == 20 and set(canary) <= set(everyone)


def test_the_canary_is_random_but_the_same_for_the_issue(twenty: Path) -> None:
    from newsletter.cli.send_stages import canary_keys
    from newsletter.delivery.journal import Journal

    with Journal(twenty / "j.sqlite3") as journal:
        journal.sync("vol-2.20", [(address(i), address(i), "") for i in range(20)])
        journal.sync("vol-2.21", [(address(i), address(i), "") for i in range(20)])
        once = canary_keys(journal, "vol-2.20", 5)
        assert canary_keys(journal, "vol-2.20", 5) == once
        assert once != [address(i) for i in range(5)]  # not simply the first five
        assert canary_keys(journal, "vol-2.21", 5) != once  # another issue, other readers


def test_without_hold_the_rest_follows_the_canary(twenty: Path) -> None:
    result = runner.invoke(app, ["send", "vol-2.20", "--canary", "3", "--yes"])
    assert result.exit_code == 0, result.output
    assert "stage: canary of 3, 3 readers" in result.stdout
    assert "done: vol-2.20 sent to 20 recipients" in result.stdout
    assert len(received(twenty)) == 20


def test_seed_readers_go_first(twenty: Path) -> None:
    csv = twenty / "subscribers" / "subscribers.csv"
    lines = csv.read_text().splitlines()
    lines[0] += ",tags"
    lines[1:] = [line + (",seed; team" if i in (2, 7) else ",") for i, line in enumerate(lines[1:])]
    csv.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["send", "vol-2.20", "--seed", "--hold", "--yes"])
    assert result.exit_code == 0, result.output
    assert "stage: seed list, 2 readers" in result.stdout
    assert len(received(twenty)) == 2
    assert runner.invoke(app, ["send", "vol-2.20", "--yes"]).exit_code == 0
    assert len(received(twenty)) == 20


def test_seed_without_tagged_readers_is_refused(twenty: Path) -> None:
    result = runner.invoke(app, ["send", "vol-2.20", "--seed", "--yes"])
    assert result.exit_code == 4
    assert "no pending reader is tagged 'seed'" in result.stderr
    assert received(twenty) == []


def test_hold_alone_is_a_usage_error(twenty: Path) -> None:
    result = runner.invoke(app, ["send", "vol-2.20", "--hold", "--yes"])
    assert result.exit_code == 2
    assert "--hold needs --seed or --canary" in result.stderr
