"""The send loop and the consent ledger: an unsubscribe made during a send (through the
web, while the loop records bounces) stops that reader's copy unless it has left."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers import SubscriberStore
from newsletter.compose.message import Recipient
from newsletter.delivery.campaign import Campaign
from newsletter.delivery.journal import Journal
from newsletter.delivery.transports import MockTransport, Outcome
from tests.support.sendkit import address, make_builder, make_settings, write_subscribers


def test_a_reader_unsubscribed_during_a_send_with_bounces_gets_no_copy_unless_it_left(
    home: Path,
) -> None:
    settings = make_settings(home)
    write_subscribers(settings.subscribers_file, 40, inactive={})
    store = SubscriberStore.from_settings(settings)
    web = SubscriberStore.from_settings(settings)  # the web server: another writer
    leavers = [address(i) for i in (5, 12, 25, 33, 39)]
    bounces = {address(i) for i in (3, 13, 21, 30)}
    left_before_click: set[str] = set()

    def handler(r: Recipient) -> Outcome:
        if r.email == address(5):  # reader 5 clicks as their own copy leaves...
            left_before_click.add(r.email)
        if r.email in (address(5), address(11)):  # ...and the others click meanwhile
            apply_suppressions(web, {e: ("unsubscribed", "one-click") for e in leavers})
        if r.email in bounces:
            return Outcome.failed(r.email, "550 5.1.1 no such user", permanent=True, bounce=True)
        return Outcome.sent(r.email, "x")

    transport = MockTransport(make_builder(settings), handler, batch_size=10)
    with Journal(settings.state_dir / "journal.sqlite3") as journal:
        campaign = Campaign(
            issue="vol-2.19",
            builder=make_builder(settings),
            transport=transport,
            journal=journal,
            store=store,
            store_path=store.path,
            make_recipient=Recipient,
        )
        assert campaign.plan().new == 40
        report = campaign.run(run_id=journal.begin_run("vol-2.19", "mock"))
        sent_to = [e for e, _ in transport.messages]
        # reader 5's copy had left when they clicked; every later copy was stopped
        assert left_before_click == {address(5)} and address(5) in sent_to
        assert set(sent_to) & set(leavers) == {address(5)}
        assert report.skipped == len(leavers) - 1
        assert journal.counts("vol-2.19")["skipped"] == len(leavers) - 1
        assert report.bounced == len(bounces)
    # the bounces are ledger rows too: in the file after the next fold, with the leavers
    store.fold()
    statuses = {s.key: s.status for s in store.iter_valid()}
    assert {e: statuses[e] for e in bounces} == dict.fromkeys(bounces, "bounced")
    assert {e: statuses[e] for e in leavers} == dict.fromkeys(leavers, "unsubscribed")
