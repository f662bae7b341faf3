"""Consent at scale, through the real server: every acknowledged unsubscribe lands in the
CSV, whatever else happens (a burst, kill -9, a spreadsheet saving the file meanwhile)."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx

from newsletter.audience.confirm import confirm_token
from newsletter.audience.subscribers import ImportEntry, SubscriberStore
from newsletter.web import create_app
from newsletter.web.app import Limits
from tests.support.consent import (
    address,
    fire,
    serve_process,
    spreadsheet_save,
    write_list,
)
from tests.support.webserver import (
    confirm_path,
    post_signup,
    running,
    subscribe_form,
    web_settings,
)

SECRET = "consent-test-secret-key-0123456789abcdef"


def statuses(path: Path, emails: set[str]) -> dict[str, str]:
    found = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        email = line.partition(",")[0]
        if email in emails:
            found[email] = line.split(",")[2]
    return found


def test_concurrent_unsubscribes_on_a_100000_row_list_none_refused_none_lost(
    home: Path,
) -> None:
    settings = web_settings(None, secret_key=SECRET, fold_quiet_seconds=0.2)
    path = settings.subscribers_file
    write_list(path, 100_000)
    original = path.read_bytes()
    targets = [address(i) for i in range(0, 100_000, 2_000)]  # 50 readers
    replays = [address(7)] * 300  # one reader reloading their own link
    with running(create_app(settings), lifespan="on", startup_timeout=600) as base:
        burst = fire(base, SECRET, targets + replays, workers=50)
        assert burst.errors == []
        assert burst.refused(targets) == 0 and burst.refused([address(7)]) == 0
        assert burst.acknowledged() == set(targets) | {address(7)}
    # the server's shutdown folds what was left (and a fold now waits for it if need be)
    SubscriberStore.from_settings(settings, lock_timeout=300).fold()
    wanted = set(targets) | {address(7)}
    assert statuses(path, wanted) == dict.fromkeys(wanted, "unsubscribed")
    # and every other row byte for byte
    changed = {e.encode() for e in wanted}
    before = [x for x in original.splitlines() if x.partition(b",")[0] not in changed]
    after = [x for x in path.read_bytes().splitlines() if x.partition(b",")[0] not in changed]
    assert after == before
    store = SubscriberStore.from_settings(settings)
    assert len(store.backups()) < len(wanted)  # folded in batches, not once per change


def test_serve_folds_by_itself_after_a_quiet_moment(home: Path) -> None:
    settings = web_settings(None, secret_key=SECRET, fold_quiet_seconds=0.1)
    write_list(settings.subscribers_file, 100)
    with running(create_app(settings), lifespan="on", startup_timeout=600) as base:
        assert fire(base, SECRET, [address(3), address(4)]).acknowledged() == {
            address(3),
            address(4),
        }
        deadline = time.monotonic() + 120  # a deadline for a hang, not a speed check
        wanted = {address(3): "unsubscribed", address(4): "unsubscribed"}
        while statuses(settings.subscribers_file, set(wanted)) != wanted:
            assert time.monotonic() < deadline, "serve never folded the ledger into the CSV"
            time.sleep(0.05)


def test_kill_9_in_a_burst_loses_no_acknowledged_unsubscribe(home: Path) -> None:
    settings = web_settings(None, secret_key=SECRET)
    write_list(settings.subscribers_file, 2_000)
    env = {
        "NEWSLETTER_SECRET_KEY": SECRET,
        "NEWSLETTER_PUBLIC_URL": "https://digest.example.org",
        "NEWSLETTER_FOLD_QUIET_SECONDS": "0.2",
    }
    emails = [address(i) for i in range(2_000)]
    with serve_process(home, env) as (proc, base):
        stop = threading.Event()
        result: dict[str, object] = {}

        def run() -> None:
            result["burst"] = fire(base, SECRET, emails, workers=20, stop=stop)

        thread = threading.Thread(target=run)
        thread.start()
        while not (home / ".newsletter" / "ledger.sqlite3").exists():
            time.sleep(0.01)
        deadline = time.monotonic() + 300
        store = SubscriberStore.from_settings(settings)
        assert store.live is not None
        while store.live.ledger.last_seq() < 100 and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(proc.pid, signal.SIGKILL)  # mid-burst, mid-fold perhaps
        proc.wait()
        stop.set()
        thread.join()
    burst = result["burst"]
    assert hasattr(burst, "acknowledged")
    acknowledged = burst.acknowledged()
    assert 0 < len(acknowledged) < len(emails)  # the kill did land mid-burst
    report = SubscriberStore.from_settings(settings).fold()  # the next fold (or serve start)
    assert report is not None
    found = statuses(settings.subscribers_file, acknowledged)
    assert found == dict.fromkeys(acknowledged, "unsubscribed")


def test_a_spreadsheet_saving_during_unsubscribes_signups_and_an_import_loses_nothing(
    home: Path,
) -> None:
    settings = web_settings(None, secret_key=SECRET, fold_quiet_seconds=0.05, fold_max_delay=0.3)
    path = settings.subscribers_file
    write_list(path, 2_000)
    unsubscribes = [address(i) for i in range(0, 2_000, 10)]
    signups = [f"new{i}@example.net" for i in range(30)]
    imported = [f"imported{i}@example.com" for i in range(40)]
    # one test client plays thirty readers: its budgets are the readers' together
    limits = Limits(per_ip=(1000, 600.0), confirmations_per_client=(1000, 3600.0))
    stop = threading.Event()
    saves = 0

    def spreadsheet() -> None:
        nonlocal saves
        while not stop.is_set():
            spreadsheet_save(path, think=0.3, edit=("Reader 5,", "Reader Five,"))
            saves += 1

    with running(create_app(settings, limits=limits), lifespan="on", startup_timeout=600) as base:
        admin = threading.Thread(target=spreadsheet)
        admin.start()
        web = threading.Thread(target=lambda: fire(base, SECRET, unsubscribes, workers=8))
        web.start()
        with httpx.Client(base_url=base, timeout=60) as client:
            csrf = subscribe_form(client)
            for email in signups:
                assert post_signup(client, csrf, email).status_code == 200
        store = SubscriberStore.from_settings(settings)
        store.import_entries([ImportEntry(i + 1, e) for i, e in enumerate(imported)])
        web.join()
        time.sleep(1.0)  # the spreadsheet keeps saving stale copies for a while
        stop.set()
        admin.join()
    assert saves >= 3
    SubscriberStore.from_settings(settings).fold()  # the next fold
    text = path.read_text(encoding="utf-8")
    rows = {line.partition(",")[0]: line.split(",")[2] for line in text.splitlines()[1:]}
    assert {e: rows.get(e) for e in unsubscribes} == dict.fromkeys(unsubscribes, "unsubscribed")
    # a pending signup that a save dropped with nothing else folded after it looks like a
    # row deleted by hand: it stays out until its reader confirms, and then it is back
    missing = [e for e in signups if e not in rows]
    store = SubscriberStore.from_settings(settings)
    for email in missing:
        assert confirm_token(confirm_path(settings, email).rpartition("/")[2], settings) == email
    store.fold()
    text = path.read_text(encoding="utf-8")
    rows = {line.partition(",")[0]: line.split(",")[2] for line in text.splitlines()[1:]}
    assert {e: rows.get(e) for e in signups} == {
        e: "active" if e in missing else "pending" for e in signups
    }
    assert {e: rows.get(e) for e in imported} == dict.fromkeys(imported, "active")
    assert "Reader Five," in text  # the admin's own edit is kept too
