"""A pure function run in a forked child, so its CPU time leaves this process's GIL.

SendGrid's send loop (:mod:`.pipeline`) writes each request ahead on a writer thread:
a thousand personalizations, tokens and JSON a request, pure computation from
``(email, name)`` rows, about as much GIL time as everything else in the loop. A
:class:`ForkedCall` runs that function in a child forked from this process (so it has the
same builder, secret and templates) and passes rows and results through a pipe as
pickles; the writer thread only waits on the pipe, without the GIL.

Nothing of the send's state is in the child: the journal, the ledger and every socket
stay in the parent, which alone decides what is handed off. The child holds no file
but its two pipe ends (it closes every other descriptor at once, the send's lock file
among them) and exits when the parent closes its pipe or dies (kill -9 included), so
it never outlives the send. Any failure of the child (it died, it could not answer)
makes the call run here instead, and every later one: the result is the same text.
A child that neither answers nor dies (stopped, deadlocked) is killed after
``ANSWER_DEADLINE`` seconds; each answer carries the number of the call it answers, so
an answer can never be taken for another call's.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import select
import signal
import struct
import threading
import time
from collections.abc import Callable
from typing import Any, Final, Generic, TypeVar

R = TypeVar("R")

#: seconds a call waits for the child (its own work is milliseconds): then it is killed
ANSWER_DEADLINE: Final = 30.0
#: seconds close() lets the child exit on its own before it is killed
EXIT_GRACE: Final = 2.0
_SIZE = struct.Struct("<Q")  # each message: its length, then a pickle
_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


class _Failed(Exception):
    """The child did not answer this call (died, stuck, garbled): compute it here."""


class ForkedCall(Generic[R]):
    """``fn(arg)`` computed in a forked child; ``fn`` itself here once the child fails.

    Calls must not overlap (one writer thread makes them); a lock makes :meth:`close`
    wait for one under way, and kills the child if it is stuck.
    """

    def __init__(self, fn: Callable[[Any], R], *, deadline: float = ANSWER_DEADLINE) -> None:
        self.fn = fn
        self.deadline = deadline
        self.pid = 0
        self._to = -1  # raw descriptors: no buffered stream whose close() waits on a read
        self._back = -1
        self._calls = 0
        self._lock = threading.Lock()
        if not hasattr(os, "fork"):
            return
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        # a Ctrl-C between the fork and the child's own handlers would run the parent's
        # graceful-stop handler in the child: the stop signals wait until both are set
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
        except OSError:
            for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
                os.close(fd)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            return
        if pid == 0:  # the child: serve, then leave without running the parent's code
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
                signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the graceful stop
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                _serve(fn, to_child_r, to_parent_w)
                code = 0
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(to_child_r)
        os.close(to_parent_w)
        self.pid = pid
        self._to, self._back = to_child_w, to_parent_r

    @property
    def forked(self) -> bool:
        """Whether calls still go to the child."""
        return self.pid != 0

    def __call__(self, arg: Any) -> R:
        with self._lock:
            if self.pid:
                self._calls += 1
                try:
                    return self._ask(self._calls, arg)
                except _Failed:
                    self._end(kill=True)  # everything is computed here from now on
                except BaseException:
                    self._end(kill=True)  # its answer must never be read for another call
                    raise
        return self.fn(arg)

    def _ask(self, number: int, arg: Any) -> R:
        until = time.monotonic() + self.deadline
        data = pickle.dumps((number, arg), protocol=pickle.HIGHEST_PROTOCOL)
        _write_all(self._to, _SIZE.pack(len(data)) + data, until)
        head = _read_exactly(self._back, _SIZE.size, until)
        answer = pickle.loads(_read_exactly(self._back, _SIZE.unpack(head)[0], until))
        if not (isinstance(answer, tuple) and len(answer) == 3 and answer[0] == number):
            raise _Failed("an answer to another call")
        if answer[1] != "ok":
            raise _Failed(answer[2])  # this process computes it again and sees the error
        result: R = answer[2]
        return result

    def close(self) -> None:
        """End the child (it exits when its pipe closes) and reap it."""
        if not self._lock.acquire(timeout=EXIT_GRACE):
            # a call is stuck on the child: killing it ends the call (EOF), then the lock
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self._lock.acquire()
        try:
            self._end(kill=False)
        finally:
            self._lock.release()

    def _end(self, *, kill: bool) -> None:
        """Close the pipes and reap the child: at once with ``kill``, else after it has
        read its end of input (killed if it has not left within EXIT_GRACE)."""
        if not self.pid:
            return
        pid, self.pid = self.pid, 0
        with contextlib.suppress(OSError):
            os.close(self._to)
        if kill:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        until = time.monotonic() + EXIT_GRACE
        while not _reaped(pid):
            if time.monotonic() >= until:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
                with contextlib.suppress(ChildProcessError):
                    os.waitpid(pid, 0)
                break
            time.sleep(0.005)
        with contextlib.suppress(OSError):
            os.close(self._back)
        self._to = self._back = -1

    def __enter__(self) -> ForkedCall[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reaped(pid: int) -> bool:
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == pid


def _write_all(fd: int, data: bytes, until: float | None) -> None:
    view = memoryview(data)
    while view:
        _wait(fd, select.POLLOUT, until)
        try:
            sent = os.write(fd, view[: 1 << 16])
        except OSError as exc:  # EPIPE: the child is gone
            raise _Failed(str(exc)) from None
        view = view[sent:]


def _read_exactly(fd: int, size: int, until: float | None) -> bytes:
    parts: list[bytes] = []
    while size:
        _wait(fd, select.POLLIN, until)
        try:
            part = os.read(fd, min(size, 1 << 20))
        except OSError as exc:
            raise _Failed(str(exc)) from None
        if not part:
            raise _Failed("the child closed its pipe")
        parts.append(part)
        size -= len(part)
    return b"".join(parts)


def _wait(fd: int, event: int, until: float | None) -> None:
    """Until ``fd`` is ready for ``event`` (or has hung up: the next read or write says
    how), at most until ``until`` (None: no limit)."""
    poller = select.poll()
    poller.register(fd, event)
    while True:
        if until is None:
            poller.poll()
            return
        left = until - time.monotonic()
        if left <= 0:
            raise _Failed("the child did not answer in time")
        if poller.poll(max(1, int(left * 1000))):
            return


def _serve(fn: Callable[[Any], Any], read_fd: int, write_fd: int) -> None:
    """The child's loop: a numbered argument in, ``(number, "ok", fn(arg))`` out, until
    its input ends."""
    _keep_only(read_fd, write_fd)
    never = None  # the child waits on its parent alone: its death ends the pipe
    while True:
        try:
            head = _read_exactly(read_fd, _SIZE.size, never)
            number, arg = pickle.loads(_read_exactly(read_fd, _SIZE.unpack(head)[0], never))
        except _Failed:  # the parent closed its end, or died
            return
        try:
            answer: tuple[int, str, Any] = (number, "ok", fn(arg))
        except Exception as exc:  # the parent computes it again and sees the error
            answer = (number, "error", repr(exc))
        data = pickle.dumps(answer, protocol=pickle.HIGHEST_PROTOCOL)
        try:
            _write_all(write_fd, _SIZE.pack(len(data)) + data, never)
        except _Failed:
            return


def _keep_only(*keep: int) -> None:
    """Close every descriptor but ``keep``: the send's lock file, the journal and the
    sockets are the parent's, and a lock must not outlive the parent in a child."""
    close_fds_except(set(keep))


def close_fds_except(keep: set[int]) -> None:
    """Close this process's descriptors but ``keep``: those listed in /proc/self/fd
    (a walk to the descriptor limit takes minutes where that limit is in the millions
    and the kernel has no close_range), else every one up to the limit."""
    try:
        open_fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:
        last = 0
        for fd in sorted(keep):
            os.closerange(last, fd)
            last = fd + 1
        os.closerange(last, _max_fd())
        return
    for fd in open_fds:
        if fd not in keep:
            with contextlib.suppress(OSError):  # (the listing's own, closed already)
                os.close(fd)


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536
