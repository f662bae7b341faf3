"""The subscriber store: reading what spreadsheets write, validation, safe writes."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import filelock
import pytest

from newsletter.audience.subscribers import (
    BACKUPS_KEPT,
    AddressError,
    AlreadySubscribedError,
    Edit,
    Header,
    Mutation,
    Subscriber,
    SubscriberRow,
    SubscriberStore,
    address_key,
    normalize_address,
)
from newsletter.errors import LockTimeoutError, SubscriberFileError

ROOT = Path(__file__).resolve().parents[3]
NOW = "2024-06-01T12:00:00Z"
HEADER = "email,name,status,source,subscribed_at,confirmed_at,updated_at,note\n"


def make(tmp_path: Path, text: str | bytes, name: str = "subscribers.csv") -> SubscriberStore:
    path = tmp_path / name
    if isinstance(text, str):
        text = text.encode("utf-8")
    path.write_bytes(text)
    return SubscriberStore(path, clock=lambda: NOW, lock_timeout=5)


def problems(store: SubscriberStore) -> list[str]:
    return [str(p) for p in store.check()]


# Reading -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "header",
    ["Email,Status", "E-mail,STATUS", " email address , status ", "E-Mail Address;Status"],
)
def test_header_variants_are_recognised(tmp_path: Path, header: str) -> None:
    delimiter = ";" if ";" in header else ","
    store = make(tmp_path, f"{header}\r\na@example.org{delimiter}active\r\n")
    assert [s.email for s in store.iter_active()] == ["a@example.org"]
    assert problems(store) == []


def test_bom_crlf_quoted_newlines_and_stray_spaces(tmp_path: Path) -> None:
    text = (
        "\ufeffEmail , Name,Status\r\n"
        ' a@example.org ,"Lastname, First",  Active \r\n'
        'b@example.org,"two\r\nlines",pending\r\n'
        "c@example.org,C,active"  # no final line break
    )
    store = make(tmp_path, text)
    rows = list(store.iter_rows())
    assert [r.line for r in rows] == [2, 3, 5]
    assert rows[0].subscriber == Subscriber("a@example.org", "Lastname, First", "active", "", 2)
    assert rows[1].cells == ("b@example.org", "two\r\nlines", "pending")
    assert rows[1].raw == 'b@example.org,"two\r\nlines",pending\r\n'
    assert [s.email for s in store.iter_active()] == ["a@example.org", "c@example.org"]


def test_missing_file_and_missing_columns_are_clear(tmp_path: Path) -> None:
    store = SubscriberStore(tmp_path / "nope.csv")
    with pytest.raises(SubscriberFileError) as info:
        list(store.iter_rows())
    assert info.value.message == f"{tmp_path / 'nope.csv'}: no such file\n1 error"
    store = make(tmp_path, "name,status\nAlice,active\n")
    assert problems(store) == [
        f"{store.path}:1: no email column in the header (found: name, status)"
    ]


def test_legacy_windows_1252_is_refused_naming_the_line(tmp_path: Path) -> None:
    data = "email,name,status\r\nrene@example.org,René,active\r\n".encode("cp1252")
    store = make(tmp_path, data)
    with pytest.raises(SubscriberFileError) as info:
        list(store.iter_active())
    assert str(info.value.problems[0]) == (
        f"{store.path}:2: not UTF-8 text (byte 0xe9 at column 21); it looks like a legacy "
        "Windows-1252 export"
    )
    assert info.value.hint is not None and "CSV UTF-8" in info.value.hint
    decoded = SubscriberStore(store.path, encoding="cp1252")
    assert [s.name for s in decoded.iter_active()] == ["René"]


def test_unclosed_quote_is_reported_not_swallowed(tmp_path: Path) -> None:
    store = make(
        tmp_path, 'email,name,status\na@example.org,"Oops,active\nb@example.org,B,active\n'
    )
    assert problems(store) == [
        f"{store.path}:2: unreadable CSV: a quoted cell that starts here is never closed"
    ]


def test_validation_reports_every_problem_and_keeps_bad_rows_out(tmp_path: Path) -> None:
    store = make(
        tmp_path,
        HEADER
        + "a@example.org,A,active,,,,,\n"
        + "A@EXAMPLE.org,A2,active,,,,,\n"
        + "broken,B,active,,,,,\n"
        + "c@example.org,C,sleeping,,,,,\n"
        + "d@example.org,D,active,,yesterday,,,\n"
        + ",,,,,,,\n"
        + ",E,active,,,,,\n",
    )
    p = str(store.path)
    assert problems(store) == [
        f"{p}:3: email: A@EXAMPLE.org is a duplicate of line 2",
        f"{p}:4: email: not a valid address 'broken': An email address must have an @-sign.",
        f"{p}:5: status: unknown status 'sleeping' (expected one of pending, active, "
        "unsubscribed, bounced, complained)",
        f"{p}:6: subscribed_at: not an ISO 8601 date 'yesterday' (e.g. 2024-05-01T09:30:00Z)",
        f"{p}:8: email: no address",
    ]
    assert [s.email for s in store.iter_active()] == ["a@example.org"]
    with pytest.raises(SubscriberFileError) as info:
        store.raise_for_problems()
    assert info.value.message.endswith("\n5 errors")


def test_internationalised_addresses(tmp_path: Path) -> None:
    assert normalize_address("x@xn--bcher-kva.example") == "x@bücher.example"
    assert address_key("Ünïcode@Bücher.Example") == "ünïcode@bücher.example"
    store = make(
        tmp_path,
        "email,status\n用户@例子.广告,active\nx@bücher.example,active\nX@xn--bcher-kva.example,active\n",
    )
    assert problems(store) == [
        f"{store.path}:4: email: X@xn--bcher-kva.example is a duplicate of line 3"
    ]
    assert [s.key for s in store.iter_active()] == ["用户@例子.广告", "x@bücher.example"]


# Writing -------------------------------------------------------------------------------


def test_add_set_status_remove(tmp_path: Path) -> None:
    store = make(tmp_path, HEADER + "a@example.org,A,pending,web,2024-01-01T00:00:00Z,,,\n")
    sub = store.add("B@Example.org", name="Bee", source="cli")
    assert sub == Subscriber("B@example.org", "Bee", "active", "cli", 3, NOW, NOW, NOW, "")
    with pytest.raises(AlreadySubscribedError) as info:
        store.add("b@example.ORG")
    assert info.value.message == (
        f"{store.path}:3: B@example.org is already on the list (status: active)"
    )
    assert store.add("b@example.org", exist_ok=True) == sub
    with pytest.raises(AddressError):
        store.add("nobody")
    with pytest.raises(AddressError):
        store.set_status("a@example.org", "gone")

    assert store.set_status("A@example.org", "active") is True
    assert store.get("a@example.org") == Subscriber(
        "a@example.org", "A", "active", "web", 2, "2024-01-01T00:00:00Z", NOW, NOW, ""
    )
    assert store.set_status("zz@example.org", "bounced") is False
    assert store.set_status("b@example.org", "bounced", note="550 no such user") is True
    assert store.set_status("b@example.org", "bounced", note="550 again") is True
    got = store.get("b@example.org")
    assert got is not None and got.note == "550 no such user; 550 again"
    assert store.remove("a@example.org") is True
    assert store.get("a@example.org") is not None
    assert store.remove("b@example.org", purge=True) is True
    assert store.get("b@example.org") is None
    assert store.remove("b@example.org") is False
    assert (
        store.path.read_text()
        == HEADER + f"a@example.org,A,unsubscribed,web,2024-01-01T00:00:00Z,{NOW},{NOW},\n"
    )


def test_unchanged_rows_are_byte_identical_and_unknown_columns_kept(tmp_path: Path) -> None:
    original = (
        "\ufeffMember,E-mail,Status,Name\r\n"
        '7,"a@example.org",active,"Quoted ""as typed"""\r\n'
        "8,b@example.org,pending,B\r\n"
        "9,c@example.org,active,   spaced   \r\n"
    )
    store = make(tmp_path, original)
    assert store.set_status("b@example.org", "active")
    text = store.path.read_bytes().decode("utf-8")
    assert text == (
        "\ufeffMember,E-mail,Status,Name,confirmed_at,updated_at\r\n"
        '7,"a@example.org",active,"Quoted ""as typed"""\r\n'
        f"8,b@example.org,active,B,{NOW},{NOW}\r\n"
        "9,c@example.org,active,   spaced   \r\n"
    )


def test_nothing_is_written_when_nothing_changes(tmp_path: Path) -> None:
    store = make(tmp_path, HEADER + "a@example.org,A,active,,,,,\n")
    before = store.path.stat()
    assert store.set_status("a@example.org", "active") is True
    assert store.path.stat().st_mtime_ns == before.st_mtime_ns
    assert store.backups() == []
    missing = SubscriberStore(tmp_path / "new" / "list.csv", clock=lambda: NOW)
    assert missing.set_status("a@example.org", "active") is False
    assert not missing.path.exists()
    missing.add("a@example.org", status="pending", source="web")
    assert missing.path.read_text() == HEADER + f"a@example.org,,pending,web,{NOW},,{NOW},\n"


def test_backups_are_bounded(tmp_path: Path) -> None:
    store = make(tmp_path, HEADER)
    store.backup_dir = tmp_path / "state" / "backups"
    for i in range(BACKUPS_KEPT + 3):
        store.add(f"user{i}@example.org")
    backups = store.backups()
    assert len(backups) == BACKUPS_KEPT
    assert all(b.parent == tmp_path / "state" / "backups" for b in backups)
    # the newest backup is the file as it was before the last write
    assert backups[-1].read_text().count("\n") == BACKUPS_KEPT + 3


def test_lock_timeout_names_the_lock_file(tmp_path: Path) -> None:
    store = make(tmp_path, HEADER)
    store.lock_timeout = 0.05
    with filelock.FileLock(str(store.lock_path)), pytest.raises(LockTimeoutError) as info:
        store.add("a@example.org")
    assert info.value.message == (
        f"{store.lock_path}: another writer has held the subscriber lock for 0.05s"
    )
    assert info.value.exit_code == 7
    assert list(store.iter_rows()) == []


class _SpreadsheetSavesDuringWrite(Mutation):
    """Unsubscribes b@ ; on the first attempt an admin saves the file meanwhile."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.attempts = 0

    def begin(self, header: Header, now: str) -> None:
        self.attempts += 1

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        if row.key == "b@example.org":
            cells = list(row.cells)
            header.set(cells, "status", "unsubscribed")
            return cells
        return Edit.KEEP

    def end(self, header: Header) -> list[list[str]]:
        if self.attempts == 1:  # the admin's save lands while we are writing
            text = self.path.read_text(encoding="utf-8")
            self.path.write_text(
                text.replace("A (old)", "A (edited)") + "c@example.org,C,active\n",
                encoding="utf-8",
            )
        return []


def test_file_changed_on_disk_during_a_write_is_reread_and_change_reapplied(
    tmp_path: Path,
) -> None:
    store = make(
        tmp_path, "email,name,status\na@example.org,A (old),active\nb@example.org,B,active\n"
    )
    mutation = _SpreadsheetSavesDuringWrite(store.path)
    assert store.apply(mutation) is True
    assert mutation.attempts == 2 and store.write_attempts == 2
    assert store.path.read_text() == (
        "email,name,status\n"
        "a@example.org,A (edited),active\n"
        "b@example.org,B,unsubscribed\n"
        "c@example.org,C,active\n"
    )


def test_edit_between_read_and_write_is_kept(tmp_path: Path) -> None:
    store = make(tmp_path, "email,name,status\na@example.org,A,active\n")
    assert [s.email for s in store.iter_active()] == ["a@example.org"]
    # an admin adds a row in a spreadsheet; then the web server records an unsubscribe
    store.path.write_text("email,name,status\na@example.org,A,active\nz@example.org,Z,active\n")
    assert store.set_status("a@example.org", "unsubscribed")
    assert store.path.read_text().endswith("z@example.org,Z,active\n")


_WORKER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from newsletter.audience.subscribers import SubscriberStore

    store = SubscriberStore(Path(sys.argv[1]), lock_timeout=60)
    for i in range(200):
        store.add(f"{sys.argv[2]}{i}@example.org", source=sys.argv[2])
    """
)


def test_two_processes_adding_at_once_lose_nothing(tmp_path: Path) -> None:
    store = make(tmp_path, HEADER)
    workers = [
        subprocess.Popen([sys.executable, "-c", _WORKER, str(store.path), prefix], cwd=ROOT)
        for prefix in ("left", "right")
    ]
    assert [w.wait(timeout=120) for w in workers] == [0, 0]
    keys = [s.key for s in store.iter_valid()]
    assert len(keys) == 400
    assert set(keys) == {f"{p}{i}@example.org" for p in ("left", "right") for i in range(200)}
    assert problems(store) == []
    assert [k for k in keys if k.startswith("left")] == [f"left{i}@example.org" for i in range(200)]


def test_seen_keys_index_is_exact_and_grows() -> None:
    from newsletter.audience.subscribers.rows import SeenKeys

    seen = SeenKeys(capacity=4, small=0)  # the compact table from the first key
    keys = [f"user{i}@example.org" for i in range(5000)]
    assert [seen.first_line(k, i + 2) for i, k in enumerate(keys)] == list(range(2, 5002))
    assert [seen.first_line(k, 99999) for k in keys] == list(range(2, 5002))
    assert seen.count == 5000 and seen.nbytes <= 5000 * 70  # 20 B a slot, load 0.3-0.6
