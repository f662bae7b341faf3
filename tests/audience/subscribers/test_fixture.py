"""A file as a spreadsheet saves it: the exact report, and a write that changes one row."""

from __future__ import annotations

import shutil
from pathlib import Path

from newsletter.audience.subscribers import SubscriberStore

DATA = Path(__file__).resolve().parents[2] / "data" / "subscribers"
NOW = "2024-06-01T12:00:00Z"

EXPECTED_REPORT = """\
{p}:5: email: ALICE@example.org is a duplicate of line 2
{p}:6: email: not a valid address 'not-an-address': An email address must have an @-sign.
{p}:8: status: unknown status 'paused' (expected one of pending, active, unsubscribed, \
bounced, complained)
{p}:9: subscribed_at: not an ISO 8601 date '01/02/2024' (e.g. 2024-05-01T09:30:00Z)
{p}:12: email: bob@example.com is a duplicate of line 3
{p}:13: email: not a valid address 'user@@example.org': The part after the @-sign contains \
invalid characters: '@'."""


def _copy(tmp_path: Path) -> SubscriberStore:
    path = tmp_path / "subscribers.csv"
    shutil.copyfile(DATA / "spreadsheet.csv", path)
    return SubscriberStore(path, clock=lambda: NOW)


def test_spreadsheet_fixture_gives_exactly_the_expected_report(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    report = "\n".join(str(p) for p in store.check())
    assert report == EXPECTED_REPORT.format(p=store.path)


def test_spreadsheet_fixture_sendable_rows(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    active = [(s.line, s.email, s.name) for s in store.iter_active()]
    assert active == [
        (2, "alice@example.org", "Alice Archer"),
        (3, "Bob@example.com", "Bob Brown"),
        (4, "hanako@example.org", "山田 花子"),
        (7, "eve@example.com", '=HYPERLINK("http://example.com","click")'),
    ]
    statuses = {s.email: s.status for s in store.iter_valid()}
    assert statuses["dave@example.org"] == "bounced"
    assert statuses["frank@example.org"] == "pending"
    assert "carol@example.org" not in statuses  # bad date: kept in the file, never sent


def test_a_write_leaves_every_other_row_byte_identical(tmp_path: Path) -> None:
    store = _copy(tmp_path)
    before = store.path.read_bytes()
    assert store.set_status("frank@example.org", "active") is True
    after = store.path.read_bytes()
    old_row = "frank@example.org,Frank,pending,web,2024-04-01T00:00:00Z,,,,M-012\r\n"
    new_row = f"frank@example.org,Frank,active,web,2024-04-01T00:00:00Z,{NOW},{NOW},,M-012\r\n"
    assert after == before.replace(old_row.encode(), new_row.encode())
    assert after.startswith(b"\xef\xbb\xbfE-mail , Name ,")
    # the bad rows are still there, untouched, and still reported
    assert "\n".join(str(p) for p in store.check()) == EXPECTED_REPORT.format(p=store.path)
    assert len(store.backups()) == 1
    assert store.backups()[0].read_bytes() == before
