"""A real send publishes the issue's archive page first: "view in browser" works at once."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from tests.support.archivekit import make_draft
from tests.support.sendkit import write_subscribers

runner = CliRunner()


@pytest.fixture
def draft(home: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("NEWSLETTER_TRANSPORT", "outbox")
    write_subscribers(home / "subscribers" / "subscribers.csv", 2)
    make_draft(home, "2.20", "2023-10-27")
    return home


def test_real_send_writes_the_page_before_the_first_message(draft: Path) -> None:
    page = draft / "build" / "archive" / "vol-2.20.html"
    result = runner.invoke(app, ["send", "vol-2.20", "--yes"])
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    published = lines.index("archive page: build/archive/vol-2.20.html")
    assert published < next(i for i, line in enumerate(lines) if "sent 2" in line)
    assert page.is_file()
    index = (draft / "build" / "archive" / "index.html").read_text()
    assert 'href="vol-2.20.html"' in index
    # and `newsletter archive` keeps it: the journal now says it went out
    again = runner.invoke(app, ["archive"])
    assert again.exit_code == 0, again.output
    assert "left out" not in again.stderr
    assert page.is_file()


def test_dry_run_and_test_send_publish_nothing(draft: Path) -> None:
    assert runner.invoke(app, ["send", "vol-2.20", "--dry-run"]).exit_code == 0
    assert runner.invoke(app, ["send", "vol-2.20", "--to", "me@example.org"]).exit_code == 0
    assert not (draft / "build" / "archive").exists()


def test_a_failed_archive_build_warns_and_the_send_goes_on(draft: Path) -> None:
    (draft / "build" / "archive").mkdir(parents=True)
    (draft / "build" / "archive" / "vol-2.20.html").mkdir()  # a page that cannot be written
    result = runner.invoke(app, ["send", "vol-2.20", "--yes"])
    assert result.exit_code == 0, result.output
    assert result.stderr.startswith("warning: archive not updated: ")
    assert "run `newsletter archive` after the send" in result.stderr
    assert len(list((draft / "outbox" / "vol-2.20").glob("*.eml"))) == 2
