"""The row validator's fast paths give exactly what its general paths give: the same
subscribers, the same problems on the same lines, the same duplicates' first lines."""

from __future__ import annotations

import io
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from newsletter.audience.subscribers.csvio import read_records
from newsletter.audience.subscribers.rows import (
    DICT_FILE_BYTES,
    DICT_FILE_KEYS,
    RowValidator,
    SeenKeys,
    SubscriberRow,
    dict_keys_for,
)

cell = st.sampled_from(
    ["", " ", "active", " Active ", "pending", "nope", "2024-05-01", "2024-05-01T09:30:00Z",
     "May 1st", "Ann", " Ann Lee ", "ja", "EN", "cli", "a@example.org", " A@Example.org ",
     "b@example.org", "not an address", "c@example.com", "x"]
)  # fmt: skip
columns = st.permutations(
    ["email", "name", "status", "source", "subscribed_at", "confirmed_at", "updated_at",
     "note", "language", "extra"]
).flatmap(lambda names: st.integers(2, len(names)).map(lambda n: names[:n]))  # fmt: skip


def validate(
    header_cells: list[str], rows: list[list[str]], *, general: bool, small: int
) -> list[SubscriberRow]:
    text = ",".join(header_cells) + "\n" + "".join(",".join(r) + "\n" for r in rows)
    header, records = read_records(io.BytesIO(text.encode()), "f.csv")
    assert header is not None
    validator = RowValidator("f.csv", header)
    validator.seen = SeenKeys(small=small)
    if general:
        validator._width = 1 << 30  # every row as if short: the per-cell path
    return [validator.row(*record) for record in records]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    names=columns.filter(lambda n: "email" in n and "status" in n),
    rows=st.lists(st.lists(cell, max_size=11), max_size=30),
)
def test_fast_row_path_and_dict_of_keys_match_the_general_paths(
    names: list[str], rows: list[list[str]]
) -> None:
    fast = validate(names, rows, general=False, small=3)  # the dict, then the table
    assert fast == validate(names, rows, general=True, small=0)  # per cell, table only
    assert fast == validate(names, rows, general=False, small=1 << 20)  # the dict only


def test_seen_keys_move_from_the_dict_to_the_table_and_keep_first_lines() -> None:
    seen = SeenKeys(capacity=4, small=100)
    keys = [f"user{i}@example.org" for i in range(5000)]
    firsts = []
    for i, key in enumerate(keys):
        firsts.append(seen.first_line(key, i + 2))
        if i == 50:  # a duplicate while the dict holds them
            assert not seen.compact
            assert seen.first_line(keys[3], 999_999) == 5
    assert firsts == list(range(2, 5002))
    assert seen.compact and seen.count == 5000
    # duplicates of keys first seen in the dict phase and in the table phase
    assert [seen.first_line(k, 999_999) for k in keys] == list(range(2, 5002))
    assert seen.count == 5000 and seen.nbytes <= 5000 * 70


def test_seen_keys_stay_in_the_dict_up_to_its_size() -> None:
    seen = SeenKeys(small=10)
    for i in range(10):
        assert seen.first_line(f"k{i}@example.org", i + 2) == i + 2
    assert not seen.compact and seen.count == 10
    assert seen.first_line("k0@example.org", 50) == 2
    assert not seen.compact
    seen.first_line("k10@example.org", 51)
    assert seen.compact and seen.count == 11
    assert seen.first_line("k10@example.org", 52) == 51


def test_a_big_file_keeps_its_keys_compact_from_the_first_row(tmp_path: Path) -> None:
    """The dict's strings would leave holes in the heap: a million-row file never has one."""
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    small.write_text("email,status\na@example.org,active\n")
    with big.open("w") as fh:
        fh.write("email,status\n")
        fh.write("x" * (DICT_FILE_BYTES + 1) + "\n")  # one long line is enough for its size
    for path, dict_keys in ((small, DICT_FILE_KEYS), (big, 0)):
        with path.open("rb") as fh:
            header, _records = read_records(fh, path.name)
            assert header is not None and header.file_bytes == path.stat().st_size
            assert dict_keys_for(header.file_bytes) == dict_keys
            assert RowValidator(path.name, header).seen.compact is (dict_keys == 0)
    header, _records = read_records(io.BytesIO(b"email,status\n"), "stream")
    assert header is not None and header.file_bytes is None
    assert dict_keys_for(None) == SeenKeys.SMALL
