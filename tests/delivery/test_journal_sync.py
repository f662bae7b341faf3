"""The journal's sync in chunks (rows or their JSON text): new readers in list order,
each once, the first row of a key winning; leavers skipped, returners restored; and a
read that fails part-way writes nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.delivery import journal_sync
from newsletter.delivery.journal import Journal

Row = tuple[str, str, str]


def rows(*names: str) -> list[Row]:
    return [(f"{n}@example.org", f"{n.title()}@example.org", n.title()) for n in names]


def state(journal: Journal) -> list[tuple[object, ...]]:
    return journal.db.execute(
        "SELECT id, issue, key, email, name, state, reason FROM deliveries ORDER BY id"
    ).fetchall()


@pytest.fixture(autouse=True)
def small_chunks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal_sync, "SYNC_CHUNK", 2)


def sync_as(journal: Journal, how: str, listed: list[Row]) -> journal_sync.SyncResult:
    """Sync ``listed`` into vol-1 as rows, or as the JSON text of chunks of two."""
    if how == "rows":
        return journal.sync("vol-1", iter(listed))
    texts = [json.dumps(listed[i : i + 2]) for i in range(0, len(listed), 2)]
    return journal.sync_json("vol-1", iter(texts))


def sync_both_ways(tmp_path: Path, first: list[Row], second: list[Row]) -> list[object]:
    results: list[object] = []
    for how in ("rows", "json"):
        with Journal(tmp_path / f"{how}.sqlite3") as journal:
            journal.sync("vol-1", iter(first))
            result = sync_as(journal, how, second)
            results.append((result, state(journal)))
    assert results[0] == results[1]  # rows or their JSON: the same journal
    return results


def test_new_readers_in_list_order_the_first_row_of_a_key_wins(tmp_path: Path) -> None:
    first = rows("ann", "bob", "cat")
    dup = ("bob@example.org", "BOB@example.org", "Second Bob")
    second = [*rows("dan", "ann"), dup, *rows("eve", "fay"), ("dan@example.org", "x", "x")]
    [(result, journal)] = sync_both_ways(tmp_path, first, second)[:1]
    assert [(r[2], r[5]) for r in journal] == [
        ("ann@example.org", "pending"),
        ("bob@example.org", "pending"),
        ("cat@example.org", "skipped"),  # not in the list any more
        ("dan@example.org", "pending"),
        ("eve@example.org", "pending"),
        ("fay@example.org", "pending"),
    ]
    assert journal[3][3:5] == ("Dan@example.org", "Dan")  # its first row, not the last
    assert (result.added, result.skipped, result.restored) == (3, 1, 0)


def test_a_skipped_reader_back_in_the_list_is_pending_again(tmp_path: Path) -> None:
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.sync("vol-1", iter(rows("ann", "bob")))
        assert journal.sync("vol-1", iter(rows("ann"))).skipped == 1
        result = journal.sync("vol-1", iter(rows("cat", "bob", "ann")))
        assert (result.added, result.skipped, result.restored) == (1, 0, 1)
        assert [(r[2], r[5]) for r in state(journal)] == [
            ("ann@example.org", "pending"),
            ("bob@example.org", "pending"),
            ("cat@example.org", "pending"),
        ]


def test_a_read_that_fails_part_way_writes_nothing(tmp_path: Path) -> None:
    def failing() -> Iterator[str]:
        yield json.dumps(rows("dan", "eve"))  # written to the journal already...
        raise OSError("the reader died")

    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.sync("vol-1", iter(rows("ann", "bob")))
        before = state(journal)
        with pytest.raises(OSError, match="the reader died"):
            journal.sync_json("vol-1", failing())
        assert state(journal) == before  # ...and rolled back with the rest
        assert journal.sync("vol-1", iter(rows("ann"))).skipped == 1  # usable after


def test_an_issues_first_sync_writes_what_a_later_sync_would(tmp_path: Path) -> None:
    """The first sync of an issue inserts straight into the journal; a later one goes
    through the list of those active now. Same rows, order, first-row-wins and result."""
    listed = [
        *rows("ann", "bob"),
        ("ANN@example.org".lower(), "ANN@example.org", "Second Ann"),
        *rows("cat", "dan", "eve"),
        ("bob@example.org", "b@example.org", "Third"),
        *rows("fay"),
    ]
    for how in ("rows", "json"):
        made = []
        for earlier in ([], rows("zed")):  # nothing of the issue yet / one row already
            with Journal(tmp_path / f"{how}-{len(earlier)}.sqlite3") as journal:
                if earlier:
                    journal.sync("vol-1", iter(earlier))
                result = sync_as(journal, how, listed)
                kept = [r[2:6] for r in state(journal) if r[2] != "zed@example.org"]
                made.append((result.added, kept))
        assert made[0] == made[1], how
        assert [k[0] for k in made[0][1]] == [
            f"{n}@example.org" for n in ("ann", "bob", "cat", "dan", "eve", "fay")
        ]
        assert made[0][1][0][2] == "Ann" and made[0][0] == 6


def test_a_row_without_a_key_does_not_stop_the_others_leaving(tmp_path: Path) -> None:
    """A NULL in `key NOT IN (...)` made the test unknown for every row: had a row come
    without a key, nobody who left the list would have been skipped."""
    with Journal(tmp_path / "j.sqlite3") as journal:
        journal.sync("vol-1", iter(rows("ann", "bob")))
        keyless = (None, "nobody@example.org", "Nobody")
        result = journal.sync("vol-1", iter([keyless, *rows("ann")]))  # type: ignore[list-item]
        assert result.skipped == 1
        assert [(r[2], r[5]) for r in state(journal)] == [
            ("ann@example.org", "pending"),
            ("bob@example.org", "skipped"),
        ]
