"""A hand-off that waits (a SendGrid 429's pause or 5xx's backoff, an SMTP 4xx's backoff)
asks the consent ledger again before it goes out: who left meanwhile gets no copy and is
skipped.

Found by a review of the send loops (failed before the fix: the request was posted again
as written, up to SENDGRID_RATE_LIMIT_WAIT = 600 s after its ledger check).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers import SubscriberStore
from newsletter.delivery.journal import Journal
from newsletter.delivery.plan import Report
from newsletter.delivery.transports.sendgrid import SendGridTransport
from newsletter.delivery.transports.smtp import SmtpTransport
from tests.delivery.test_campaign import campaign, setup
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import address, make_settings
from tests.support.smtp_server import SmtpServer


def assert_reader_2_alone_skipped(report: Report, journal: Journal) -> None:
    """Four of five readers sent; the one who left during the wait journaled skipped."""
    assert report.sent == 4 and report.skipped == 1
    states = {row.email: row.state for row in journal.rows("vol-2.19", ("skipped", "sent"))}
    assert states[address(2)] == "skipped"

@pytest.mark.parametrize("answer", ["429", "500"])
def test_a_reader_who_leaves_while_a_request_waits_gets_no_copy(home: Path, answer: str) -> None:
    builder, store, journal = setup(home, 5)
    web = SubscriberStore.from_settings(make_settings(home))
    waited: list[float] = []

    def sleep(delay: float) -> None:  # the pause: the reader unsubscribes meanwhile
        waited.append(delay)
        apply_suppressions(web, {address(2): ("unsubscribed", "one-click")})

    with SendGridServer("SG.k") as srv:
        srv.script = [answer]
        t = SendGridTransport(builder, api_key="SG.k", host=srv.url, sleep=sleep)
        c = campaign(builder, store, journal, t)
        c.plan()
        with t:
            report = c.run(run_id=1)
        assert waited, "the request did wait"
        assert srv.copies().get(address(2), 0) == 0
        assert all(srv.copies()[address(n)] == 1 for n in (0, 1, 3, 4))
    assert_reader_2_alone_skipped(report, journal)


def test_an_smtp_reader_who_leaves_while_waiting_out_a_4xx_gets_no_copy(home: Path) -> None:
    # the thread-per-connection path (a server without PIPELINING); the pipelined engine
    # asks the ledger itself before a retry (tests/delivery/transports/test_smtp_pipeline.py)
    builder, store, journal = setup(home, 5)
    web = SubscriberStore.from_settings(make_settings(home))

    def sleep(_delay: float) -> None:  # the backoff: the greylisted reader leaves meanwhile
        apply_suppressions(web, {address(2): ("unsubscribed", "one-click")})

    with SmtpServer() as server:
        server.handler.pipelining = False
        server.handler.replies[address(2)] = ["451 4.7.1 greylisted, try again later"]
        t = SmtpTransport(builder, host="127.0.0.1", port=server.port, security="none",
                          concurrency=2, sleep=sleep)  # fmt: skip
        c = campaign(builder, store, journal, t)
        c.plan()
        with t:
            assert not t.pipelined
            report = c.run(run_id=1)
        assert server.handler.copies().get(address(2), 0) == 0
    assert_reader_2_alone_skipped(report, journal)


def test_a_streamed_window_checked_before_a_long_wait_is_checked_again(home: Path) -> None:
    # the pipelined SMTP engine takes a window of ledger-checked readers, then (every
    # connection reopening, a backoff of up to a minute) may hand them out much later
    from newsletter.delivery.stream import CHECK_FRESH_FOR, Feed

    builder, store, journal = setup(home, 6)
    web = SubscriberStore.from_settings(make_settings(home))
    with SmtpServer() as server:
        t = SmtpTransport(builder, host="127.0.0.1", port=server.port, security="none")
        c = campaign(builder, store, journal, t)
        c.plan()
        now = [100.0]
        report = Report("vol-2.19")
        feed = Feed(c, report, run_id=1, limit=None, progress=None, window=4, clock=lambda: now[0])
        try:
            first = feed.take(1)  # the window 0-3 is checked now; 1-3 wait in it
            apply_suppressions(web, {address(1): ("unsubscribed", "one-click")})
            assert [key for key, _ in feed.take(1)] == [address(1)]  # fresh: as checked
            apply_suppressions(web, {address(2): ("unsubscribed", "one-click")})
            now[0] += CHECK_FRESH_FOR + 0.5  # the wait
            later = [key for key, _ in feed.take(10)]
        finally:
            feed.close()
    assert [key for key, _ in first] == [address(0)]
    assert address(2) not in later and later == [address(n) for n in (3, 4, 5)]
    assert report.skipped == 1
    states = {row.email: row.state for row in journal.rows("vol-2.19", ("skipped",))}
    assert states == {address(2): "skipped"}
