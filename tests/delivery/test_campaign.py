from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.delivery.campaign import Campaign
from newsletter.delivery.journal import Journal
from newsletter.delivery.transports import MockTransport, Outcome
from tests.support.sendkit import address, make_builder, make_settings, write_subscribers
from tests.support.transports import PreparingMockTransport


def setup(
    home: Path, n: int = 25, **inactive: str
) -> tuple[MessageBuilder, SubscriberStore, Journal]:
    settings = make_settings(home)
    write_subscribers(settings.subscribers_file, n, inactive=dict(inactive))
    store = SubscriberStore.from_settings(settings)
    journal = Journal(settings.state_dir / "journal.sqlite3")
    return make_builder(settings), store, journal


def campaign(
    builder: MessageBuilder, store: SubscriberStore, journal: Journal, t: MockTransport
) -> Campaign:
    return Campaign(
        issue="vol-2.19",
        builder=builder,
        transport=t,
        journal=journal,
        store=store,
        store_path=store.path,
        make_recipient=Recipient,
    )


def test_sends_each_active_subscriber_once_and_a_second_run_sends_nothing(home: Path) -> None:
    builder, store, journal = setup(home, 25)
    t = MockTransport(builder, batch_size=10)
    c = campaign(builder, store, journal, t)
    plan = c.plan()
    assert (plan.new, plan.sent) == (25, 0)
    report = c.run(run_id=journal.begin_run("vol-2.19", "mock"))
    assert (report.sent, t.batches) == (25, 3)
    assert sorted(e for e, _ in t.messages) == [address(i) for i in range(25)]
    again = campaign(builder, store, journal, MockTransport(builder))
    plan = again.plan()
    assert (plan.new, plan.sent) == (0, 25)
    assert again.run(run_id=2).attempted == 0


def test_in_flight_rows_of_a_dead_run_become_uncertain_and_are_not_resent(home: Path) -> None:
    builder, store, journal = setup(home, 10)
    c = campaign(builder, store, journal, MockTransport(builder))
    c.plan()
    rows = journal.next_pending("vol-2.19", 4)
    journal.mark_in_flight("vol-2.19", [r.key for r in rows], 1)  # ... then kill -9
    t = MockTransport(builder)
    c = campaign(builder, store, journal, t)
    plan = c.plan()
    assert (plan.recovered, plan.uncertain, plan.new) == (4, 4, 6)
    c.run(run_id=2)
    assert len(t.messages) == 6
    assert {r.email for r in journal.rows("vol-2.19", ("uncertain",))} == {r.email for r in rows}
    # asked explicitly: resent
    t2 = MockTransport(builder)
    c = campaign(builder, store, journal, t2)
    assert c.plan(resend_uncertain=True).new == 4
    c.run(run_id=3)
    assert len(t2.messages) == 4
    assert journal.counts("vol-2.19")["sent"] == 10


def test_unsubscribed_since_the_send_began_is_skipped(home: Path) -> None:
    builder, store, journal = setup(home, 30)

    def handler(r: Recipient) -> Outcome:
        if r.email == address(0):
            store.set_status(address(29), "unsubscribed", note="clicked")
        return Outcome.sent(r.email, "x")

    t = MockTransport(builder, handler, batch_size=10)
    c = campaign(builder, store, journal, t)
    c.plan()
    report = c.run(run_id=1)
    assert report.sent == 29 and report.skipped == 1
    assert address(29) not in {e for e, _ in t.messages}
    assert journal.counts("vol-2.19")["skipped"] == 1


def test_permanent_failures_mark_the_subscriber_bounced(home: Path) -> None:
    builder, store, journal = setup(home, 5)

    def handler(r: Recipient) -> Outcome:
        if r.email == address(2):
            return Outcome.failed(
                r.email, "RCPT TO: 550 5.1.1 no such user", permanent=True, bounce=True
            )
        if r.email == address(3):
            return Outcome.retry(r.email, "RCPT TO: 451 later")
        return Outcome.sent(r.email)

    c = campaign(builder, store, journal, MockTransport(builder, handler))
    c.plan()
    report = c.run(run_id=1)
    assert (report.sent, report.failed, report.retry, report.bounced) == (3, 1, 1, 1)
    sub = store.get(address(2))
    assert sub is not None and sub.status == "bounced"
    # next run retries the temporary failure only
    t = MockTransport(builder)
    c = campaign(builder, store, journal, t)
    assert c.plan().new == 1
    c.run(run_id=2)
    assert [e for e, _ in t.messages] == [address(3)]
    counts = journal.counts("vol-2.19")
    assert (counts["sent"], counts["failed"], counts["failed_permanent"]) == (4, 1, 1)


def test_limit_and_dry_run(home: Path) -> None:
    builder, store, journal = setup(home, 12)
    t = MockTransport(builder, batch_size=5)
    c = campaign(builder, store, journal, t)
    c.plan()
    dry = c.rehearse()
    assert dry.attempted == 12 and dry.bytes > 12 * 10_000 and not t.messages
    assert c.run(run_id=1, limit=7).sent == 7
    assert journal.counts("vol-2.19")["pending"] == 5


# the thread-per-batch loop, and the loop that writes requests ahead (SendGrid's)
@pytest.mark.parametrize("transport", [MockTransport, PreparingMockTransport])
def test_stop_hands_off_nothing_more_and_leaves_the_rest_pending(
    home: Path, transport: type[MockTransport]
) -> None:
    builder, store, journal = setup(home, 20)
    holder: list[Campaign] = []

    def handler(r: Recipient) -> Outcome:
        holder[0].stop()
        return Outcome.sent(r.email)

    t = transport(builder, handler, batch_size=5)
    c = campaign(builder, store, journal, t)
    holder.append(c)
    c.plan()
    report = c.run(run_id=1)
    assert report.stopped and report.sent == 5
    counts = journal.counts("vol-2.19")
    assert (counts["pending"], counts["in_flight"], counts["uncertain"]) == (15, 0, 0)


def test_an_edit_made_during_a_batch_with_a_bounce_is_not_lost(home: Path) -> None:
    """Review finding: our own bounce write used to hide someone else's earlier edit."""
    builder, store, journal = setup(home, 30)

    def handler(r: Recipient) -> Outcome:
        if r.email == address(0):
            other = SubscriberStore(store.path)  # another writer: the web server, an admin
            other.set_status(address(29), "unsubscribed", note="clicked")
            other.add("late@example.net", name="Late")
        if r.email == address(1):
            return Outcome.failed(r.email, "550 5.1.1 no such user", permanent=True, bounce=True)
        return Outcome.sent(r.email, "x")

    t = MockTransport(builder, handler, batch_size=10)
    c = campaign(builder, store, journal, t)
    c.plan()
    c.run(run_id=1)
    sent = {e for e, _ in t.messages}
    assert address(29) not in sent
    assert "late@example.net" in sent
    assert store.get(address(1)) is not None and store.get(address(1)).status == "bounced"  # type: ignore[union-attr]


def test_rows_with_problems_are_reported_not_skipped_silently(home: Path) -> None:
    builder, store, journal = setup(home, 5)
    with store.path.open("a", encoding="utf-8") as fh:
        fh.write("bob@example,Bob,active,cli,,,,\n")  # a typo'd address
        fh.write(
            "ADDR0@example.net,Dup,active,cli,,,,\n".replace(
                "ADDR0", address(0).split("@")[0].upper()
            )
        )
        fh.write("gone@example,Gone,unsubscribed,cli,,,,\n")  # broken but not a recipient
    c = campaign(builder, store, journal, MockTransport(builder))
    plan = c.plan()
    assert plan.new == 5
    assert [p.line for p in plan.invalid] == [7]
    assert "bob@example" in plan.invalid[0].message
    assert [p.line for p in plan.duplicates] == [8]


def test_retry_failed_requeues_permanent_failures(home: Path) -> None:
    builder, store, journal = setup(home, 3)

    def refuse(r: Recipient) -> Outcome:
        return Outcome.failed(r.email, "554 5.7.1 relay denied", permanent=True)

    c = campaign(builder, store, journal, MockTransport(builder, refuse))
    c.plan()
    c.run(run_id=1)
    assert campaign(builder, store, journal, MockTransport(builder)).plan().new == 0
    t = MockTransport(builder)
    c = campaign(builder, store, journal, t)
    assert c.plan(retry_failed=True).new == 3
    c.run(run_id=2)
    assert journal.counts("vol-2.19")["sent"] == 3
