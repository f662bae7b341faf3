"""Imports, stale saves and hand deletions: what the fold puts back and what it leaves out.

* an import's rows come back whole after a save that dropped or turned them back;
* a hand edit made after the import wins, except over a suppression;
* a row deleted by hand from the current file stays deleted;
* a suppressed row deleted by hand keeps its suppression: no import adds it back.
"""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.subscribers import ImportEntry, SubscriberStore

HEADER = "email,name,status,source,subscribed_at,confirmed_at,updated_at,note\n"
ROWS = [
    "alice@example.org,Alice,active,cli,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,"
    "2024-01-01T00:00:00Z,\n",
    "bob@example.org,Bob,active,cli,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,"
    "2024-01-01T00:00:00Z,\n",
    "carol@example.org,Carol,unsubscribed,cli,2024-01-01T00:00:00Z,,2024-01-01T00:00:00Z,\n",
]
NOW = "2030-01-01T00:00:00Z"


def make(tmp_path: Path) -> SubscriberStore:
    path = tmp_path / "subscribers.csv"
    path.write_text(HEADER + "".join(ROWS), encoding="utf-8", newline="")
    return SubscriberStore(
        path, state_dir=tmp_path / "state", backup_dir=tmp_path / "backups",
        clock=lambda: NOW, lock_timeout=5,
    )  # fmt: skip


def text(store: SubscriberStore) -> str:
    return store.path.read_text(encoding="utf-8")


def save(store: SubscriberStore, content: str) -> None:
    """A spreadsheet's save: a temp file renamed over the list, no lock."""
    tmp = store.path.with_suffix(".tmp")
    tmp.write_text(content, encoding="utf-8", newline="")
    tmp.replace(store.path)


def row(store: SubscriberStore, email: str) -> dict[str, str]:
    lines = text(store).splitlines()
    header = lines[0].split(",")
    found = [x for x in lines[1:] if x.split(",")[0] == email]
    assert len(found) == 1, found
    return dict(zip(header, found[0].split(","), strict=False))


def entry(line: int, email: str, **kwargs: object) -> ImportEntry:
    return ImportEntry(line, email, **kwargs)  # type: ignore[arg-type]


def test_rows_an_import_added_come_back_whole_after_a_stale_save(tmp_path: Path) -> None:
    store = make(tmp_path)
    opened = text(store)  # a spreadsheet opened before the import
    report = store.import_entries(
        [
            entry(1, "dave@example.org", name="Dave", tags="press;vip", extras=(("crm_id", "C9"),)),
            entry(2, "erin@example.org", name="Erin", status="unsubscribed", note="from mailchimp"),
        ]
    )
    assert [o.email for o in report.added] == ["dave@example.org", "erin@example.org"]
    imported = row(store, "dave@example.org")
    save(store, opened.replace("Bob,", "Robert,"))  # no tags or crm_id column, no new rows
    fold = store.fold()
    assert fold is not None and fold.conflicts == []
    assert sorted(fold.reapplied) == [
        f"{store.display}: dave@example.org: active row added again "
        "(a save without it had dropped it)",
        f"{store.display}: erin@example.org: unsubscribed row added again "
        "(a save without it had dropped it)",
    ]
    assert row(store, "dave@example.org") == imported  # tags, crm_id, dates: whole
    assert row(store, "dave@example.org")["tags"] == "press;vip"
    assert row(store, "erin@example.org")["note"] == "from mailchimp"
    assert row(store, "bob@example.org")["name"] == "Robert"  # the admin's edit is kept


def test_an_import_update_a_stale_save_turned_back_is_applied_again(tmp_path: Path) -> None:
    store = make(tmp_path)
    opened = text(store)
    report = store.import_entries(
        [entry(1, "alice@example.org", name="Alice Archer", tags="board", extras=(("crm", "A1"),))]
    )
    assert [o.email for o in report.updated] == ["alice@example.org"]
    updated = row(store, "alice@example.org")
    assert (updated["name"], updated["tags"], updated["crm"]) == ("Alice Archer", "board", "A1")
    save(store, opened)  # alice is back to her text before the import
    fold = store.fold()
    assert fold is not None
    assert fold.reapplied == [
        f"{store.display}:2: alice@example.org: the import's columns again "
        "(a save had turned the row back)"
    ]
    assert row(store, "alice@example.org") == updated


def test_a_hand_edit_after_the_import_wins_but_not_over_a_suppression(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.import_entries(
        [
            entry(1, "alice@example.org", name="Alice Archer"),
            entry(2, "bob@example.org", status="unsubscribed", note="left in mailchimp"),
        ]
    )
    assert row(store, "bob@example.org")["status"] == "unsubscribed"
    edited = text(store).replace("Alice Archer", "Alice A.")
    edited = edited.replace("bob@example.org,Bob,unsubscribed", "bob@example.org,Bob,active")
    save(store, edited)  # edited by hand after the import
    fold = store.fold()
    assert fold is not None
    assert row(store, "alice@example.org")["name"] == "Alice A."  # the hand's edit
    assert row(store, "bob@example.org")["status"] == "unsubscribed"  # the suppression holds
    assert fold.reapplied == [
        f"{store.display}:3: bob@example.org: unsubscribed again (the file said active)"
    ]


def test_a_row_deleted_by_hand_from_the_current_file_stays_deleted(tmp_path: Path) -> None:
    store = make(tmp_path)
    store.import_entries([entry(1, "dave@example.org"), entry(2, "erin@example.org")])
    current = text(store)
    save(store, "".join(x for x in current.splitlines(True) if not x.startswith("dave@")))
    fold = store.fold()
    assert fold is not None and fold.reapplied == []
    assert fold.conflicts == [
        f"{store.display}: dave@example.org: deleted by hand (rows written with it or since "
        "are still in the file); left out"
    ]
    assert "dave@example.org" not in text(store) and "erin@example.org" in text(store)
    assert store.status("dave@example.org") is None
    assert store.fold() is not None and "dave@example.org" not in text(store)  # and stays


def test_a_suppressed_row_deleted_by_hand_keeps_its_suppression(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.live is not None
    store.live.refresh_index()  # carol is unsubscribed in the file (typed by hand)
    assert store.held(["carol@example.org"]) == set()
    save(store, text(store).replace(ROWS[2], ""))  # the admin deletes her row
    assert store.status("carol@example.org") is None  # not on the list (the index caught up)
    assert store.held(["carol@example.org"]) == {"carol@example.org"}  # never sent to
    report = store.import_entries(
        [entry(1, "carol@example.org", name="Carol"), entry(2, "frank@example.org")], force=True
    )
    assert [(o.email, o.detail) for o in report.skipped] == [
        (
            "carol@example.org",
            "unsubscribed (its row was deleted by hand); not added back: only the reader's "
            "own confirmation subscribes it again",
        )
    ]
    assert [o.email for o in report.added] == ["frank@example.org"]
    assert "carol@example.org" not in text(store)


def test_the_last_row_a_machine_wrote_deleted_by_hand_comes_back_and_the_fold_says_so(
    tmp_path: Path,
) -> None:
    store = make(tmp_path)
    store.import_entries([entry(1, "dave@example.org", tags="x")])
    # nothing a fold wrote with it or since is left to tell a deletion from a stale save
    save(store, "".join(x for x in text(store).splitlines(True) if not x.startswith("dave@")))
    fold = store.fold()
    assert fold is not None and fold.conflicts == []
    assert fold.reapplied == [
        f"{store.display}: dave@example.org: active row added again "
        "(a save without it had dropped it)"
    ]
    assert row(store, "dave@example.org")["tags"] == "x"
    assert store.purge("dave@example.org") == [5]  # the way to delete it for good
    assert store.fold() is not None and "dave@example.org" not in text(store)


def test_a_purge_leaves_no_suppression_behind(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.live is not None
    store.live.refresh_index()  # carol is unsubscribed in the file and in the index
    assert store.purge("carol@example.org") == [4]  # a data-protection request
    store.live.refresh_index(force=True)  # the rebuild sees her row gone: not a deletion
    assert store.held(["carol@example.org"]) == set()
    assert store.live.ledger.changes_after(0, "carol@example.org") == []
