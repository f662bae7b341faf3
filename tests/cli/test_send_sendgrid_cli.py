"""`newsletter send` through SendGrid with requests in flight side by side, killed."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.delivery.journal import Journal
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import send_env, write_subscribers

KEY = "SG.crash-test"
CONCURRENCY = 3


@pytest.fixture
def server() -> Iterator[SendGridServer]:
    with SendGridServer(KEY, latency=0.4) as srv:
        srv.keep_bodies = False
        yield srv


def _start(
    home: Path, server: SendGridServer, concurrency: int = CONCURRENCY, timeout: int = 10
) -> subprocess.Popen[str]:
    """`newsletter send vol-2.19 --yes` through ``server``, in a process of its own."""
    env = send_env(
        NEWSLETTER_TRANSPORT="sendgrid",
        SENDGRID_API_KEY=server.api_key,
        SENDGRID_API_HOST=server.url,
        SENDGRID_TIMEOUT=str(timeout),
        NEWSLETTER_CONCURRENCY=str(concurrency),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "newsletter", "send", "vol-2.19", "--yes"],
        cwd=home,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def each_once_or_uncertain(server: SendGridServer, emails: list[str], uncertain: set[str]) -> None:
    """Every reader got exactly one copy, but those reported uncertain: at most one."""
    copies = server.copies()
    for email in emails:
        if email in uncertain:
            assert copies[email] <= 1, email
        else:
            assert copies[email] == 1, email


def resume(
    home: Path, server: SendGridServer, *, timeout: float
) -> tuple[set[str], dict[str, int], str, str]:
    """The same command again after a kill: its exit is 5 when the journal reports some
    recipients uncertain, else 0. Returns those, the counts, and what it printed."""
    resumed = _start(home, server)
    out, err = resumed.communicate(timeout=timeout)
    with Journal(home / ".newsletter" / "journal.sqlite3") as journal:
        uncertain = {r.email for r in journal.rows("vol-2.19", ("uncertain",))}
        counts = journal.counts("vol-2.19")
    assert resumed.returncode == (5 if uncertain else 0), out + err
    return uncertain, counts, out, err


@pytest.mark.slow
def test_kill_9_with_requests_in_flight_then_resume(home: Path, server: SendGridServer) -> None:
    emails = write_subscribers(home / "subscribers" / "subscribers.csv", 7000)
    proc = _start(home, server)
    deadline = time.monotonic() + 60
    # the first requests are answered and the next ones are on their way: kill now
    while server.recipients_accepted < 3000 or server.concurrent == 0:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(out + err)
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert server.max_concurrent > 1
    proc.send_signal(signal.SIGKILL)
    proc.communicate()

    uncertain, counts, out, err = resume(home, server, timeout=120)
    # the doubt is the requests in flight at the kill, not the whole send
    assert len(uncertain) % 1000 == 0 and len(uncertain) <= CONCURRENCY * 1000
    each_once_or_uncertain(server, emails, uncertain)
    assert counts["sent"] + counts["uncertain"] == 7000
    assert counts["in_flight"] == 0
