"""Crash-safe file writes shared by the build folder, the archive, the outbox and the
subscriber store: readers see the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def fsync_dir(folder: Path) -> None:
    """Make a rename in ``folder`` durable (POSIX); a no-op where that is unsupported."""
    if os.name != "posix":  # pragma: no cover
        return
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, *, fsync: bool = True, sync_dir: bool = True) -> None:
    """Write via a temp file in the same folder, fsync, rename (and fsync the folder).

    ``sync_dir=False`` lets a caller writing many files fsync the folder once at the end.
    """
    import tempfile  # here: a command that only reads (status, stats) never needs it

    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if fsync and sync_dir:
        fsync_dir(path.parent)
