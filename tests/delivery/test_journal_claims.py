"""Putting recipients in flight costs the same however many rows are pending: the claim
(only a pending row) must look rows up by key, not walk every pending row.

Counted in SQLite's own VM steps (deterministic), not in seconds: with the state index
chosen the claim of one key walked all 20,000 pending rows, and a 30,000-message send ran
at a quarter of its speed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from newsletter.delivery.journal import Journal
from newsletter.delivery.transports.base import Outcome


def vm_steps(journal: Journal, action: Callable[[], object]) -> int:
    steps = 0

    def count() -> int:
        nonlocal steps
        steps += 1
        return 0

    journal.db.set_progress_handler(count, 100)  # called every 100 VM instructions
    try:
        action()
    finally:
        journal.db.set_progress_handler(None, 0)
    return steps * 100


def test_a_claim_costs_the_same_with_many_rows_pending(tmp_path: Path) -> None:
    journal = Journal(tmp_path / "journal.sqlite3")
    rows = [(f"r{n:05d}@example.net",) * 2 + ("",) for n in range(20_000)]
    journal.sync("vol-1", rows[:200])
    small = vm_steps(journal, lambda: journal.mark_in_flight("vol-1", ["r00007@example.net"], 1))
    journal.sync("vol-2", rows)
    large = vm_steps(journal, lambda: journal.mark_in_flight("vol-2", ["r00007@example.net"], 1))
    assert large < 3 * small + 2_000, (small, large)
    # and the claim is what it says: one pending row, once
    assert journal.mark_in_flight("vol-2", ["r00008@example.net"] * 2, 1) == {"r00008@example.net"}
    assert journal.mark_in_flight("vol-2", ["r00008@example.net"], 1) == set()
    journal.record("vol-2", [Outcome.sent("r00008@example.net", "id")])
    assert journal.mark_in_flight("vol-2", ["r00008@example.net"], 1) == set()
