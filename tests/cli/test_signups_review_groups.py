"""`newsletter signups review` shows reports about mail we sent in their own group."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from newsletter.cli.app import app
from newsletter.config import Settings
from tests.support.signupkit import SECRET, load, seed, statuses

runner = CliRunner()


def test_bounces_are_their_own_group(home: Path, settings: Settings) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    (home / ".env").write_text(
        "NEWSLETTER_FROM=US-Japan Alliance Digest <digest@example.org>\n"
        f"NEWSLETTER_SECRET_KEY={SECRET}\n"
    )
    seed(settings, ["victor@example.com", "wendy@example.net"])
    folder = home / "mail"
    folder.mkdir()
    for name in ("22-question.eml", "27-dsn-5.1.1.eml", "28-dsn-4.x-delayed.eml"):
        (folder / name).write_bytes(load(name))
    assert runner.invoke(app, ["signups", "process", "--source", str(folder)]).exit_code == 0

    result = runner.invoke(app, ["signups", "review"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    first = lines.index("== requests and other mail (1) ==")
    second = lines.index("== bounces and delivery reports (2) ==")
    assert first == 0 and second > first
    assert lines[first + 1].startswith("[1] ")
    assert [line[:4] for line in lines[second:] if line.startswith("[")] == ["[2] ", "[3] "]
    assert "    bounce: permanent delivery failure for Victor@example.com" in lines
    assert lines[-1].startswith("3 items; decide with")

    approved = runner.invoke(app, ["signups", "approve", "3"])
    assert approved.output == "[3] approved as bounce: wendy@example.net: bounced\n"
    assert statuses(settings) == {"victor@example.com": "active", "wendy@example.net": "bounced"}
