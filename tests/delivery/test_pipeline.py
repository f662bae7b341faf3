"""The send loop for transports that write requests ahead (SendGrid's): the same
guarantees as the general loop, with requests written on another thread before their turn."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers import SubscriberStore
from newsletter.compose.message import Recipient
from newsletter.delivery.transports import Outcome
from newsletter.errors import SendRefusedError
from tests.delivery.test_campaign import campaign, setup
from tests.support.sendkit import HEADER, address, make_settings
from tests.support.transports import PreparingMockTransport


def test_each_reader_once_written_ahead_and_the_limit_holds(home: Path) -> None:
    builder, store, journal = setup(home, 23)
    t = PreparingMockTransport(builder, batch_size=5, concurrency=2)
    c = campaign(builder, store, journal, t)
    assert c.plan().new == 23
    report = c.run(run_id=1, limit=12)
    assert report.sent == 12 and t.batches == 3  # 5 + 5 + 2
    assert {w.thread.startswith("mock-write") for w in t.written} == {True}
    report = c.run(run_id=2)
    assert report.sent == 11
    assert sorted(e for e, _ in t.messages) == [address(i) for i in range(23)]
    counts = journal.counts("vol-2.19")
    assert (counts["sent"], counts["pending"], counts["in_flight"]) == (23, 0, 0)


def test_a_request_written_before_an_unsubscribe_leaves_without_that_reader(
    home: Path,
) -> None:
    builder, store, journal = setup(home, 40)
    web = SubscriberStore.from_settings(make_settings(home))  # another writer: the web
    leavers = [address(i) for i in (12, 25, 39)]

    written_before: set[str] = set()

    def handler(r: Recipient) -> Outcome:
        if r.email == address(0):
            deadline = time.monotonic() + 10
            while len(t.written) < 2 and time.monotonic() < deadline:
                time.sleep(0.01)  # the next request is being written meanwhile
            written_before.update(e for w in t.written for e in w.emails)
            apply_suppressions(web, {e: ("unsubscribed", "one-click") for e in leavers})
        return Outcome.sent(r.email, "x")

    t = PreparingMockTransport(builder, handler, batch_size=10)
    c = campaign(builder, store, journal, t)
    c.plan()
    report = c.run(run_id=1)
    assert address(12) in written_before  # in a request written before they left
    assert not set(leavers) & {e for e, _ in t.messages}
    assert report.sent == 37 and report.skipped == 3
    assert journal.counts("vol-2.19")["skipped"] == 3


def test_the_file_changing_mid_send_rewrites_what_was_written(home: Path) -> None:
    builder, store, journal = setup(home, 30)

    def handler(r: Recipient) -> Outcome:
        if r.email == address(0):
            other = SubscriberStore(store.path)  # an admin's edit while the send runs
            other.set_status(address(29), "unsubscribed", note="asked")
            other.add("late@example.net", name="Late")
        return Outcome.sent(r.email, "x")

    t = PreparingMockTransport(builder, handler, batch_size=10)
    c = campaign(builder, store, journal, t)
    c.plan()
    report = c.run(run_id=1)
    assert len(t.written) > 3  # the requests written before the edit were written again
    sent = [e for e, _ in t.messages]
    assert address(29) not in sent and "late@example.net" in sent
    assert len(sent) == len(set(sent)) == 30
    assert report.skipped == 1


def test_a_request_that_breaks_is_uncertain_and_the_error_surfaces(home: Path) -> None:
    builder, store, journal = setup(home, 20)

    def handler(r: Recipient) -> Outcome:
        if r.email == address(7):
            raise RuntimeError("the connection broke mid-request")
        return Outcome.sent(r.email)

    t = PreparingMockTransport(builder, handler, batch_size=5)
    c = campaign(builder, store, journal, t)
    c.plan()
    with pytest.raises(RuntimeError, match="broke"):
        c.run(run_id=1)
    uncertain = {r.email for r in journal.rows("vol-2.19", ("uncertain",))}
    assert uncertain == {address(i) for i in range(5, 10)}
    counts = journal.counts("vol-2.19")
    assert (counts["sent"], counts["in_flight"], counts["pending"]) == (5, 0, 10)


def test_a_header_only_copy_saved_mid_send_stops_it(home: Path) -> None:
    builder, store, journal = setup(home, 300)

    def handler(r: Recipient) -> Outcome:
        store.path.write_text(HEADER)  # a spreadsheet saved an empty sheet over it
        return Outcome.sent(r.email, "x")

    t = PreparingMockTransport(builder, handler, batch_size=10, concurrency=3)
    c = campaign(builder, store, journal, t)
    c.plan()
    report = c.run(run_id=1)
    assert isinstance(report.fatal, SendRefusedError)
    counts = journal.counts("vol-2.19")
    assert counts["skipped"] == 0 and counts["in_flight"] == 0
    assert counts["pending"] == 300 - report.sent
