"""The journal reports the real error: a full disk is a full disk, not a rollback problem."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.delivery.journal import Journal
from newsletter.delivery.transports.base import Outcome


def test_a_full_database_is_reported_as_full(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    journal.sync("vol-2.19", [("a@example.org", "a@example.org", "")])
    # SQLITE_FULL without filling a real disk: cap the file at the pages it has now
    (pages,) = journal.db.execute("PRAGMA page_count").fetchone()
    journal.db.execute(f"PRAGMA max_page_count = {pages}")
    many = [(f"r{i}@example.org", f"r{i}@example.org", "x" * 200) for i in range(2000)]
    with pytest.raises(sqlite3.OperationalError) as info:
        journal.sync("vol-2.20", many)
    assert str(info.value) == "database or disk is full"
    assert not journal.db.in_transaction
    # the journal is still usable and unchanged by the failed transaction
    journal.record("vol-2.19", [Outcome.sent("a@example.org", "m1")])
    assert journal.counts("vol-2.19")["sent"] == 1
    assert journal.counts("vol-2.20")["pending"] == 0
    journal.close()


def test_a_list_that_breaks_mid_stream_leaves_the_journal_as_it_was(tmp_path: Path) -> None:
    from newsletter.errors import UsageError

    journal = Journal(tmp_path / "journal.sqlite3")
    journal.sync("vol-2.19", [("a@example.org", "a@example.org", "")])

    def rows() -> Iterator[tuple[str, str, str]]:
        for i in range(12_000):  # past two chunks of the writing thread
            yield (f"r{i}@example.org", f"r{i}@example.org", "")
        raise UsageError("subscribers.csv:12002: broken quoting")  # what a bad file raises

    with pytest.raises(UsageError, match="broken quoting"):
        journal.sync("vol-2.19", rows())
    assert not journal.db.in_transaction
    counts = journal.counts("vol-2.19")
    assert (counts["pending"], counts["skipped"]) == (1, 0)  # nothing added, nobody skipped
    assert journal.sync("vol-2.19", [("b@example.org", "b@example.org", "")]).added == 1
    assert journal.counts("vol-2.19")["skipped"] == 1
    journal.close()
