"""kill -9 of a pipelined SMTP send (the engine, eight connections), again and again:
every reader gets one copy, or is reported uncertain and got at most one; never more
in doubt than connections; the messages in doubt are the ones that were on the wire."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from newsletter.delivery.journal import Journal
from tests.cli.test_send_cli import _start, _wait_for, server, smtp_env
from tests.support.sendkit import write_subscribers
from tests.support.smtp_server import SmtpServer

__all__ = ["server"]  # the fixture, shared with test_send_cli


@pytest.mark.slow
def test_kill_9_again_and_again_then_resume_never_sends_twice(
    home: Path, server: SmtpServer
) -> None:
    emails = write_subscribers(home / "subscribers" / "subscribers.csv", 600)
    server.handler.delay = 0.003
    env = {**smtp_env(server.port), "NEWSLETTER_CONCURRENCY": "8"}
    journal_path = home / ".newsletter" / "journal.sqlite3"
    doubts: set[str] = set()
    for target in (80, 240, 400):
        proc = _start(home, env)
        _wait_for(server, target, proc)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        with Journal(journal_path) as journal:
            in_flight = {r.email for r in journal.rows("vol-2.19", ("in_flight",))}
        assert len(in_flight) <= 8  # at most one a connection, as the kill left them
        doubts |= in_flight
    resumed = _start(home, env)
    out, err = resumed.communicate(timeout=120)
    with Journal(journal_path) as journal:
        uncertain = {r.email for r in journal.rows("vol-2.19", ("uncertain",))}
        counts = journal.counts("vol-2.19")
    assert resumed.returncode == (5 if uncertain else 0), out + err
    assert uncertain == doubts  # exactly the ones in flight at a kill, reported
    copies = server.handler.copies()
    for email in emails:
        if email in uncertain:
            assert copies[email] <= 1, email
        else:
            assert copies[email] == 1, email
    assert counts["sent"] + counts["uncertain"] == 600
