"""The send loop with hand-offs in flight side by side (SendGrid requests, SMTP messages)."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.subscribers import SubscriberStore
from newsletter.compose.message import Recipient
from newsletter.delivery.campaign import Campaign
from newsletter.delivery.journal import Journal
from newsletter.delivery.transports.sendgrid import SendGridTransport
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import make_builder, make_settings, write_subscribers


def test_sendgrid_requests_overlap_and_each_recipient_gets_one_copy(home: Path) -> None:
    settings = make_settings(home)
    emails = write_subscribers(settings.subscribers_file, 2000)
    builder = make_builder(settings)
    store = SubscriberStore.from_settings(settings)
    with (
        SendGridServer("SG.k", latency=0.2) as server,
        Journal(settings.state_dir / "journal.sqlite3") as journal,
        SendGridTransport(
            builder, api_key="SG.k", host=server.url, batch_size=200, concurrency=4
        ) as transport,
    ):
        campaign = Campaign(
            issue="vol-2.19",
            builder=builder,
            transport=transport,
            journal=journal,
            store=store,
            store_path=store.path,
            make_recipient=Recipient,
        )
        campaign.plan()
        report = campaign.run(run_id=journal.begin_run("vol-2.19", "sendgrid"))
        counts = journal.counts("vol-2.19")
    assert server.max_concurrent > 1  # requests were in flight together
    assert server.requests == 10
    assert report.sent == counts["sent"] == 2000
    assert counts["in_flight"] == counts["uncertain"] == 0
    copies = server.copies()
    assert sorted(copies) == emails and set(copies.values()) == {1}
