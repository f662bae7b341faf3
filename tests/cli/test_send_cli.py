from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.cli.app import app
from newsletter.delivery.journal import Journal
from tests.support.sendkit import SEND_ENV, address, send_env, write_subscribers
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as srv:
        yield srv


def smtp_env(port: int) -> dict[str, str]:
    env = dict(SEND_ENV)
    env.update(
        NEWSLETTER_TRANSPORT="smtp",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT=str(port),
        SMTP_SECURITY="none",
        SMTP_TIMEOUT="5",
        NEWSLETTER_CONCURRENCY="2",
    )
    return env


def invoke(args: list[str], env: dict[str, str], monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    return CliRunner().invoke(app, args)


def test_send_refuses_without_a_terminal_or_yes(
    home: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 3)
    result = invoke(["send", "vol-2.19"], smtp_env(server.port), monkeypatch)
    assert result.exit_code == 4
    assert "recipients: 3 new, 0 already sent" in result.stdout
    assert (
        "error: vol-2.19: not sending to 3 recipients without confirmation "
        "(standard input is not a terminal)" in result.stderr
    )
    assert server.handler.messages == []


def test_send_status_and_idempotent_rerun(
    home: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_subscribers(
        home / "subscribers" / "subscribers.csv", 6, inactive={"left@example.net": "unsubscribed"}
    )
    server.handler.sticky[address(4)] = "550 5.1.1 no such user"
    env = smtp_env(server.port)
    result = invoke(["send", "vol-2.19", "--yes"], env, monkeypatch)
    assert result.exit_code == 5, result.output
    assert "transport:  smtp (127.0.0.1:" in result.stdout
    assert "vol-2.19: sent 5, failed 1" in result.stdout
    assert f"failed    {address(4)}: RCPT TO: 550 5.1.1 no such user" in result.stdout
    assert "error: vol-2.19: 1 failed, 0 uncertain, 5 sent" in result.stderr
    assert len(server.handler.messages) == 5
    csv = (home / "subscribers" / "subscribers.csv").read_text()
    assert f"{address(4)},Reader 4,bounced" in csv

    status = invoke(["status", "vol-2.19"], env, monkeypatch)
    assert status.exit_code == 0
    assert "vol-2.19: 5 of 6 sent" in status.stdout
    assert f"  {address(4)}: RCPT TO: 550 5.1.1 no such user (permanent)" in status.stdout

    again = invoke(["send", "vol-2.19", "--yes"], env, monkeypatch)
    assert "nothing to send: vol-2.19 is already sent to 5 recipients" in again.stdout
    assert again.exit_code == 5
    assert len(server.handler.messages) == 5


def test_test_send_and_dry_run_leave_the_journal_alone(
    home: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 4)
    env = smtp_env(server.port)
    result = invoke(["send", "vol-2.19", "--to", "editor@example.org"], env, monkeypatch)
    assert result.exit_code == 0, result.output
    (msg,) = server.handler.messages
    assert msg.rcpt_tos == ["editor@example.org"]
    assert b"Subject: [TEST] US-Japan Alliance Digest" in msg.data
    dry = invoke(["send", "vol-2.19", "--dry-run"], env, monkeypatch)
    assert dry.exit_code == 0, dry.output
    assert "dry run: built 4 messages" in dry.stdout
    assert len(server.handler.messages) == 1
    with Journal(home / ".newsletter" / "journal.sqlite3") as journal:
        assert journal.counts("vol-2.19")["sent"] == 0


def test_an_issue_with_errors_is_refused(
    home: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 2)
    bad = home / "issues" / "vol-9.1.yaml"
    bad.write_text("series: x\nvolume: nope\n", encoding="utf-8")
    result = invoke(["send", "vol-9.1", "--yes"], smtp_env(server.port), monkeypatch)
    assert result.exit_code == 4
    assert "refusing to send vol-9.1: the issue has errors" in result.stderr
    assert "issues/vol-9.1.yaml:" in result.stderr
    assert server.handler.messages == []


def _start(home: Path, env: dict[str, str], *args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", "vol-2.19", "--yes", *args],
        cwd=home,
        env=send_env(**env),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(server: SmtpServer, count: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while len(server.handler.messages) < count:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(out + err)
        assert time.monotonic() < deadline
        time.sleep(0.005)


@pytest.mark.slow
def test_kill_9_mid_send_then_resume_delivers_exactly_once(home: Path, server: SmtpServer) -> None:
    emails = write_subscribers(
        home / "subscribers" / "subscribers.csv", 300, inactive={"gone@example.net": "bounced"}
    )
    server.handler.delay = 0.004
    env = smtp_env(server.port)
    proc = _start(home, env)
    _wait_for(server, 120, proc)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    at_kill = len(server.handler.messages)
    assert at_kill < 300

    resumed = _start(home, env)
    out, err = resumed.communicate(timeout=60)
    with Journal(home / ".newsletter" / "journal.sqlite3") as journal:
        uncertain = {r.email for r in journal.rows("vol-2.19", ("uncertain",))}
        counts = journal.counts("vol-2.19")
    assert resumed.returncode == (5 if uncertain else 0), out + err
    if uncertain:
        assert "left in flight by an interrupted run are now uncertain" in out
    # each outcome is journaled as it comes: the doubt is the messages on the wire
    assert len(uncertain) <= int(env["NEWSLETTER_CONCURRENCY"])
    copies = server.handler.copies()
    for email in emails:
        if email in uncertain:
            assert copies[email] <= 1
        else:
            assert copies[email] == 1, email
    assert "gone@example.net" not in copies
    assert counts["sent"] + counts["uncertain"] == 300

    third = _start(home, env)
    out, err = third.communicate(timeout=60)
    assert "nothing to send" in out
    assert sum(server.handler.copies().values()) == sum(copies.values())


@pytest.mark.slow
def test_ctrl_c_stops_cleanly_and_says_how_to_resume(home: Path, server: SmtpServer) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 200)
    server.handler.delay = 0.004
    env = smtp_env(server.port)
    proc = _start(home, env)
    _wait_for(server, 40, proc)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130, out + err
    assert "re-run `newsletter send vol-2.19` to resume" in err
    with Journal(home / ".newsletter" / "journal.sqlite3") as journal:
        counts = journal.counts("vol-2.19")
    assert counts["in_flight"] == counts["uncertain"] == 0  # a clean stop leaves no doubt
    assert counts["sent"] == len(server.handler.messages)
    resumed = _start(home, env)
    out, err = resumed.communicate(timeout=60)
    assert resumed.returncode == 0, out + err
    assert set(server.handler.copies().values()) == {1}
    assert len(server.handler.copies()) == 200


def test_send_refuses_when_would_be_recipients_are_broken(
    home: Path, server: SmtpServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = home / "subscribers" / "subscribers.csv"
    write_subscribers(csv, 3)
    with csv.open("a", encoding="utf-8") as fh:
        fh.write("bob@example,Bob,active,cli,,,,\n")
    env = smtp_env(server.port)
    result = invoke(["send", "vol-2.19", "--yes"], env, monkeypatch)
    assert result.exit_code == 4
    shown = Path("subscribers") / "subscribers.csv"
    assert f"1 problem in {shown} on rows that would be recipients" in result.stderr
    assert f"  {shown}:5: email: " in result.stderr
    assert "pass --skip-invalid" in result.stderr
    assert server.handler.copies() == {}
    result = invoke(["send", "vol-2.19", "--yes", "--skip-invalid"], env, monkeypatch)
    assert result.exit_code == 0, result.output
    assert sorted(server.handler.copies()) == [address(i) for i in range(3)]


def test_a_disk_error_is_a_message_not_a_traceback(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import errno

    from newsletter.audience.subscribers import SubscriberStore

    def full(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device", "subscribers/subscribers.csv")

    monkeypatch.setattr(SubscriberStore, "add", full)
    result = CliRunner().invoke(app, ["subscribers", "add", "new@example.org"])
    assert result.exit_code == 1
    assert result.stderr == "error: subscribers/subscribers.csv: No space left on device\n"
