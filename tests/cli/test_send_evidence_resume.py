"""The send record (build/.sends.json) is evidence that a send began, kept apart from the
journal. It is written once the first recipients are committed in flight, just before
they leave: a send stopped before that, or whose every request SendGrid refused, is
resumed by the same command, never refused as a lost journal."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path

import pytest

from newsletter.cli.send_evidence import evidence_gate, note_send
from newsletter.delivery.journal import Journal
from tests.cli.test_send_sendgrid_cli import KEY, _start
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import make_settings, write_subscribers

ISSUE = "vol-2.19"


def noted(home: Path) -> bool:
    try:
        return ISSUE in json.loads((home / "build" / ".sends.json").read_text())
    except (OSError, ValueError):
        return False


def states(home: Path) -> dict[str, int]:
    with Journal(home / ".newsletter" / "journal.sqlite3") as journal:
        return journal.counts(ISSUE)


@pytest.mark.slow
def test_a_send_killed_as_it_notes_its_start_resumes(home: Path) -> None:
    emails = write_subscribers(home / "subscribers" / "subscribers.csv", 3000)
    with SendGridServer(KEY) as server:
        server.keep_bodies = False
        server.script += ["hang"]  # the first request is slow: the kill lands before it ends
        server.hang_seconds = 3
        proc = _start(home, server)
        deadline = time.monotonic() + 60
        while not noted(home):
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline
            time.sleep(0.001)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        # the record is written after the first claim committed: the journal knows it
        assert states(home)["in_flight"] > 0
        resumed = _start(home, server)
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode == 5, out + err  # done; the killed request is uncertain
        assert "journal may have been deleted" not in out + err
        copies = server.copies()
    assert all(copies[e] <= 1 for e in emails)
    counts = states(home)
    assert counts["sent"] + counts["uncertain"] == len(emails) and counts["pending"] == 0


@pytest.mark.slow
def test_a_refused_api_key_then_the_right_one_sends_to_everyone(home: Path) -> None:
    """SendGrid answers 401 to the first request: nothing went out, and after the key is
    fixed the same command sends, with no --journal-lost."""
    emails = write_subscribers(home / "subscribers" / "subscribers.csv", 1500)
    with SendGridServer(KEY) as server:
        server.keep_bodies = False
        server.script += ["401", "401"]  # both requests (3 may be in flight at once)
        refused = _start(home, server)
        out, err = refused.communicate(timeout=120)
        assert refused.returncode == 6, out + err
        assert server.recipients_accepted == 0
        server.script.clear()  # the key is fixed
        again = _start(home, server)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 0, out + err
        copies = server.copies()
    assert sorted(copies) == sorted(e.lower() for e in emails)
    assert set(copies.values()) == {1}


def test_the_record_needs_a_hand_off_and_a_journal_that_never_claimed_is_refused(
    home: Path,
) -> None:
    settings = make_settings(home)
    note_send(settings, ISSUE, 0)  # a run that handed off nothing leaves no record
    assert not (home / "build" / ".sends.json").exists()
    note_send(settings, ISSUE, 0, started=True)
    assert evidence_gate(settings, ISSUE, 0, journal_lost=False, ever_claimed=lambda: True) is None
    lost = evidence_gate(settings, ISSUE, 0, journal_lost=False, ever_claimed=lambda: False)
    assert lost is not None and lost.refuses  # a new journal: the old one may be lost
    note_send(settings, ISSUE, 40)
    lost = evidence_gate(settings, ISSUE, 12, journal_lost=False, ever_claimed=lambda: True)
    assert lost is not None and lost.refuses and "reached 40 readers" in lost.message
