"""A subscriber file replaced mid-send by a truncated or header-only copy stops the send
instead of skipping hundreds of readers as "no longer active" and ending "done"."""

from __future__ import annotations

from pathlib import Path

from newsletter.compose.message import Recipient
from newsletter.delivery.transports import MockTransport, Outcome
from newsletter.errors import SendRefusedError
from tests.delivery.test_campaign import campaign, setup
from tests.support.sendkit import HEADER


def test_a_header_only_copy_saved_mid_send_stops_it(home: Path) -> None:
    builder, store, journal = setup(home, 300)
    original = store.path.read_bytes()

    def handler(r: Recipient) -> Outcome:
        store.path.write_text(HEADER)  # a spreadsheet saved an empty sheet over it
        return Outcome.sent(r.email, "x")

    t = MockTransport(builder, batch_size=10, handler=handler)
    c = campaign(builder, store, journal, t)
    assert c.plan().new == 300
    report = c.run(run_id=journal.begin_run("vol-2.19", "mock"))
    assert isinstance(report.fatal, SendRefusedError)
    assert "went from 300 to 0 active readers during the send" in report.fatal.message
    counts = journal.counts("vol-2.19")
    assert counts["skipped"] == 0  # nobody written off
    assert counts["pending"] == 300 - report.sent
    # the file restored, the same send resumes with everyone left
    store.path.write_bytes(original)
    again = campaign(builder, store, journal, MockTransport(builder, batch_size=50))
    assert again.plan().new == 300 - report.sent
    again.run(run_id=journal.begin_run("vol-2.19", "mock"))
    assert journal.counts("vol-2.19")["sent"] == 300


def test_a_few_readers_leaving_mid_send_is_normal(home: Path) -> None:
    builder, store, journal = setup(home, 300)
    lines = store.path.read_text().splitlines(keepends=True)

    def handler(r: Recipient) -> Outcome:
        store.path.write_text("".join(lines[:-15]))  # 15 rows gone: under the threshold
        return Outcome.sent(r.email, "x")

    t = MockTransport(builder, batch_size=10, handler=handler)
    c = campaign(builder, store, journal, t)
    c.plan()
    report = c.run(run_id=journal.begin_run("vol-2.19", "mock"))
    assert report.fatal is None
    assert report.skipped == 15
    assert journal.counts("vol-2.19")["sent"] == 285
