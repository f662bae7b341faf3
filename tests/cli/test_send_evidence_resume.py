"""The send record (build/.sends.json) is evidence that a send began, kept apart from the
journal. It is written once the first recipients are committed in flight, just before
they leave: a send stopped before that, or whose every request SendGrid refused, is
resumed by the same command, never refused as a lost journal."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from newsletter.cli.send_evidence import evidence_gate, note_send
from newsletter.delivery.journal import Journal
from tests.cli.test_send_sendgrid_cli import KEY, _start
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import make_settings, send_env, write_subscribers

ISSUE = "vol-2.19"
COMMAND = [sys.executable, "-m", "newsletter", "send", ISSUE, "--yes"]


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
        # the record is written in the transaction of the first claim: before its commit
        # or after, the journal holds the run the record names
        record = json.loads((home / "build" / ".sends.json").read_text())[ISSUE]
        with Journal(home / ".newsletter" / "journal.sqlite3") as journal:
            assert journal.knows_run(ISSUE, record["run"], record["run_started_at"])
        resumed = _start(home, server)
        out, err = resumed.communicate(timeout=120)
        assert resumed.returncode in (0, 5), out + err  # 5: the killed request is uncertain
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


@pytest.mark.slow
def test_a_refused_run_then_a_later_run_lost_from_the_journal_is_refused(home: Path) -> None:
    """The journal of a refused first run (401) has claimed rows and nothing sent. If a
    later run that reached readers is lost from it (a backup from before that run is put
    back), the record names that run and the journal lacks it: refused, not resent."""
    write_subscribers(home / "subscribers" / "subscribers.csv", 6000)
    state = home / ".newsletter"
    with SendGridServer(KEY, latency=0.05) as server:
        server.keep_bodies = False
        server.script += ["401"] * 3  # (3 in flight at once)
        refused = _start(home, server)
        out, err = refused.communicate(timeout=120)
        assert refused.returncode == 6, out + err
        server.script.clear()
        shutil.copy(state / "journal.sqlite3", home / "backup.sqlite3")  # closed: whole
        proc = _start(home, server)
        deadline = time.monotonic() + 60
        while server.recipients_accepted < 3000:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        while server.concurrent:  # requests the kill left in the API's hands end there
            time.sleep(0.01)
        reached = server.recipients_accepted
        for extra in ("-wal", "-shm"):
            (state / f"journal.sqlite3{extra}").unlink(missing_ok=True)
        shutil.copy(home / "backup.sqlite3", state / "journal.sqlite3")
        again = _start(home, server)
        out, err = again.communicate(timeout=120)
        assert again.returncode == 4, out + err
        assert "is not in the journal" in err and "--journal-lost" in err
        assert server.recipients_accepted == reached  # nobody mailed twice


def test_a_send_record_that_cannot_be_written_claims_nothing(home: Path) -> None:
    """The record is written in the transaction that claims the first recipients: when it
    cannot be, nothing is claimed (no reader is left \"uncertain\"), and once the folder is
    fixed the same command sends to everyone."""
    write_subscribers(home / "subscribers" / "subscribers.csv", 40)
    record = home / "build" / ".sends.json"
    record.mkdir(parents=True)  # a folder where the file goes
    env = send_env()
    first = subprocess.run(COMMAND, cwd=home, env=env, capture_output=True, text=True)
    assert first.returncode == 4, first.stdout + first.stderr
    assert "cannot write the send record" in first.stderr and "Traceback" not in first.stderr
    counts = states(home)
    assert counts["pending"] == 40 and counts["in_flight"] + counts["uncertain"] == 0
    record.rmdir()
    again = subprocess.run(COMMAND, cwd=home, env=env, capture_output=True, text=True)
    assert again.returncode == 0, again.stdout + again.stderr
    assert states(home)["sent"] == 40
    assert len(list((home / "outbox" / ISSUE).glob("*.eml"))) == 40


def test_the_record_names_the_run_and_the_gate_asks_the_journal_for_it(home: Path) -> None:
    settings = make_settings(home)
    note_send(settings, ISSUE, 0)  # a run that handed off nothing leaves no record
    assert not (home / "build" / ".sends.json").exists()
    note_send(settings, ISSUE, 0, run=(7, "2026-12-01T10:00:00+00:00"))
    asked: list[tuple[int, str]] = []

    def knows(run: int, at: str) -> bool:
        asked.append((run, at))
        return run == 7

    assert evidence_gate(settings, ISSUE, 0, journal_lost=False, knows_run=knows) is None
    assert asked == [(7, "2026-12-01T10:00:00+00:00")]
    note_send(settings, ISSUE, 0, run=(8, "2026-12-01T11:00:00+00:00"))
    lost = evidence_gate(settings, ISSUE, 25, journal_lost=False, knows_run=knows)
    assert lost is not None and lost.refuses and "its run 8 of" in lost.message
    note_send(settings, ISSUE, 40)  # the end of a run that reached 40
    lost = evidence_gate(settings, ISSUE, 12, journal_lost=False, knows_run=lambda r, a: True)
    assert lost is not None and lost.refuses and "reached 40 readers" in lost.message


def test_a_record_of_an_older_version_without_its_run_is_read_as_before(home: Path) -> None:
    settings = make_settings(home)
    path = home / "build" / ".sends.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({ISSUE: {"started_at": "2026-11-01T09:00:00+00:00", "sent": 0}}))
    lost = evidence_gate(settings, ISSUE, 0, journal_lost=False, knows_run=lambda r, a: True)
    assert lost is not None and lost.refuses
    sent_some = evidence_gate(settings, ISSUE, 3, journal_lost=False, knows_run=lambda r, a: True)
    assert sent_some is None


def test_the_journal_knows_its_own_runs_only(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        run = journal.begin_run(ISSUE, "outbox")
        (at,) = journal.db.execute("SELECT started_at FROM runs WHERE id = ?", (run,)).fetchone()
        assert journal.knows_run(ISSUE, run, at)
        assert not journal.knows_run(ISSUE, run, "2020-01-01T00:00:00+00:00")
        assert not journal.knows_run("vol-9.9", run, at)
        assert not journal.knows_run(ISSUE, run + 1, at)


@pytest.mark.slow
@pytest.mark.parametrize("readers", [3000, 30_000])
def test_a_killed_run_whose_wal_is_lost_is_refused_not_resent(home: Path, readers: int) -> None:
    """kill -9 mid-send, then the journal's -wal is lost (a crash, a copy of the file
    alone): no checkpoint ran during the run, so the file lacks the run the record names
    and the next send refuses, whatever part of it had reached readers. (With automatic
    checkpoints a 30,000-reader run left part of itself in the file, and the re-run mailed
    thousands again.)"""
    write_subscribers(home / "subscribers" / "subscribers.csv", readers)
    state = home / ".newsletter"
    with SendGridServer(KEY, latency=0.05) as server:
        server.keep_bodies = False
        proc = _start(home, server)
        deadline = time.monotonic() + 120
        while server.recipients_accepted < readers * 2 // 3:
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.communicate()
        while server.concurrent:
            time.sleep(0.01)
        reached = server.recipients_accepted
        for extra in ("-wal", "-shm"):
            (state / f"journal.sqlite3{extra}").unlink(missing_ok=True)
        again = _start(home, server)
        out, err = again.communicate(timeout=300)
        assert again.returncode == 4, out + err
        assert "is not in the journal" in err
        assert server.recipients_accepted == reached


def test_sends_of_several_issues_at_once_keep_each_others_records(home: Path) -> None:
    """Each send reads the record, changes its issue's entry and writes it back: without
    one writer at a time, two issues sent at once dropped each other's evidence."""
    settings = make_settings(home)
    slugs = [f"vol-3.{n}" for n in range(60)]

    def send(part: list[str]) -> None:
        for n, slug in enumerate(part):
            note_send(settings, slug, 0, run=(n + 1, "2026-12-01T10:00:00+00:00"))

    threads = [threading.Thread(target=send, args=(slugs[i::6],)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    record = json.loads((home / "build" / ".sends.json").read_text())
    assert sorted(record) == sorted(slugs)
