"""A pure function in a forked child (SendGrid's request writer): the same results as
in this process, this process's answer when the child fails, and no child left behind."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from newsletter.compose.message import Recipient
from newsletter.delivery.forked import ForkedCall
from newsletter.delivery.transports.sendgrid_body import PersonalizationWriter
from tests.support.sendkit import make_builder, make_settings

NOW = 1_700_000_000.0
ROWS = [
    ("reader1@example.net", "Reader One"),
    ("reader2@example.net", ""),
    ("Mixed.Case@Example.org", "山田 花子"),
    ("bad@example.org", "Evil\r\nBcc: victim@example.com"),  # fails alone, permanently
    ("ünïcode@example.jp", "Ünï"),
]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def _writer(home: Path) -> PersonalizationWriter:
    return PersonalizationWriter(make_builder(make_settings(home)), '"vol-2.19"')


def test_the_child_writes_exactly_what_this_process_writes(home: Path) -> None:
    writer = _writer(home)

    def write(rows: list[tuple[str, str]]) -> object:
        return writer.write(rows, now=NOW)

    with ForkedCall(write) as forked:
        assert forked.forked and forked.pid != os.getpid()
        for rows in (ROWS, ROWS[:1], [], ROWS[::-1] * 50):
            assert forked(rows) == write(rows)
        assert forked.forked  # every answer came from the child
        pid = forked.pid
    assert not forked.forked and _gone(pid)


def test_a_child_that_dies_leaves_the_work_to_this_process(home: Path) -> None:
    calls: list[int] = []

    def double(n: int) -> int:
        calls.append(n)  # (this process's list: the child's calls leave no trace here)
        return 2 * n

    with ForkedCall(double) as forked:
        assert forked(21) == 42 and calls == []
        os.kill(forked.pid, signal.SIGKILL)
        assert forked(5) == 10 and calls == [5]  # computed here
        assert not forked.forked
        assert forked(6) == 12 and calls == [5, 6]


def test_an_error_in_the_child_is_raised_here_as_it_would_be(home: Path) -> None:
    def parse(text: str) -> int:
        return int(text)

    with ForkedCall(parse) as forked:
        assert forked("7") == 7
        with pytest.raises(ValueError, match="invalid literal"):
            forked("seven")
        assert not forked.forked


def test_the_child_keeps_no_file_of_this_process_open(tmp_path: Path) -> None:
    """A lock file held here must not stay locked by the child after this process dies."""
    import fcntl

    lock = (tmp_path / "send.lock").open("w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    with ForkedCall(len) as forked:
        assert forked([1, 2, 3]) == 3  # (answered: it has closed what it does not keep)
        fds = os.listdir(f"/proc/{forked.pid}/fd")
        assert len(fds) == 2, fds  # its two pipe ends, nothing else
    lock.close()


def test_the_child_ends_when_this_process_does(tmp_path: Path) -> None:
    """kill -9 of the parent: the child's pipe reaches end of file and it exits."""
    import subprocess
    import sys
    import time

    code = (
        "import os, sys, time\n"
        "from newsletter.delivery.forked import ForkedCall\n"
        "f = ForkedCall(len)\n"
        "assert f([1]) == 1\n"
        "print(f.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    child = int(proc.stdout.readline())
    assert not _gone(child)
    proc.kill()
    proc.wait()
    proc.stdout.close()
    deadline = time.monotonic() + 10
    while not _gone_or_zombie(child) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone_or_zombie(child)


def _gone_or_zombie(pid: int) -> bool:
    """Exited (an orphan's exit may wait for init to reap it: a zombie has exited)."""
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X")
    except FileNotFoundError:
        return True


def test_recipient_objects_round_trip(home: Path) -> None:
    with ForkedCall(lambda r: (r.email, r.name)) as forked:
        assert forked(Recipient("a@example.org", "A")) == ("a@example.org", "A")


def test_a_child_that_neither_answers_nor_dies_is_killed_and_the_call_done_here() -> None:
    # a stopped child stands in for one deadlocked on a lock held when it was forked
    with ForkedCall(len, deadline=0.5) as forked:
        pid = forked.pid
        os.kill(pid, signal.SIGSTOP)
        assert forked([1, 2]) == 2  # after the deadline, here
        assert not forked.forked and _gone(pid)


def test_close_does_not_wait_forever_on_a_call_stuck_in_another_thread() -> None:
    import threading

    results: list[int] = []
    forked = ForkedCall(len)  # the default deadline: far longer than this test
    pid = forked.pid
    os.kill(pid, signal.SIGSTOP)
    caller = threading.Thread(target=lambda: results.append(forked([1, 2, 3])), daemon=True)
    caller.start()
    closer = threading.Thread(target=forked.close, daemon=True)
    closer.start()
    closer.join(20)
    caller.join(20)
    assert not closer.is_alive() and not caller.is_alive(), "close() hung on the stuck call"
    assert results == [3] and _gone(pid)


def test_an_answer_to_another_call_is_never_taken_for_this_one() -> None:
    # a stray request in the pipe (as a call that died between its question and its
    # answer would leave): the child's first answer is to it, and is refused
    import pickle

    from newsletter.delivery import forked as forked_module

    with ForkedCall(len) as forked:
        data = pickle.dumps((99, [1, 2, 3, 4, 5]))
        os.write(forked._to, forked_module._SIZE.pack(len(data)) + data)
        assert forked([1]) == 1  # not 5: computed here, the child ended
        assert not forked.forked


def test_an_exception_between_question_and_answer_ends_the_child(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from newsletter.delivery import forked as forked_module

    real = forked_module._read_exactly
    with ForkedCall(len) as forked:
        pid = forked.pid

        def fail_once(fd: int, size: int, until: float | None) -> bytes:
            monkeypatch.setattr(forked_module, "_read_exactly", real)
            raise MemoryError

        monkeypatch.setattr(forked_module, "_read_exactly", fail_once)
        with pytest.raises(MemoryError):
            forked([1, 2])
        assert not forked.forked and _gone(pid)  # its answer can never be read
        assert forked([1, 2, 3]) == 3
