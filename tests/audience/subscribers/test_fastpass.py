"""The fold's fast pass gives exactly what the full reader gives, on what spreadsheets write."""

from __future__ import annotations

import io

import pytest

from newsletter.audience.subscribers.csvio import read_records
from newsletter.audience.subscribers.fastpass import run_fast_pass
from newsletter.audience.subscribers.fold import FoldMutation
from newsletter.audience.subscribers.ledger import Change, Hold
from newsletter.audience.subscribers.mutations import run_pass
from newsletter.audience.subscribers.rows import RowValidator

NOW = "2030-01-01T00:00:00Z"
ROWS = [
    "Alice@Example.org,Alice,active,cli,,,2024-01-01T00:00:00Z,",
    'bob@example.org,"Brown, Bob",active,cli,,,,"two\nlines"',
    "user@bücher.example,Bü,active,cli,,,,",
    "user@xn--bcher-kva.example,Dup IDN,active,cli,,,,",
    "carol@example.org,Carol,pending,web,,,,",
    "CAROL@example.org,Carol again,active,web,,,,",
    "dave@example.org,Dave,active,cli,not-a-date,,,",
    "erin@example.org,Erin,active,cli,,,,",
    "frank@example.org,Frank,active,cli,,,,",
]


def changes() -> dict[str, list[Change]]:
    items = [
        Change("alice@example.org", "alice@example.org", "suppress", "unsubscribed", "active",
               "one-click", at=NOW, seq=1),
        Change("bob@example.org", "bob@example.org", "suppress", "bounced", "active", "550",
               at=NOW, seq=2),
        Change("user@bücher.example", "user@bücher.example", "suppress", "complained",
               "active", "spam", at=NOW, seq=3),
        Change("carol@example.org", "carol@example.org", "activate", "active", "pending",
               "confirmed", at=NOW, seq=4),
        Change("dave@example.org", "dave@example.org", "suppress", "unsubscribed", "active",
               "x", at=NOW, seq=5),
        Change("new@example.net", "new@example.net", "request", "pending", note="",
               name="=1+1", source="web", at=NOW, seq=6),
    ]  # fmt: skip
    grouped: dict[str, list[Change]] = {}
    for c in items:
        grouped.setdefault(c.key, []).append(c)
    return grouped


HOLDS = {"erin@example.org": Hold("erin@example.org", "erin@example.org", "bounced", "550", NOW, 9)}


def full(data: bytes) -> str:
    header, records = read_records(io.BytesIO(data), "f.csv")
    assert header is not None
    validator = RowValidator("f.csv", header)
    out = io.StringIO()
    mutation = FoldMutation("f.csv", changes(), HOLDS, {}, 0)
    run_pass(mutation, header, (validator.row(*r) for r in records), NOW, out)
    return out.getvalue()


def fast(data: bytes) -> str:
    out = io.BytesIO()
    mutation = FoldMutation("f.csv", changes(), HOLDS, {}, 0)
    keys = frozenset(changes()) | frozenset(HOLDS)
    run_fast_pass(mutation, io.BytesIO(data), keys, NOW, out, "f.csv")
    return out.getvalue().decode("utf-8")


@pytest.mark.parametrize(
    ("newline", "bom", "delimiter"),
    [("\n", False, ","), ("\r\n", True, ","), ("\r\n", False, ";")],
)
def test_fast_pass_equals_the_full_pass(newline: str, bom: bool, delimiter: str) -> None:
    header = "email,name,status,source,subscribed_at,confirmed_at,updated_at,note"
    rows = [r.replace(",", delimiter) if delimiter != "," and '"' not in r else r for r in ROWS]
    text = newline.join([header.replace(",", delimiter), *rows]) + newline
    data = (b"\xef\xbb\xbf" if bom else b"") + text.encode("utf-8")
    expected = full(data)
    assert fast(data) == expected
    assert "'=1+1" in expected and ",unsubscribed," in expected.replace(";", ",")


def test_a_last_line_without_a_break_and_an_unknown_column() -> None:
    data = b"email,status,crm\nalice@example.org,active,7\nerin@example.org,active,8"
    # the file lacks most columns: the fold adds them to the header
    assert fast(data) == full(data)
