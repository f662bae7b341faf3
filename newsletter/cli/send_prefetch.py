"""`newsletter send` reads its subscriber list ahead, in a forked child, while it renders.

Reading and checking a 100,000-row list is about a second of CPU, the biggest part of a
send before its first hand-off, and the render and the imports before it hold the same
GIL. So the command forks a child first thing that reads the list exactly as the send
would (:func:`~newsletter.delivery.active.active_rows`: the same rows, the same problems
on the same lines) and streams the active rows as JSON chunks through a pipe, which the
journal's sync writes as they come (:meth:`~newsletter.delivery.journal.Journal.sync_json`).

The child's rows are used only if they are the rows the send would read itself: the file's
signature (mtime, size) is the same before the child read it, after, and when the send
syncs; and so is the ledger's overlay (unfolded changes and holds) that the read applies.
A fold that rewrote the file, an edit, an unsubscribe recorded meanwhile: any difference,
and any failure of the child, and the send reads the file itself as it always did, in the
same transaction (nothing of the child's is committed before the check). The child holds
no file of the parent's (it never had the send's lock: it is forked before it is taken)
and dies with its pipe. It opens the ledger itself, only one that exists (the parent
makes a missing one first), and only when the parent has it closed (SQLite must not cross
a fork: the send forks before it opens the ledger). Lists below :data:`MIN_BYTES` are
read quicker than a fork; lists above :data:`MAX_BYTES` are read in the process, so a
million-row send keeps one copy of its keys in memory, not two.
"""

import contextlib
import json
import os
import pickle
import signal
import threading
from collections.abc import Callable, Iterator
from typing import IO, TYPE_CHECKING, Any

from newsletter.audience.subscribers.ledger import LEDGER_NAME
from newsletter.audience.subscribers.rows import DICT_FILE_BYTES
from newsletter.delivery.forked import close_fds_except
from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.delivery.active import Presynced
    from newsletter.delivery.campaign import Campaign

#: a list smaller than this (~5,000 rows) is read in the process
MIN_BYTES = 256 << 10
#: a list bigger than this (~180,000 rows) too: two processes would hold its keys
MAX_BYTES = DICT_FILE_BYTES


class _Unusable(Exception):
    """The child's rows are not the ones the send would read now."""


class ListReadAhead:
    """The list being read in a forked child; called by the send's first sync."""

    def __init__(self, pid: int, stream: "IO[bytes] | _Drained") -> None:
        self.pid = pid
        self._stream: IO[bytes] | _Drained | None = stream

    @classmethod
    def start(cls, settings: "Settings") -> "ListReadAhead | None":
        """Fork the reader, or None where a fork does not pay (or cannot be made)."""
        if not hasattr(os, "fork"):
            return None
        try:
            size = settings.subscribers_file.stat().st_size
        except OSError:
            return None
        if not MIN_BYTES <= size <= MAX_BYTES:
            return None
        from newsletter.audience.subscribers import live
        from newsletter.audience.subscribers.ledger import Ledger

        ledger = settings.state_dir / LEDGER_NAME
        if not ledger.exists():
            # made here, as the send would make it next, and closed: the child must not
            # make it while the parent does (two processes creating one SQLite file can
            # fail: "database is locked" on its switch to WAL)
            try:
                Ledger(ledger).connection().close()
            except NewsletterError:
                return None  # (the send reports it when it opens the ledger itself)

        if ledger.resolve() in live._OPEN:
            # SQLite must not cross a fork: a child of a process with the ledger open
            # fails to open it ("locking protocol"); the send forks before it opens any
            return None
        read_fd, write_fd = os.pipe()
        # a Ctrl-C between the fork and the child's own handlers would run the parent's
        # graceful-stop handler in the child: the stop signals wait until both are set
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM})
        try:
            pid = os.fork()
        except OSError:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            os.close(read_fd)
            os.close(write_fd)
            return None
        if pid == 0:  # the child: read, then leave without running the parent's code
            code = 1
            try:
                signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.pthread_sigmask(signal.SIG_SETMASK, mask)
                _child(settings, write_fd)
                code = 0
            finally:
                os._exit(code)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(write_fd)
        return cls(pid, _Drained(read_fd))

    def __call__(self, campaign: "Campaign") -> "Presynced | None":
        """Sync the journal from the child's rows; None (nothing written) to read here."""
        from newsletter.delivery.active import Presynced, file_signature

        stream = self._stream
        if stream is None:
            return None
        end: list[Any] = []

        def chunks() -> Any:
            while True:
                frame = pickle.load(stream)
                if not isinstance(frame, tuple) or not frame:
                    raise _Unusable(frame)
                if frame[0] == "rows" and len(frame) == 2 and isinstance(frame[1], str):
                    yield frame[1]
                    continue
                if frame[0] != "end" or len(frame) != 6:
                    raise _Unusable(frame)
                _, counted, invalid, duplicates, signature, overlay = frame
                # checked before the sync commits: a mismatch rolls it back
                if signature is None or signature != file_signature(campaign.store_path):
                    raise _Unusable("the file changed")
                if overlay != overlay_of(campaign.store):
                    raise _Unusable("the ledger changed")
                end.extend((counted, invalid, duplicates, signature))
                return

        try:
            result = campaign.journal.sync_json(campaign.issue, chunks())
        except (_Unusable, OSError, EOFError, pickle.UnpicklingError):
            return None
        finally:
            self.close()
        counted, invalid, duplicates, signature = end
        return Presynced(result.skipped, signature, counted, invalid, duplicates)

    def close(self) -> None:
        """Stop the child (it only reads) and reap it; then close the pipe (its end of
        it closed, the thread draining it has seen the end)."""
        if self.pid:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            with contextlib.suppress(ChildProcessError):
                os.waitpid(self.pid, 0)
            self.pid = 0
        if self._stream is not None:
            with contextlib.suppress(OSError):
                self._stream.close()
            self._stream = None


class _Drained:
    """The child's pipe, read by a thread as the child writes to it: the list is several
    megabytes of JSON and a pipe holds 64 KiB, so a child left to wait for the send's sync
    would do most of its reading only then. Read as a file (what :func:`pickle.load`
    needs); reads wait for the bytes or the end."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._data = bytearray()
        self._pos = 0
        self._ended = False
        self._ready = threading.Condition()
        self._thread = threading.Thread(target=self._drain, name="list-read-ahead", daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        try:
            while True:
                try:
                    part = os.read(self._fd, 1 << 20)  # (the GIL is let go while it waits)
                except OSError:
                    return
                if not part:
                    return
                with self._ready:
                    self._data += part
                    self._ready.notify_all()
        finally:  # however the thread ends (a MemoryError too), no reader waits for ever
            with self._ready:
                self._ended = True
                self._ready.notify_all()

    def _wait(self, enough: Callable[[], bool]) -> None:
        with self._ready:
            self._ready.wait_for(lambda: self._ended or enough())
        if self._pos > 1 << 22:  # what was read goes: memory holds the unread part only
            with self._ready:
                del self._data[: self._pos]
                self._pos = 0

    def read(self, size: int = -1) -> bytes:
        if size < 0:
            self._wait(lambda: False)
            size = len(self._data) - self._pos
        else:
            self._wait(lambda: len(self._data) - self._pos >= size)
        with self._ready:
            part = bytes(self._data[self._pos : self._pos + size])
            self._pos += len(part)
        return part

    def readline(self) -> bytes:
        self._wait(lambda: self._data.find(b"\n", self._pos) >= 0)
        with self._ready:
            end = self._data.find(b"\n", self._pos)
            end = len(self._data) if end < 0 else end + 1
            part = bytes(self._data[self._pos : end])
            self._pos = end
        return part

    def close(self) -> None:
        """Called once the child is gone: its end of the pipe is closed, so the thread
        reads the end and leaves."""
        self._thread.join()
        os.close(self._fd)


@contextlib.contextmanager
def closed_on_error(read_ahead: "ListReadAhead | None") -> Iterator[None]:
    """Stop the child if the block fails (the send goes no further)."""
    try:
        yield
    except BaseException:
        if read_ahead is not None:
            read_ahead.close()
        raise


def overlay_of(store: object) -> object:
    """What the ledger adds to the file's rows as they are read (None: no ledger)."""
    live = getattr(store, "live", None)
    if live is None:
        return None
    overlay = live.overlay()
    return (overlay.changes, overlay.holds)


def _child(settings: "Settings", write_fd: int) -> None:
    """The child: the send's read of the list, streamed; every other descriptor closed."""
    close_fds_except({write_fd})
    null = os.open(os.devnull, os.O_RDWR)  # (fd 0: whatever prints, prints nowhere)
    os.dup2(null, 1)
    os.dup2(null, 2)
    from newsletter.audience.subscribers import SubscriberStore
    from newsletter.delivery.active import active_rows, file_signature
    from newsletter.delivery.journal_sync import SYNC_CHUNK

    store = SubscriberStore.from_settings(settings)
    path = settings.subscribers_file
    with open(write_fd, "wb") as out:
        try:
            before, overlay = file_signature(path), overlay_of(store)
            invalid: list[Any] = []
            duplicates: list[Any] = []
            counted = 0
            chunk: list[tuple[str, str, str]] = []
            for row in active_rows(store, invalid, duplicates):
                counted += 1
                chunk.append(row)
                if len(chunk) >= SYNC_CHUNK:
                    pickle.dump(("rows", json.dumps(chunk)), out)
                    chunk = []
            if chunk:
                pickle.dump(("rows", json.dumps(chunk)), out)
            same = file_signature(path) == before and overlay_of(store) == overlay
            signature = before if same else None
            pickle.dump(("end", counted, invalid, duplicates, signature, overlay), out)
        except Exception as exc:  # the parent reads the list itself and reports it
            pickle.dump(("error", repr(exc)), out)

