"""A row added by hand while `serve` runs: its reader can unsubscribe at once, before the
background rebuild of the index lands (here held back for as long as the test needs)."""

from __future__ import annotations

import time
from pathlib import Path

import filelock
import httpx

from newsletter.web import create_app
from tests.support.consent import ONE_CLICK, unsubscribe_url, write_list
from tests.support.webserver import running, web_settings

SECRET = "consent-test-secret-key-0123456789abcdef"
HAND = "added.by.hand@example.net"


def test_a_row_added_by_hand_unsubscribes_before_the_index_is_rebuilt(home: Path) -> None:
    settings = web_settings(None, secret_key=SECRET, fold_quiet_seconds=0.1)
    path = settings.subscribers_file
    write_list(path, 2_000)
    with running(create_app(settings), lifespan="on", startup_timeout=600) as base:
        # the rebuild waits for this lock: the index stays the one of the old file
        lock = filelock.FileLock(str(settings.state_dir / "index.lock"), timeout=60)
        with lock, httpx.Client(base_url=base, timeout=60) as client:
            with path.open("a", encoding="utf-8") as fh:
                fh.write(f"{HAND},Hand,active,admin,2030-01-01T00:00:00Z,,,,\n")
            page = client.get(unsubscribe_url(SECRET, HAND))
            assert page.status_code == 200
            assert "not on the list" not in page.text.lower()
            done = client.post(
                unsubscribe_url(SECRET, HAND),
                content=ONE_CLICK,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert (done.status_code, done.text) == (200, "You have been unsubscribed.\n")
            other = client.post(
                unsubscribe_url(SECRET, "nobody@example.net"),
                content=ONE_CLICK,
                headers={"content-type": "application/x-www-form-urlencoded"},
            )
            assert other.text == "This address is not on the list.\n"
        deadline = time.monotonic() + 120  # a deadline for a hang, not a speed check
        while f"{HAND},Hand,unsubscribed," not in path.read_text(encoding="utf-8"):
            assert time.monotonic() < deadline, "the unsubscribe never reached the file"
            time.sleep(0.1)
