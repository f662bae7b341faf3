"""The subscriber list as a send sees it: its active rows as journal rows, the problems
of the rows that would have been recipients, the file's signature (a change to the file
changes it), and what a sync done from rows read ahead reports (:class:`Presynced`)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from newsletter.delivery.plan import StoreLike
from newsletter.errors import Problem

#: (inode, device, mtime_ns, size)
FileSignature = tuple[int, int, int, int]

#: statuses a row with problems may carry and still not be a would-be recipient
_NOT_RECIPIENTS = frozenset({"pending", "unsubscribed", "bounced", "complained"})


@dataclass(frozen=True, slots=True)
class Presynced:
    """A sync done from rows read ahead: what :meth:`Campaign._sync` learns from its own."""

    skipped: int
    signature: FileSignature | None  # the file's, read before and after the rows
    counted: int
    invalid: list[Problem]
    duplicates: list[Problem]


def active_rows(
    store: StoreLike, invalid: list[Problem], duplicates: list[Problem]
) -> Iterator[tuple[str, str, str]]:
    """Active subscribers as journal rows ``(key, email, name)``; the problems of rows
    that would have been recipients go into ``invalid`` and ``duplicates``, not lost."""
    iter_rows = getattr(store, "iter_rows", None)
    if iter_rows is None:  # a minimal store (tests): valid active rows only
        for sub in store.iter_active():
            yield (sub.key, sub.email, sub.name or "")
        return
    header = store.header() if hasattr(store, "header") else None
    status_at = header.index.get("status", -1) if header is not None else -1
    for row in iter_rows():
        sub = row.subscriber
        if sub is not None:
            if sub.status == "active":  # (row.key is sub.key, lowercased once already)
                yield (row.key or sub.key, sub.email, sub.name or "")
            continue
        if not row.problems:
            continue  # a blank line
        status = row.cells[status_at].strip().lower() if 0 <= status_at < len(row.cells) else ""
        if status in _NOT_RECIPIENTS:
            continue  # would not be sent to anyway
        if all("is a duplicate of line" in p.message for p in row.problems):
            duplicates.extend(row.problems)
        else:
            invalid.extend(p for p in row.problems if "duplicate" not in p.message)


def file_signature(path: Path) -> FileSignature | None:
    """The file's (inode, device, mtime_ns, size): a change to it changes this (None: no
    file). The inode catches a replacement of the same size that kept the time, as a
    save by rename may."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_ino, st.st_dev, st.st_mtime_ns, st.st_size)
