"""The file several processes rewrite in place: one lock, an atomic swap, backups.

:class:`LockedFile` owns how the subscriber CSV is written, whatever is written: every
writer holds ``<file>.lock``; the new text goes to a temp file in the same folder, is
fsynced and renamed over the old one (then the folder is fsynced); the old file is kept
as a timestamped backup (the last :data:`BACKUPS_KEPT`). A file changed on disk during
the write (an admin saving from a spreadsheet) is detected by its stat signature, and
the write is done again from a fresh read, up to :data:`MAX_WRITE_ATTEMPTS` times.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Final

from newsletter.errors import LockTimeoutError, NewsletterError
from newsletter.files import fsync_dir

BACKUPS_KEPT: Final = 10
MAX_WRITE_ATTEMPTS: Final = 5


@dataclass(frozen=True, slots=True)
class FileSignature:
    """What tells one version of a file from the next without reading it."""

    device: int
    inode: int
    size: int
    mtime_ns: int
    mode: int

    @classmethod
    def of(cls, st: os.stat_result) -> FileSignature:
        return cls(st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_mode)


def file_signature(path: Path) -> FileSignature | None:
    """The signature of the file at ``path`` now (None when there is none)."""
    try:
        return FileSignature.of(path.stat())
    except FileNotFoundError:
        return None


#: One pass of a rewrite: read the file afresh, write the new text to ``out``; returns
#: (whether anything changed, the signature of the file it read, None if it was missing).
WritePass = Callable[[IO[str]], tuple[bool, FileSignature | None]]


class LockedFile:
    """A file rewritten under ``<file>.lock``, atomically, keeping backups.

    Waiting longer than ``lock_timeout`` seconds for the lock raises
    :class:`~newsletter.errors.LockTimeoutError`.
    """

    def __init__(self, path: Path, *, lock_timeout: float, backup_dir: Path | None) -> None:
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.backup_dir = backup_dir if backup_dir is not None else self.path.parent / ".backups"
        self.display = str(path)
        self.write_attempts = 0  # attempts the last write needed (1 unless the file changed)

    @property
    def lock_path(self) -> Path:
        return self.path.with_name(self.path.name + ".lock")

    def backups(self) -> list[Path]:
        """The kept backups, oldest first."""
        stem, suffix = self.path.stem, self.path.suffix
        return sorted(self.backup_dir.glob(f"{stem}-*{suffix}"))

    def rewrite(self, write_pass: WritePass) -> bool:
        """Replace the file with what ``write_pass`` writes, under the lock.

        Returns True if the file was replaced (False if the pass changed nothing). When
        the file on disk is no longer the one the pass read, the pass runs again.
        """
        import tempfile  # here: reading the list never needs it (start-up time)

        with self._locked():
            for attempt in range(1, MAX_WRITE_ATTEMPTS + 1):
                self.write_attempts = attempt
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd, tmp_name = tempfile.mkstemp(
                    prefix=f".{self.path.name}.", suffix=".tmp", dir=self.path.parent
                )
                tmp = Path(tmp_name)
                try:
                    with os.fdopen(fd, "w", encoding="utf-8", newline="") as out:
                        changed, before = write_pass(out)
                        if not changed:
                            tmp.unlink()
                            return False
                        out.flush()
                        os.fsync(out.fileno())
                    if file_signature(self.path) != before:
                        tmp.unlink()  # edited while we wrote: re-read and re-apply
                        continue
                    os.chmod(tmp, before.mode & 0o7777 if before is not None else 0o644)
                    if before is not None:
                        self._backup()
                    # last look right before the swap: a spreadsheet may have saved during
                    # the chmod and backup (the window left is the rename itself)
                    if file_signature(self.path) != before:
                        tmp.unlink()
                        continue
                    os.replace(tmp, self.path)
                    fsync_dir(self.path.parent)
                    return True
                except BaseException:
                    tmp.unlink(missing_ok=True)
                    raise
        raise NewsletterError(
            f"{self.display}: the file kept changing while it was being written "
            f"({MAX_WRITE_ATTEMPTS} attempts)",
            hint="close the spreadsheet that is saving it, then re-run",
        )

    @contextmanager
    def _locked(self) -> Iterator[None]:
        self.lock_path.parent.mkdir(parents=True, exist_ok=True)
        import filelock  # 10 ms of start-up: only a command that writes takes the lock

        lock = filelock.FileLock(str(self.lock_path), timeout=self.lock_timeout)
        try:
            lock.acquire()
        except filelock.Timeout:
            raise LockTimeoutError(
                f"{self.lock_path}: another writer has held the subscriber lock for "
                f"{self.lock_timeout:g}s",
                hint="wait for the other command (a send, an import, the web server) to "
                "finish, then re-run",
            ) from None
        try:
            yield
        finally:
            lock.release()

    def _backup(self) -> None:
        """Keep the current file under backup_dir (a hard link: no copy), rotate old ones."""
        self.backup_dir.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S.%fZ")
        stem, suffix = self.path.stem, self.path.suffix
        target = self.backup_dir / f"{stem}-{stamp}{suffix}"
        n = 1
        while target.exists():
            target = self.backup_dir / f"{stem}-{stamp}-{n}{suffix}"
            n += 1
        try:
            os.link(self.path, target)
        except OSError:
            shutil.copy2(self.path, target)
        for old in self.backups()[:-BACKUPS_KEPT]:
            old.unlink(missing_ok=True)
