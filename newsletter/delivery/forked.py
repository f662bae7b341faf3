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
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
from collections.abc import Callable
from typing import IO, Any, Generic, TypeVar

R = TypeVar("R")


class ForkedCall(Generic[R]):
    """``fn(arg)`` computed in a forked child; ``fn`` itself here once the child fails.

    Calls must not overlap (one writer thread makes them): one pipe, one call at a time.
    """

    def __init__(self, fn: Callable[[Any], R]) -> None:
        self.fn = fn
        self.pid = 0
        self._to: IO[bytes] | None = None
        self._back: IO[bytes] | None = None
        if not hasattr(os, "fork"):
            return
        to_child_r, to_child_w = os.pipe()
        to_parent_r, to_parent_w = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            for fd in (to_child_r, to_child_w, to_parent_r, to_parent_w):
                os.close(fd)
            return
        if pid == 0:  # the child: serve, then leave without running the parent's code
            code = 1
            try:
                _serve(fn, to_child_r, to_parent_w)
                code = 0
            finally:
                os._exit(code)
        os.close(to_child_r)
        os.close(to_parent_w)
        self.pid = pid
        self._to = open(to_child_w, "wb")  # noqa: SIM115 - closed by close()
        self._back = open(to_parent_r, "rb")  # noqa: SIM115

    @property
    def forked(self) -> bool:
        """Whether calls still go to the child."""
        return self._to is not None

    def __call__(self, arg: Any) -> R:
        to, back = self._to, self._back
        if to is not None and back is not None:
            try:
                pickle.dump(arg, to, protocol=pickle.HIGHEST_PROTOCOL)
                to.flush()
                answer = pickle.load(back)
            except (OSError, ValueError, EOFError, pickle.UnpicklingError):
                answer = None
            if isinstance(answer, tuple) and len(answer) == 2 and answer[0] == "ok":
                result: R = answer[1]
                return result
            self.close()  # the child failed: everything is computed here from now on
        return self.fn(arg)

    def close(self) -> None:
        """End the child (it exits when its pipe closes) and reap it."""
        # its input first: a call under way still gets its answer, then the child ends
        for stream in (self._to, self._back):
            if stream is not None:
                with contextlib.suppress(OSError):
                    stream.close()
        self._to = self._back = None
        if self.pid:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0

    def __enter__(self) -> ForkedCall[R]:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _serve(fn: Callable[[Any], Any], read_fd: int, write_fd: int) -> None:
    """The child's loop: a pickled argument in, ``("ok", fn(arg))`` out, until EOF."""
    # Ctrl-C is the parent's to handle (it stops the send and closes this pipe).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not the parent's graceful stop
    # Keep only the pipe: the send's lock file, the journal and the sockets are the
    # parent's, and a lock must not outlive the parent in a child that holds its file.
    keep = sorted((read_fd, write_fd))
    os.closerange(0, keep[0])
    os.closerange(keep[0] + 1, keep[1])
    os.closerange(keep[1] + 1, _max_fd())
    with open(read_fd, "rb") as inp, open(write_fd, "wb") as out:
        while True:
            try:
                arg = pickle.load(inp)
            except EOFError:
                return
            try:
                answer: tuple[str, Any] = ("ok", fn(arg))
            except Exception as exc:  # the parent computes it again and sees the error
                answer = ("error", repr(exc))
            pickle.dump(answer, out, protocol=pickle.HIGHEST_PROTOCOL)
            out.flush()


def _max_fd() -> int:
    try:
        return int(os.sysconf("SC_OPEN_MAX"))
    except (ValueError, OSError):
        return 65536
