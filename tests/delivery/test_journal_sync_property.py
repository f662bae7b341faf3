"""An issue's first sync (straight into deliveries) against the general
path (through active_now), on random lists: duplicates, case variants, empty and odd
names, rows with a missing field, any chunking, rows or JSON text."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from newsletter.delivery import journal_sync
from newsletter.delivery.journal import Journal

SENTINEL = ("zz@example.org", "zz@example.org", "Z")
keys = st.sampled_from(["ann@example.org", "ANN@example.org", "bob@example.net", "cé@example.jp"])
texts = st.sampled_from(["", "Ann", "名前", "a,b", "x" * 300])
row = st.one_of(
    st.tuples(keys, keys, texts),
    st.tuples(st.none(), keys, texts),
    st.tuples(keys, st.none(), texts),
    st.tuples(keys, keys, st.none()),
)


def journal_rows(journal: Journal) -> list[tuple[object, ...]]:
    return journal.db.execute(
        "SELECT issue, key, email, name, state, reason FROM deliveries WHERE key != ? ORDER BY id",
        (SENTINEL[0],),
    ).fetchall()


@settings(max_examples=150, deadline=None)
@given(listed=st.lists(row, max_size=12), chunk=st.integers(1, 5), as_json=st.booleans())
def test_first_sync_equals_the_general_path(
    listed: list[tuple[str | None, str | None, str | None]], chunk: int, as_json: bool
) -> None:
    journal_sync.SYNC_CHUNK, old = chunk, journal_sync.SYNC_CHUNK
    try:
        made = []
        with tempfile.TemporaryDirectory() as d:
            for earlier in ([], [SENTINEL]):
                with Journal(Path(d) / f"{len(earlier)}.sqlite3") as journal:
                    if earlier:
                        journal.sync("vol-1", iter(earlier))
                    if as_json:
                        parts = [
                            json.dumps(listed[i : i + chunk]) for i in range(0, len(listed), chunk)
                        ]
                        result = journal.sync_json("vol-1", iter(parts))
                    else:
                        result = journal.sync("vol-1", iter(listed))  # type: ignore[arg-type]
                    made.append((result.added, result.restored, journal_rows(journal)))
        assert made[0] == made[1]
    finally:
        journal_sync.SYNC_CHUNK = old
