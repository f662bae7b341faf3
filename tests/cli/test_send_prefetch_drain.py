"""The list child's pipe, drained by a thread (send_prefetch._Drained): a stream cut
anywhere through a real pipe (test_send_prefetch_cut feeds io.BytesIO, which has no
thread), a child killed mid-write, Ctrl-C while the sync waits, close() without a sync,
a drain thread that dies. The send falls back to its own read each time; afterwards no
drain thread is left (the send forks its writer later) and no descriptor leaks."""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from newsletter.cli import send_prefetch
from newsletter.cli.send_prefetch import ListReadAhead, _Drained
from newsletter.delivery.journal import Journal
from tests.cli.test_send_prefetch import Used, make_list, plan
from tests.cli.test_send_prefetch_cut import _stream as whole_stream
from tests.cli.test_send_prefetch_cut import stream_and_twin_plan
from tests.support.sendkit import make_settings


@pytest.fixture(autouse=True)
def small_lists_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(send_prefetch, "MIN_BYTES", 1)


def fds() -> set[str]:
    return set(os.listdir("/proc/self/fd"))


def drains() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "list-read-ahead"]


def feeder(data: bytes, *, then_sleep: float = 0.0) -> ListReadAhead:
    """A child that writes ``data`` into a real pipe (then maybe waits), as the list
    child would; the parent drains it with _Drained."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            view = memoryview(data)
            while view:
                view = view[os.write(w, view[: 1 << 14]) :]
            if then_sleep:
                time.sleep(then_sleep)
        finally:
            os._exit(0)
    os.close(w)
    return ListReadAhead(pid, _Drained(r))


def reset(home: Path) -> None:
    (make_settings(home).state_dir / "journal.sqlite3").unlink(missing_ok=True)


def stream_and_plan(home: Path) -> tuple[bytes, Any]:
    """The list's whole stream as the child writes it, and the plan of a send that read
    the list itself (no journal left after either)."""
    make_list(home)
    Journal(make_settings(home).state_dir / "journal.sqlite3").close()
    data = whole_stream(home)
    reset(home)
    baseline = plan(home)
    reset(home)
    return data, baseline


def test_cut_streams_through_a_real_pipe_fall_back(home: Path) -> None:
    data, baseline = stream_and_twin_plan(home)
    reset(home)
    plan(home)  # the process's own open files (the ledger stays open) first
    before = fds()
    for cut in sorted({0, 1, 9, 70_000, len(data) // 2, len(data) - 1}):
        reset(home)
        used = Used(feeder(data[:cut]))
        assert plan(home, used) == baseline, cut
        assert used.took is False, cut
        assert not drains() and fds() == before, cut
    reset(home)
    used = Used(feeder(data))
    assert plan(home, used) == baseline and used.took is True
    assert not drains() and fds() == before


def test_child_killed_mid_write_falls_back(home: Path) -> None:
    data, baseline = stream_and_plan(home)
    before = fds()  # (after a plan: the ledger it opened stays open)
    ra = feeder(data[: len(data) // 2], then_sleep=60)  # stuck after half its rows
    threading.Timer(0.5, os.kill, (ra.pid, signal.SIGKILL)).start()
    used = Used(ra)
    started = time.monotonic()
    got = plan(home, used)
    assert time.monotonic() - started < 30
    assert used.took is False and got == baseline
    assert not drains() and fds() == before


def test_close_without_a_sync_leaves_no_thread_nor_descriptor(home: Path) -> None:
    make_list(home)
    before = fds()
    for wait in (0.0, 0.05, 0.5):
        ra = ListReadAhead.start(make_settings(home))
        assert ra is not None
        time.sleep(wait)
        ra.close()
        ra.close()  # (the stack closes it again)
        assert not drains() and fds() == before, wait


def test_ctrl_c_while_the_sync_waits_for_the_child(home: Path) -> None:
    make_list(home)
    Journal(make_settings(home).state_dir / "journal.sqlite3").close()
    data = whole_stream(home)
    reset(home)
    before = fds()
    ra = feeder(data[:70_000], then_sleep=60)  # a slow child: the sync waits on it
    threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT)).start()
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        plan(home, Used(ra))
    assert time.monotonic() - started < 30
    with Journal(make_settings(home).state_dir / "journal.sqlite3") as journal:
        assert journal.db.execute("SELECT count(*) FROM deliveries").fetchone()[0] == 0
    assert ra.pid == 0 and not drains() and fds() == before


class _FailingOs:
    """``os`` for send_prefetch whose first read fails as an allocation would."""

    def __init__(self) -> None:
        self.failed = False

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    def read(self, fd: int, size: int) -> bytes:
        if not self.failed:
            self.failed = True
            raise MemoryError("the drain thread's buffer could not grow")
        return os.read(fd, size)


@pytest.mark.filterwarnings("ignore::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_drain_thread_that_dies_does_not_hang_the_send(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A drain thread ended by an error other than the pipe's (a MemoryError) still lets
    the sync see the end: it falls back, it does not wait for ever."""
    data, baseline = stream_and_plan(home)
    monkeypatch.setattr(send_prefetch, "os", _FailingOs())
    ra = feeder(data)
    got: list[object] = []
    worker = threading.Thread(target=lambda: got.append(plan(home, Used(ra))), daemon=True)
    worker.start()
    worker.join(20)
    hung = worker.is_alive()
    if hung:  # free what the stuck sync holds: the child, then the pipe's end
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(ra.pid, signal.SIGKILL)
            os.waitpid(ra.pid, 0)
    assert not hung, "the send's sync waits for ever on a drain thread that died"
    assert got == [baseline]
