"""A 100,000-reader SendGrid send at concurrency 16 stopped while its list is read ahead
(in a forked child) and first synced, or killed with requests in flight: the command ends
with no child left behind, the journal holds no half sync, and the same command resumed
reaches every reader exactly once, or reports the few it cannot be sure of."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from tests.cli.test_send_sendgrid_cli import _start as start_send
from tests.cli.test_send_sendgrid_cli import each_once_or_uncertain, resume
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import write_subscribers

KEY = "SG.stop-test"
READERS = 100_000


def _start(home: Path, server: SendGridServer) -> subprocess.Popen[str]:
    return start_send(home, server, concurrency=16, timeout=20)


def _journal_rows(home: Path) -> int:
    path = home / ".newsletter" / "journal.sqlite3"
    if not path.exists():
        return -1
    db = sqlite3.connect(path)  # (read-write: a killed writer's WAL may need recovery)
    try:
        made = db.execute("SELECT 1 FROM sqlite_master WHERE name = 'deliveries'")
        if made.fetchone() is None:
            return -1  # killed between the file's creation and its schema
        return int(db.execute("SELECT count(*) FROM deliveries").fetchone()[0])
    finally:
        db.close()


@pytest.mark.slow
@pytest.mark.parametrize("early", [0.6, 1.5])
def test_kill_9_during_read_ahead_and_in_flight_then_resume(home: Path, early: float) -> None:
    emails = write_subscribers(home / "subscribers" / "subscribers.csv", READERS)
    with SendGridServer(KEY, latency=0.05) as server:
        server.keep_bodies = False
        # 1: killed early (list read ahead, first sync under way or just done)
        proc = _start(home, server)
        time.sleep(early)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        print("early kill at", early, "s: journal rows", _journal_rows(home))
        assert _journal_rows(home) in (-1, 0, READERS), "a first sync half written"
        # 2, 3: killed with requests in flight
        for at in (30_000, 70_000):
            proc = _start(home, server)
            deadline = time.monotonic() + 300
            while server.recipients_accepted < at or server.concurrent == 0:
                if proc.poll() is not None:
                    out, err = proc.communicate()
                    raise AssertionError(out + err)
                assert time.monotonic() < deadline
                time.sleep(0.005)
            proc.send_signal(signal.SIGKILL)
            proc.communicate()
        uncertain, counts, out, err = resume(home, server, timeout=600)
        each_once_or_uncertain(server, emails, uncertain)
    assert counts["sent"] + counts["uncertain"] == READERS, counts
    assert counts["in_flight"] == 0 and counts["pending"] == 0, counts
    if uncertain:
        assert "uncertain" in out + err


def left_in(home: Path) -> list[int]:
    """Processes still running in ``home`` (the send's forked children)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        if int(pid) == os.getpid():
            continue  # (this test runs in home too)
        try:
            if os.readlink(f"/proc/{pid}/cwd") == str(home):
                state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
                if state != "Z":
                    found.append(int(pid))
        except OSError:
            continue
    return found


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("early", [0.1])
def test_stop_during_read_ahead(home: Path, sig: signal.Signals, early: float) -> None:
    emails = write_subscribers(home / "subscribers" / "subscribers.csv", READERS)
    with SendGridServer(KEY, latency=0.05) as server:
        server.keep_bodies = False
        proc = _start(home, server)
        journal = home / ".newsletter" / "journal.sqlite3"
        while not journal.exists() and proc.poll() is None:
            time.sleep(0.002)
        time.sleep(early)  # from the journal's opening: its first sync is under way
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=60)
        assert "Traceback" not in err, err
        until = time.monotonic() + 10
        while left_in(home) and time.monotonic() < until:
            time.sleep(0.1)
        for pid in left_in(home):
            print(
                "LEFT",
                pid,
                Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200],
                Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[:3],
            )
        assert left_in(home) == [], "a child of the send outlived it"
        rows = _journal_rows(home)
        print(
            sig.name,
            early,
            "exit",
            proc.returncode,
            "rows",
            rows,
            "sent",
            server.recipients_accepted,
        )
        assert rows in (-1, 0, READERS)
        resumed = _start(home, server)
        out, err = resumed.communicate(timeout=600)
        assert resumed.returncode == 0, out + err
        copies = server.copies()
    assert all(copies[e] == 1 for e in emails)
