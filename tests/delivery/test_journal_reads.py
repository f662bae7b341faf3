"""What the journal's reads answer, and what the ones a send and `status` make cost as a
journal grows by an issue a fortnight: counted in SQLite's VM steps (deterministic)."""

from __future__ import annotations

from pathlib import Path

from newsletter.delivery.journal import Journal
from newsletter.delivery.transports.base import Outcome
from tests.delivery.test_journal_claims import vm_steps


def readers(count: int) -> list[tuple[str, str, str]]:
    return [(f"r{n:05d}@example.net",) * 2 + ("",) for n in range(count)]


def test_sent_issues_are_those_with_a_row_that_reached_or_may_have_reached_a_reader(
    tmp_path: Path,
) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        for issue in ("vol-1", "vol-2", "vol-3", "vol-4"):
            journal.sync(issue, iter(readers(3)))
        journal.mark_in_flight("vol-1", ["r00002@example.net"], 1)
        journal.recover("vol-1")  # a dead run's hand-off: uncertain, may have arrived
        journal.mark_in_flight("vol-3", ["r00001@example.net"], 1)
        journal.record("vol-3", [Outcome.sent("r00001@example.net", "id-1")])
        journal.mark_in_flight("vol-4", ["r00000@example.net"], 1)  # in flight: not yet
        assert journal.sent_issues() == {"vol-1", "vol-3"}


def test_sent_issues_does_not_read_every_row_of_every_issue(tmp_path: Path) -> None:
    """Every send asks which issues went out (the archive and the gates): with a year's
    issues of a big list that was a read of millions of rows."""

    def steps(count: int) -> int:
        with Journal(tmp_path / f"{count}.sqlite3") as journal:
            for issue in ("vol-1", "vol-2", "vol-3"):
                journal.sync(issue, iter(readers(count)))
                journal.db.execute("UPDATE deliveries SET state = 'sent' WHERE issue = ?", (issue,))
            assert journal.sent_issues() == {"vol-1", "vol-2", "vol-3"}
            return vm_steps(journal, journal.sent_issues)

    small, large = steps(100), steps(10_000)
    assert large < 2 * small + 2_000, (small, large)
