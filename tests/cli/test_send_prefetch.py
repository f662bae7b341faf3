"""The list read ahead in a forked child (send_prefetch): the journal, the plan and the
problems are exactly those of the send's own read; any change to the file or the ledger
after the child began, or a child that died, and the send reads the file itself."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers import SubscriberStore
from newsletter.cli import send_prefetch
from newsletter.cli.send_prefetch import ListReadAhead
from newsletter.compose.message import Recipient
from newsletter.delivery.campaign import Campaign, Plan
from newsletter.delivery.journal import Journal
from newsletter.delivery.transports import MockTransport
from tests.support.sendkit import address, make_builder, make_settings, write_subscribers

ROOT = Path(__file__).resolve().parents[2]
READERS = 3000
EXTRA = (
    "\n"  # a blank line
    ",,active,import,,,\n"  # no address
    "not-an-address,,active,import,,,\n"
    f"{address(7).upper()},Dup,active,import,,,\n"  # a duplicate of line 9
    "bad.date@example.org,,active,import,yesterday,,\n"
    "odd.status@example.org,,paused,import,,,\n"
    "gone@example.org,,unsubscribed,import,,,\n"
    "broken@,,unsubscribed,import,,,\n"  # not a recipient anyway: not reported
)


@pytest.fixture(autouse=True)
def small_lists_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(send_prefetch, "MIN_BYTES", 1)


def make_list(home: Path) -> None:
    settings = make_settings(home)
    write_subscribers(
        settings.subscribers_file, READERS, inactive={"left@example.org": "unsubscribed"}
    )
    with settings.subscribers_file.open("a") as fh:
        fh.write(EXTRA)
    make_ledger(home)


def make_ledger(home: Path) -> None:
    """The ledger, made by another process (as by `serve` or an earlier command): this
    one has none open when it forks, as the send has none open when it does."""
    code = (
        "from newsletter.audience.subscribers import SubscriberStore\n"
        "from tests.support.sendkit import make_settings\n"
        "from pathlib import Path\n"
        "import sys\n"
        "SubscriberStore.from_settings(make_settings(Path(sys.argv[1]))).fold()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run([sys.executable, "-c", code, str(home)], cwd=home, env=env, check=True)
    assert (make_settings(home).state_dir / "ledger.sqlite3").exists()


class Used:
    """Whether the send's sync took the child's rows."""

    def __init__(self, read_ahead: ListReadAhead | None) -> None:
        assert read_ahead is not None
        self.read_ahead = read_ahead
        self.took: bool | None = None

    def __call__(self, campaign: Campaign) -> Any:
        done = self.read_ahead(campaign)
        self.took = done is not None
        return done


def plan(home: Path, presync: Any = None) -> tuple[Plan, list[tuple[Any, ...]]]:
    settings = make_settings(home)
    builder = make_builder(settings)
    with Journal(settings.state_dir / "journal.sqlite3") as journal:
        campaign = Campaign(
            issue="vol-2.19",
            builder=builder,
            transport=MockTransport(builder),
            journal=journal,
            store=SubscriberStore.from_settings(settings),
            store_path=settings.subscribers_file,
            make_recipient=Recipient,
            presync=presync,
        )
        planned = campaign.plan()
        rows = journal.db.execute(
            "SELECT id, issue, key, email, name, state, reason FROM deliveries ORDER BY id"
        ).fetchall()
    return planned, rows


def moved(result: tuple[Plan, list[tuple[Any, ...]]], home: Path) -> Any:
    """The plan as if made in ``home`` (its problems name the file by its full path)."""
    planned, rows = result
    for problems in (planned.invalid, planned.duplicates):
        problems[:] = [
            replace(p, path=str(home / Path(p.path).relative_to(Path(p.path).parents[1])))
            for p in problems
        ]
    return planned, rows


def twin(home: Path) -> Path:
    other = home.parent / f"{home.name}-twin"
    shutil.copytree(home, other)
    return other


def test_the_childs_rows_make_the_same_journal_plan_and_problems(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_list(home)
    Journal(make_settings(home).state_dir / "journal.sqlite3").close()
    other = twin(home)
    used = Used(ListReadAhead.start(make_settings(home)))
    ahead = plan(home, used)
    assert used.took is True
    monkeypatch.chdir(other)
    assert moved(plan(other), home) == ahead
    planned = ahead[0]
    assert planned.new == READERS
    assert [(p.line, p.field) for p in planned.invalid] == [
        (3004, "email"), (3005, "email"), (3007, "subscribed_at"), (3008, "status")
    ]  # fmt: skip
    assert [(p.line, p.message) for p in planned.duplicates] == [
        (3006, f"{address(7).upper()} is a duplicate of line 9")
    ]


def test_a_file_changed_after_the_child_began_is_read_again_here(home: Path) -> None:
    make_list(home)
    used = Used(ListReadAhead.start(make_settings(home)))
    time.sleep(0.01)
    path = make_settings(home).subscribers_file
    text = path.read_text().replace(f"{address(5)},Reader 5,active", f"{address(5)},R,unsubscribed")
    path.write_text(text + "late@example.org,Late,active,import,,,\n")
    planned, rows = plan(home, used)
    assert used.took is False
    keys = {row[2] for row in rows}
    assert address(5) not in keys and "late@example.org" in keys
    assert planned.new == READERS  # one left, one came


def test_an_unsubscribe_recorded_after_the_child_began_is_read_again_here(home: Path) -> None:
    make_list(home)
    settings = make_settings(home)
    used = Used(ListReadAhead.start(settings))
    apply_suppressions(
        SubscriberStore.from_settings(settings), {address(9): ("unsubscribed", "one-click")}
    )
    planned, rows = plan(home, used)
    assert used.took is False
    assert address(9) not in {row[2] for row in rows}
    assert planned.new == READERS - 1


def test_a_child_that_died_leaves_the_read_to_the_send(home: Path) -> None:
    make_list(home)
    read_ahead = ListReadAhead.start(make_settings(home))
    assert read_ahead is not None
    os.kill(read_ahead.pid, signal.SIGKILL)
    used = Used(read_ahead)
    other = twin(home)
    planned, rows = plan(home, used)
    assert used.took is False and read_ahead.pid == 0  # reaped
    os.chdir(other)
    assert moved(plan(other), home) == (planned, rows)


def test_lists_too_small_or_too_big_for_a_child(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_list(home)
    settings = make_settings(home)
    size = settings.subscribers_file.stat().st_size
    monkeypatch.setattr(send_prefetch, "MIN_BYTES", size + 1)
    assert ListReadAhead.start(settings) is None
    monkeypatch.setattr(send_prefetch, "MIN_BYTES", 1)
    monkeypatch.setattr(send_prefetch, "MAX_BYTES", size - 1)
    assert ListReadAhead.start(settings) is None
    monkeypatch.setattr(send_prefetch, "MAX_BYTES", size)
    read_ahead = ListReadAhead.start(settings)
    assert read_ahead is not None
    read_ahead.close()


def test_a_missing_ledger_is_made_before_the_child_and_an_open_one_stops_it(
    home: Path,
) -> None:
    """The child never creates the ledger (two processes creating one can fail), and no
    child is forked from a process that has it open (SQLite must not cross a fork)."""
    settings = make_settings(home)
    write_subscribers(settings.subscribers_file, READERS)
    ledger = settings.state_dir / "ledger.sqlite3"
    assert not ledger.exists()
    used = Used(ListReadAhead.start(settings))
    assert ledger.exists()  # made (and closed) before the fork
    plan(home, used)
    assert used.took is True
    SubscriberStore.from_settings(settings).fold()  # open in this process now
    assert ListReadAhead.start(settings) is None


def test_the_child_holds_nothing_of_the_send(home: Path) -> None:
    """Forked before the send's lock is taken, and it keeps only its pipe (and
    /dev/null for what might print): no file of the parent's stays open in it."""
    make_list(home)
    keep = (home / "held.txt").open("w")
    read_ahead = ListReadAhead.start(make_settings(home))
    assert read_ahead is not None
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                targets = {
                    os.readlink(f"/proc/{read_ahead.pid}/fd/{fd}")
                    for fd in os.listdir(f"/proc/{read_ahead.pid}/fd")
                }
            except FileNotFoundError:
                break  # it finished (its rows wait in the pipe)
            if str(home / "held.txt") not in targets:
                assert all(
                    t.startswith(("pipe:", "/dev/null")) or str(home) in t for t in targets
                ), targets
                break
            time.sleep(0.001)
        else:
            raise AssertionError("the child kept the parent's file open")
    finally:
        keep.close()
        read_ahead.close()


def test_a_send_that_fails_after_the_fork_leaves_no_child(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from newsletter.cli.app import app
    from newsletter.delivery import transports
    from newsletter.errors import ConfigError
    from tests.support.sendkit import SEND_ENV

    make_list(home)
    started: list[ListReadAhead] = []
    real_start = ListReadAhead.start

    def start(settings: Any) -> ListReadAhead | None:
        made = real_start(settings)
        assert made is not None
        started.append(made)
        return made

    def no_transport(*_args: object) -> object:  # fails after the render, before the lock
        raise ConfigError("no such transport")

    monkeypatch.setattr(ListReadAhead, "start", staticmethod(start))
    monkeypatch.setattr(transports, "make_transport", no_transport)
    for key, value in SEND_ENV.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["send", "vol-2.19", "--yes"])
    assert result.exit_code != 0 and "no such transport" in result.output
    assert len(started) == 1 and started[0].pid == 0  # stopped and reaped


def test_a_file_replaced_by_one_of_the_same_size_and_time_is_a_change(tmp_path: Path) -> None:
    from newsletter.delivery.active import file_signature

    path, other = tmp_path / "subscribers.csv", tmp_path / "saved.csv"
    path.write_text("email,status\na@example.org,active\n")
    other.write_text("email,status\nb@example.org,active\n")
    st = path.stat()
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    before = file_signature(path)
    other.replace(path)  # a spreadsheet's save: a new file renamed over the old one
    assert path.stat().st_size == st.st_size and path.stat().st_mtime_ns == st.st_mtime_ns
    assert file_signature(path) != before


def test_the_child_reads_the_whole_list_before_the_send_asks_for_it(home: Path) -> None:
    """A list of many pipe-fulls (64 KiB each) is read to its end while the send is still
    rendering: the child does not wait for the sync to empty its pipe."""
    make_list(home)
    assert make_settings(home).subscribers_file.stat().st_size > 2 * 65536
    read_ahead = ListReadAhead.start(make_settings(home))
    assert read_ahead is not None
    until = time.monotonic() + 30
    while (done := os.waitpid(read_ahead.pid, os.WNOHANG))[0] == 0:
        assert time.monotonic() < until, "the child is still waiting for its pipe"
        time.sleep(0.02)
    assert os.WEXITSTATUS(done[1]) == 0
    read_ahead.pid = 0  # reaped here
    used = Used(read_ahead)
    other = twin(home)
    got = plan(home, used)
    assert used.took is True
    os.chdir(other)
    assert moved(plan(other), home) == got
