"""The one writer behind ``newsletter serve``: folds the ledger and keeps the index fresh.

:class:`FoldWorker` is a thread. It folds the ledger into the CSV once changes have
been quiet for ``quiet`` seconds, once ``batch`` of them wait, or ``max_delay`` seconds
after the first one (a steady trickle still reaches the file); it rebuilds the index
when the file changed under it (an admin's save), and folds then too, so a save that
undid a suppression has it re-applied. Both run in a child process, so the server's
interpreter lock stays free: requests never wait for either, they only commit ledger
rows and read the index.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.audience.subscribers.index import signature_text
from newsletter.audience.subscribers.lockedfile import file_signature

if TYPE_CHECKING:
    from newsletter.audience.subscribers.live import LiveList

log = logging.getLogger("newsletter.subscribers")


@dataclass(frozen=True, slots=True)
class FoldPolicy:
    """When the worker folds (seconds, changes)."""

    quiet: float = 1.0
    batch: int = 1000
    max_delay: float = 5.0
    poll: float = 0.5


class FoldWorker:
    """Folds in the background; :meth:`start` builds the index first (before serving)."""

    def __init__(self, live: LiveList, policy: FoldPolicy | None = None) -> None:
        self.live = live
        self.policy = policy or FoldPolicy()
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_change = time.monotonic()
        self._first_waiting: float | None = None
        self.folds = 0  # folds that rewrote the file (for tests and the bench)

    def _changed(self) -> None:
        self._last_change = time.monotonic()
        self._wake.set()

    def start(self) -> None:
        """Bring the index up to date (blocking), then fold in a daemon thread."""
        self.live.refresh_index()
        self.live.inline_rebuild = False  # from now on a request never rebuilds it
        self.live.ledger.listeners.append(self._changed)
        self._thread = threading.Thread(target=self._run, name="newsletter-fold", daemon=True)
        self._thread.start()

    def stop(self, *, timeout: float = 60.0) -> None:
        """Stop the thread, then fold what is left (a clean shutdown leaves nothing waiting)."""
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
        if self._changed in self.live.ledger.listeners:
            self.live.ledger.listeners.remove(self._changed)
        self.live.inline_rebuild = True
        self._fold()

    def _due(self) -> bool:
        ledger = self.live.ledger
        waiting = ledger.last_seq() - ledger.folded_seq()
        now = time.monotonic()
        if waiting <= 0:
            self._first_waiting = None
            return False
        if self._first_waiting is None:
            self._first_waiting = now
        policy = self.policy
        return (
            waiting >= policy.batch
            or now - self._last_change >= policy.quiet
            or now - self._first_waiting >= policy.max_delay
        )

    def _file_changed(self) -> bool:
        now = signature_text(file_signature(self.live.store.path))
        return now != self.live.ledger.meta("fold_signature") or not self.live.index_is_current()

    def _fold(self) -> None:
        """Fold (and refresh the index) in a child process: a fold of a million rows is
        seconds of pure Python, and in this process it would hold the interpreter lock
        that every request needs."""
        store = self.live.store
        package = Path(__file__).resolve().parents[3]
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(package), *sys.path[1:]])}
        command = [
            sys.executable,
            "-c",
            "from newsletter.audience.subscribers.background import fold_once; fold_once()",
            str(store.path),
            str(self.live.ledger.path.parent),
            str(store.backup_dir),
        ]
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        except OSError:
            log.exception("could not start the fold; retrying shortly")
            return
        if done.returncode != 0:  # the ledger keeps every change: the next round retries
            log.error("folding the subscriber ledger failed; retrying shortly: %s", done.stderr)
            return
        result = json.loads(done.stdout or "{}")
        if result.get("wrote"):
            self.folds += 1
            log.info("%s", result.get("summary", ""))
        for line in result.get("reapplied", []):
            log.info("fold: re-applied: %s", line)

    def _run(self) -> None:
        while not self._stop.is_set():
            self._wake.wait(self.policy.poll)
            self._wake.clear()
            if self._stop.is_set():
                break
            try:
                due = self._due() or self._file_changed()
            except Exception:
                log.exception("checking the subscriber ledger failed")
                continue
            if due:
                self._fold()
                self._first_waiting = None


def fold_once() -> None:
    """The child's side of :meth:`FoldWorker._fold`: argv = CSV, state dir, backup dir."""
    from newsletter.audience.subscribers.store import SubscriberStore

    # batch work beside people waiting: the server's pages and unsubscribes come first
    # on a busy machine (a million-row fold is seconds of CPU; its deadline is 15 s)
    with contextlib.suppress(OSError):
        os.nice(10)
    csv_path, state_dir, backup_dir = (Path(a) for a in sys.argv[1:4])
    store = SubscriberStore(csv_path, state_dir=state_dir, backup_dir=backup_dir, lock_timeout=60)
    assert store.live is not None
    report = store.live.fold()
    store.live.refresh_index()
    result = {
        "wrote": report.wrote,
        "summary": report.summary(store.display),
        "reapplied": report.reapplied,
        "conflicts": report.conflicts,
    }
    sys.stdout.write(json.dumps(result))
