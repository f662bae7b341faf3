"""`newsletter signups ...`: process a folder, the review queue (review, show, approve,
reject, ignore), payloads the web server kept, configuration errors and help."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from newsletter.config import Settings
from newsletter.errors import ExitCode
from tests.support.signupkit import SECRET, load, seed, statuses


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    """Start from an empty subscriber list (the home's sample list is someone else's)."""
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


runner = CliRunner()


@pytest.fixture
def cli_home(settings: Settings, home: Path) -> Iterator[Path]:
    (home / ".env").write_text(
        "NEWSLETTER_FROM=US-Japan Alliance Digest <digest@example.org>\n"
        "NEWSLETTER_CONTACT=digest@example.org\n"
        "NEWSLETTER_PUBLIC_URL=https://digest.example.org\n"
        f"NEWSLETTER_SECRET_KEY={SECRET}\n"
    )
    yield home


def test_cli_process_review_show_and_decide(cli_home: Path, settings: Settings) -> None:
    folder = cli_home / "mail"
    folder.mkdir()
    for name in ("01-plain-please-add-me.eml", "20-unsubscribe-colleague.eml", "22-question.eml"):
        (folder / name).write_bytes(load(name))

    result = runner.invoke(app, ["signups", "process", "--source", str(folder)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "[1] 01-plain-please-add-me.eml: confirmation sent: confirmation sent to alice@example.com"
    )
    assert lines[1].startswith("[2] 20-unsubscribe-colleague.eml: review: carol@example.com")
    assert lines[2].startswith("[3] 22-question.eml: review: a question about subscribing")
    assert lines[3] == (
        f"folder:{folder}: 3 messages: 1 confirmation sent, 2 review; "
        "1 confirmation email sent; 2 for review"
    )
    assert lines[4] == "next: newsletter signups review"

    again = runner.invoke(app, ["signups", "process", "--source", str(folder)])
    assert again.output.splitlines() == [f"folder:{folder}: 3 messages: 3 duplicate"]

    review = runner.invoke(app, ["signups", "review"])
    assert review.exit_code == 0
    assert "[2] " in review.output and "from carol@example.com" in review.output
    assert "[3] " in review.output and "PDF" in review.output and "[1] " not in review.output

    show = runner.invoke(app, ["signups", "show", "2"])
    assert show.exit_code == 0
    assert "Please remove bob.lee@example.com from your mailing list" in show.output
    assert "Subject: Staff change" in show.output

    approved = runner.invoke(app, ["signups", "approve", "3"])
    assert approved.exit_code == ExitCode.ERROR
    assert "say what to do with --as" in approved.output

    assert runner.invoke(app, ["signups", "ignore", "3"]).exit_code == 0
    assert runner.invoke(app, ["signups", "reject", "2"]).output == (
        "[2] rejected: nothing was sent or changed\n"
    )
    twice = runner.invoke(app, ["signups", "reject", "2"])
    assert twice.exit_code == ExitCode.ERROR
    assert "error: inbound message [2] is rejected; only open items can be decided" in (
        twice.output
    )
    assert runner.invoke(app, ["signups", "review"]).output == "nothing to review\n"
    missing = runner.invoke(app, ["signups", "show", "99"])
    assert missing.exit_code == ExitCode.ERROR and "no inbound message with id 99" in (
        missing.output
    )


def test_cli_approve_an_unsubscribe_for_a_colleague(cli_home: Path, settings: Settings) -> None:
    seed(settings, ["bob.lee@example.com"])
    folder = cli_home / "mail"
    folder.mkdir()
    (folder / "20.eml").write_bytes(load("20-unsubscribe-colleague.eml"))
    runner.invoke(app, ["signups", "process", "--source", str(folder)])
    assert statuses(settings)["bob.lee@example.com"] == "active"
    result = runner.invoke(app, ["signups", "approve", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == ("[1] approved as unsubscribe: bob.lee@example.com: unsubscribed\n")
    assert statuses(settings)["bob.lee@example.com"] == "unsubscribed"


def test_cli_process_without_source_or_imap_is_a_config_error(cli_home: Path) -> None:
    result = runner.invoke(app, ["signups", "process"])
    assert result.exit_code == ExitCode.CONFIG
    assert "error: NEWSLETTER_IMAP_HOST is not set" in result.output
    assert "Traceback" not in result.output


def test_cli_process_without_secret_is_a_config_error(home: Path) -> None:
    result = runner.invoke(app, ["signups", "process", "--source", str(home)])
    assert result.exit_code == ExitCode.CONFIG
    assert "NEWSLETTER_SECRET_KEY is not set" in result.output


@pytest.mark.parametrize("command", ["process", "review", "show", "approve", "reject", "ignore"])
def test_cli_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, ["signups", command, "--help"])
    assert result.exit_code == 0
    assert len(result.output) > 200


def test_review_reports_payloads_the_web_server_kept(cli_home: Path, settings: Settings) -> None:
    kept = cli_home / ".newsletter" / "inbound-unprocessed"
    kept.mkdir(parents=True)
    (kept / "ab12.eml").write_bytes(load("01-plain-please-add-me.eml"))
    (kept / "ab12.eml.txt").write_text("reason: list locked\n")
    (kept / "cd34.form").write_bytes(b"garbage")
    result = runner.invoke(app, ["signups", "review"])
    assert result.exit_code == 0, result.output
    folder = Path(".newsletter/inbound-unprocessed")
    assert result.output.splitlines() == [
        f"2 inbound payload(s) kept by `newsletter serve` in {folder}/ "
        "(the .txt beside each says why)",
        f"  retry the 1 .eml message(s): newsletter signups process --source {folder}",
        "  1 .form payload(s) could not be read at all: read them by hand",
        "nothing to review",
    ]
