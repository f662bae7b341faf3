"""The index: a fast rebuild that reads what the full reader reads, swapped in by a rename,
and look-ups that stay right while a rebuild of a file saved by hand has not landed."""

from __future__ import annotations

import io
import threading
from pathlib import Path

import pytest

from newsletter.audience.subscribers import SubscriberStore, scan
from newsletter.audience.subscribers.csvio import read_records
from newsletter.audience.subscribers.index import unpack
from newsletter.audience.subscribers.rows import RowValidator
from newsletter.audience.subscribers.scan import Entry, entry_of, find_rows, scan_entries
from newsletter.errors import SubscriberFileError

HEADER = "email,name,status,source,subscribed_at,confirmed_at,updated_at,note,language"
ROWS = [
    "Alice@Example.org,Alice,Active,cli,,,2024-01-01T00:00:00Z,,EN",
    'bob@example.org,"Brown, Bob",active,cli,,,,"two\nlines, with ""quotes""",ja',
    "user@bücher.example,Bü,active,cli,,,,,",
    "user@xn--bcher-kva.example,Dup IDN,bounced,cli,,,,,",
    "carol@example.org,Carol,pending,web,,,,,",
    "CAROL@example.org,Carol again,active,web,,,,,",
    "dave@example.org,Dave,active,cli,not-a-date,,,,",
    "erin@example.org,Erin,weird,cli,,,,,",
    "not an address,Nobody,active,cli,,,,,",
    ",,,,,,,,",
    "",
    "short@example.org,Short",
    "Postmaster@example.org,PM,active,cli,,,,,",
    '"quoted@example.org",Q,unsubscribed,cli,2024-01-01,,2024-01-02T00:00:00+09:00,,',
    " spaced@example.org , Spaced , active ,cli,,,,,",
    "frank@example.org,山田 花子,complained,cli,,,,,ja",
]


def full_entries(data: bytes) -> dict[str, Entry]:
    """What the full reader and validator make of ``data``: each address's first entry."""
    header, records = read_records(io.BytesIO(data), "f.csv")
    assert header is not None
    validator = RowValidator("f.csv", header)
    first: dict[str, Entry] = {}
    for record in records:
        entry = entry_of(validator.row(*record))
        if entry is not None:
            first.setdefault(entry[0], entry)
    return first


def fast_entries(data: bytes) -> dict[str, Entry]:
    first: dict[str, Entry] = {}
    for entry in scan_entries(io.BytesIO(data), "f.csv"):
        first.setdefault(entry[0], entry)
    return first


@pytest.mark.parametrize("block", [scan.BLOCK, 7, 64])
@pytest.mark.parametrize(
    ("newline", "bom", "delimiter", "last"),
    [("\n", False, ",", True), ("\r\n", True, ",", False), ("\r\n", False, ";", True)],
)
def test_the_fast_scan_reads_what_the_full_reader_reads(
    monkeypatch: pytest.MonkeyPatch, block: int, newline: str, bom: bool, delimiter: str, last: bool
) -> None:
    monkeypatch.setattr(scan, "BLOCK", block)  # block edges inside quoted records too
    rows = [
        r.replace(",", delimiter)
        .replace(f"Brown{delimiter} ", "Brown, ")
        .replace(f"lines{delimiter} ", "lines, ")
        for r in ROWS
    ]  # the commas inside quoted cells stay
    text = newline.join([HEADER.replace(",", delimiter), *rows]) + (newline if last else "")
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    expected = full_entries(data)
    assert fast_entries(data) == expected
    assert expected["alice@example.org"] == (
        "alice@example.org", 2, "active\t2024-01-01T00:00:00Z\tAlice@example.org\ten"
    )  # fmt: skip
    status = {key: unpack(key, line, state).status for key, line, state in expected.values()}
    assert status["user@bücher.example"] == "active"  # the first spelling wins
    assert status["carol@example.org"] == "pending"
    assert status["dave@example.org"] == status["erin@example.org"] == "problem"


def test_a_file_the_full_reader_refuses_is_refused_naming_the_line(tmp_path: Path) -> None:
    path = tmp_path / "subscribers.csv"
    text = HEADER + "\nok@example.org,Ok,active,,,,,,\nbad@example.org,Caf\xe9,active,,,,,,\n"
    path.write_bytes(text.encode("latin-1"))
    store = SubscriberStore(path, state_dir=tmp_path / "state")
    assert store.live is not None
    with pytest.raises(SubscriberFileError) as caught:
        store.live.refresh_index()
    assert "subscribers.csv:3: not UTF-8 text (byte 0xe9 at column 20)" in str(caught.value)


def make(tmp_path: Path, rows: list[str]) -> SubscriberStore:
    path = tmp_path / "subscribers.csv"
    path.write_text(HEADER + "\n" + "".join(r + "\n" for r in rows), encoding="utf-8")
    return SubscriberStore(path, state_dir=tmp_path / "state", lock_timeout=5)


def generations(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "state").glob("index-*.sqlite3"))


def test_a_rebuild_is_a_new_file_swapped_in_and_readers_move_to_it(tmp_path: Path) -> None:
    store = make(tmp_path, [f"r{i}@example.org,R,active,,,,,," for i in range(50)])
    live = store.live
    assert live is not None
    assert live.refresh_index() and live.index_is_current()
    first = generations(tmp_path)
    assert len(first) == 1
    seen: list[object] = []
    other = threading.Thread(target=lambda: seen.append(live.index.lookup("r7@example.org")))
    other.start()
    other.join()
    with store.path.open("a", encoding="utf-8") as fh:  # a hand edit: a new row
        fh.write("new@example.org,New,active,,,,,,\n")
    assert live.index.lookup("new@example.org") is None  # the old generation, still open
    assert live.refresh_index() and not live.refresh_index()  # rebuilt once, then current
    state = live.index.lookup("new@example.org")
    assert state is not None and (state.status, state.line) == ("active", 52)
    assert live.index.count() == 51
    for _ in range(3):
        live.refresh_index(force=True)
    kept = generations(tmp_path)
    assert len(kept) == 2 and first[0] not in kept  # the current one and the one before
    assert seen and getattr(seen[0], "status", None) == "active"


def test_a_row_added_by_hand_reads_right_before_the_index_catches_up(tmp_path: Path) -> None:
    store = make(tmp_path, [f"r{i}@example.org,R,active,,,,,," for i in range(50)])
    live = store.live
    assert live is not None
    live.refresh_index()
    live.inline_rebuild = False  # as under `serve`: the background rebuilds
    assert store.status("nobody@example.org") is None
    assert live.unindexed.searches == 0  # the index is current: its "no" stands
    with store.path.open("a", encoding="utf-8") as fh:
        fh.write("Added.By.Hand@Example.org,Hand,active,admin,,,,,\n")
        fh.write('"quoted, multi@example.org",X,active,,,,,,\n')
    state = store.status("added.by.hand@example.org")
    assert state is not None and (state.email, state.status) == (
        "Added.By.Hand@example.org",
        "active",
    )
    before = store.suppress({"added.by.hand@example.org": ("unsubscribed", "one-click")})
    assert before == {"added.by.hand@example.org": "active"}  # not "not on the list"
    state = store.status("added.by.hand@example.org")
    assert state is not None and state.status == "unsubscribed"
    searches = live.unindexed.searches
    assert store.status("nobody@example.org") is None
    assert store.status("nobody@example.org") is None  # answered once per file version
    assert live.unindexed.searches == searches + 1
    live.refresh_index()
    assert store.status("someone.else@example.org") is None
    assert live.unindexed.searches == searches + 1  # current again: no search


def test_concurrent_lookups_of_unindexed_addresses_share_searches(tmp_path: Path) -> None:
    store = make(tmp_path, [f"r{i}@example.org,R,active,,,,,," for i in range(2000)])
    live = store.live
    assert live is not None
    live.refresh_index()
    live.inline_rebuild = False
    with store.path.open("a", encoding="utf-8") as fh:
        fh.writelines(f"hand{i}@example.net,H,pending,,,,,,\n" for i in range(30))
    results: dict[str, str | None] = {}
    barrier = threading.Barrier(30)

    def look(i: int) -> None:
        barrier.wait()
        state = store.status(f"hand{i}@example.net")
        results[f"hand{i}"] = state.status if state else None

    threads = [threading.Thread(target=look, args=(i,)) for i in range(30)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {f"hand{i}": "pending" for i in range(30)}
    assert live.unindexed.searches < 30


def test_find_rows_finds_the_first_row_whatever_its_spelling(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(scan, "BLOCK", 32)
    data = ("\n".join([HEADER, *ROWS]) + "\n").encode("utf-8")
    keys = {"bob@example.org", "carol@example.org", "user@bücher.example", "x@example.org"}
    found = find_rows(io.BytesIO(data), "f.csv", keys)
    assert {
        k: (r.line, r.subscriber.status if r.subscriber else None) for k, r in found.items()
    } == {
        "bob@example.org": (3, "active"),
        "carol@example.org": (7, "pending"),
        "user@bücher.example": (5, "active"),
    }


def test_an_unreadable_file_is_reported_not_crashed_on(tmp_path: Path) -> None:
    store = make(tmp_path, ["r1@example.org,R,active,,,,,,"])
    live = store.live
    assert live is not None
    live.refresh_index()
    live.inline_rebuild = False
    store.path.write_bytes(b'email,"name\n')  # saved broken: a quote never closed
    with pytest.raises(SubscriberFileError) as caught:
        store.status("new@example.org")
    assert "a quoted cell that starts here is never closed" in str(caught.value)
