"""The consent ledger and its fold: machine changes durable at once, in the file in batches,
never undone by a hand edit or a spreadsheet save."""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

from newsletter.audience.confirm import activate, confirm_token, request_confirmation
from newsletter.audience.subscribers import SubscriberStore
from newsletter.audience.subscribers.ledger import Change
from newsletter.config import Settings
from newsletter.errors import NewsletterError
from newsletter.tokens import CONFIRM_TTL, make_token

HEADER = "email,name,status,source,subscribed_at,confirmed_at,updated_at,note\n"
ROWS = [
    "alice@example.org,Alice,active,cli,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,"
    "2024-01-01T00:00:00Z,\n",
    'bob@example.org,"Brown, Bob",active,cli,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,'
    '2024-01-01T00:00:00Z,"two\nlines"\n',
    "carol@example.org,Carol,pending,web,2024-01-01T00:00:00Z,,2024-01-01T00:00:00Z,\n",
    "dave@example.org,Dave,active,cli,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,"
    "2024-01-01T00:00:00Z,\n",
]
NOW = "2030-01-01T00:00:00Z"


def make(tmp_path: Path, rows: list[str] = ROWS) -> SubscriberStore:
    path = tmp_path / "subscribers" / "subscribers.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(HEADER + "".join(rows), encoding="utf-8", newline="")
    return SubscriberStore(
        path,
        backup_dir=tmp_path / ".newsletter" / "backups",
        state_dir=tmp_path / ".newsletter",
        clock=lambda: NOW,
        lock_timeout=5,
    )


def text(store: SubscriberStore) -> str:
    return store.path.read_text(encoding="utf-8")


def line_of(store: SubscriberStore, email: str) -> str:
    return next(x for x in text(store).splitlines() if x.startswith(email))


def test_a_suppression_is_visible_at_once_and_in_the_file_after_the_fold(tmp_path: Path) -> None:
    store = make(tmp_path)
    before = text(store)
    assert store.suppress({"alice@example.org": ("unsubscribed", "web")}) == {
        "alice@example.org": "active"
    }
    assert text(store) == before  # no rewrite per change
    state = store.status("alice@example.org")
    assert state is not None and state.status == "unsubscribed"
    sub = store.get("alice@example.org")
    assert sub is not None and sub.status == "unsubscribed"
    assert [s.email for s in store.iter_active()] == ["bob@example.org", "dave@example.org"]
    assert store.held(["alice@example.org", "bob@example.org"]) == {"alice@example.org"}
    report = store.fold()
    assert report is not None and (report.folded, report.applied, report.wrote) == (1, 1, True)
    assert line_of(store, "alice@example.org") == (
        "alice@example.org,Alice,unsubscribed,cli,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,"
        f"{NOW},web"
    )
    # every other row byte for byte
    assert text(store).replace(line_of(store, "alice@example.org") + "\n", ROWS[0]) == before


def test_a_replay_records_nothing_and_a_batch_is_one_rewrite_and_one_backup(
    tmp_path: Path,
) -> None:
    store = make(tmp_path)
    assert store.live is not None
    for _ in range(20):  # one reader reloading their link
        store.suppress({"alice@example.org": ("unsubscribed", "one-click")})
    store.suppress({"bob@example.org": ("unsubscribed", "one-click")})
    store.suppress({"dave@example.org": ("bounced", "550 5.1.1")})
    assert store.live.ledger.last_seq() == 3
    report = store.fold()
    assert report is not None and report.applied == 3 and report.wrote
    assert len(store.backups()) == 1
    assert store.fold() is not None and len(store.backups()) == 1  # nothing new: no rewrite
    statuses = {s.key: s.status for s in store.iter_valid()}
    assert statuses["alice@example.org"] == "unsubscribed"
    assert statuses["bob@example.org"] == "unsubscribed"
    assert statuses["dave@example.org"] == "bounced"


def test_a_spreadsheet_save_that_undid_an_unsubscribe_has_it_reapplied(tmp_path: Path) -> None:
    store = make(tmp_path)
    opened = text(store)  # the admin opens the file...
    store.suppress({"alice@example.org": ("unsubscribed", "one-click")})
    store.fold()
    # ...edits a name and saves the copy opened before the fold (no lock, rename)
    saved = opened.replace("Dave,", "David,")
    tmp = store.path.with_suffix(".tmp")
    tmp.write_text(saved, encoding="utf-8", newline="")
    tmp.replace(store.path)
    state = store.status("alice@example.org")
    assert state is not None and state.status == "unsubscribed"  # never sent to meanwhile
    report = store.fold()
    assert report is not None and report.wrote
    assert report.reapplied == [
        f"{store.display}:2: alice@example.org: unsubscribed again (one-click)"
    ]
    assert ",unsubscribed," in line_of(store, "alice@example.org")
    assert line_of(store, "dave@example.org").startswith("dave@example.org,David,")  # kept


def test_a_hand_edit_wins_over_an_older_confirmation_but_not_over_an_unsubscribe(
    tmp_path: Path,
) -> None:
    store = make(tmp_path)
    assert store.live is not None
    confirm = Change(
        "carol@example.org", "carol@example.org", "activate", "active", before="pending", at=NOW
    )
    store.live.decide("carol@example.org", lambda state, hold: confirm)
    # the admin, meanwhile, marks carol unsubscribed by hand (before any fold)
    edited = text(store).replace(
        "carol@example.org,Carol,pending", "carol@example.org,Carol,unsubscribed"
    )
    store.path.write_text(edited, encoding="utf-8", newline="")
    report = store.fold()
    assert report is not None and report.applied == 0
    assert report.conflicts == [
        f"{store.display}:5: carol@example.org: confirmation not applied: the row is "
        "unsubscribed now"
    ]
    assert ",unsubscribed," in line_of(store, "carol@example.org")


def test_a_pending_signup_missing_from_the_file_stays_out_until_the_reader_confirms(
    tmp_path: Path, settings: Settings
) -> None:
    store = SubscriberStore.from_settings(settings)
    opened = text(store)
    result = request_confirmation(
        "new.reader@example.net", settings, source="web", name="=HYPERLINK(1)"
    )
    assert result.sent
    store.fold()
    assert "new.reader@example.net,'=HYPERLINK(1),pending,web," in text(store)  # neutralised
    # deleted by hand, or dropped by a save of a copy opened before: the file cannot tell,
    # and a pending row is no consent; it stays out, and the fold says so
    store.path.write_text(opened, encoding="utf-8", newline="")
    report = store.fold()
    assert report is not None and report.reapplied == []
    assert report.conflicts == [
        f"{store.display}: new.reader@example.net: a pending signup deleted by hand; "
        "left out until the reader confirms"
    ]
    assert "new.reader@example.net" not in text(store)
    state = store.status("new.reader@example.net")
    assert state is None
    # the reader's own confirmation (the link from the mail) adds it back, active
    secret = settings.require_secret()
    token = make_token(secret, "confirm", "new.reader@example.net", ttl=CONFIRM_TTL)
    assert confirm_token(token, settings, store=store) == "new.reader@example.net"
    store.fold()
    assert "new.reader@example.net,'=HYPERLINK(1),active,web," in text(store)


def test_signups_a_stale_save_dropped_with_others_come_back(
    tmp_path: Path, settings: Settings
) -> None:
    store = SubscriberStore.from_settings(settings)
    opened = text(store)
    for name in ("one", "two"):
        assert request_confirmation(f"{name}@example.net", settings, source="web").sent
        store.fold()
    store.path.write_text(opened, encoding="utf-8", newline="")  # a stale save drops both
    report = store.fold()
    assert report is not None and report.conflicts == []
    assert len(report.reapplied) == 2
    assert ",pending,web," in line_of(store, "one@example.net")
    assert ",pending,web," in line_of(store, "two@example.net")


def test_only_the_readers_own_confirmation_lifts_an_unsubscribe(settings: Settings) -> None:
    store = SubscriberStore.from_settings(settings)
    store.suppress({"alice@example.org": ("unsubscribed", "one-click")})
    store.fold()
    time.sleep(1.1)  # a token minted after the unsubscribe (cells are to the second)
    assert activate("alice@example.org", settings, store=store, minted=time.time()) == (
        "alice@example.org"
    )
    assert store.held(["alice@example.org"]) == set()
    report = store.fold()
    assert report is not None and report.applied == 1 and not report.reapplied
    sub = store.get("alice@example.org")
    assert sub is not None and sub.status == "active"


def test_an_admin_purge_forgets_the_address_in_the_ledger(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.live is not None
    store.suppress({"alice@example.org": ("complained", "spam report")})
    assert store.purge("alice@example.org") == [2]
    assert store.live.ledger.hold("alice@example.org") is None
    assert store.live.ledger.changes_after(0, "alice@example.org") == []
    assert "alice@example.org" not in text(store)


def test_concurrent_writers_share_commits_and_one_failure_stays_its_own(tmp_path: Path) -> None:
    store = make(tmp_path)
    assert store.live is not None
    ledger = store.live.ledger
    emails = [f"reader{i}@example.org" for i in range(40)]
    barrier = threading.Barrier(41)
    results: dict[str, object] = {}

    def unsubscribe(email: str) -> None:
        barrier.wait()
        results[email] = store.suppress({email: ("unsubscribed", "one-click")})

    def broken() -> None:
        barrier.wait()

        def fail(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT INTO changes (key) VALUES ('only a key')")  # NOT NULL fails

        try:
            ledger.commit_group(fail)
        except NewsletterError as exc:
            results["broken"] = exc.message

    threads = [threading.Thread(target=unsubscribe, args=(e,)) for e in emails]
    threads.append(threading.Thread(target=broken))
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert {e: results[e] for e in emails} == {e: {e: None} for e in emails}
    assert "NOT NULL constraint failed" in str(results["broken"])
    assert ledger.last_seq() == 40 and set(ledger.holds()) == set(emails)
