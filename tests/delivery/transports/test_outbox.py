from __future__ import annotations

from email import message_from_bytes
from pathlib import Path

from newsletter.delivery.transports import Status, make_transport
from newsletter.delivery.transports.outbox import OutboxTransport
from tests.support.sendkit import make_builder, make_settings, recipients


def test_outbox_writes_one_eml_per_recipient_named_by_subscriber_id(home: Path) -> None:
    settings = make_settings(home)
    builder = make_builder(settings)
    transport = make_transport(settings, builder)
    assert isinstance(transport, OutboxTransport)
    batch = recipients(3)
    with transport:
        outcomes = transport.send(batch)
    assert [o.status for o in outcomes] == [Status.SENT] * 3
    folder = home / "outbox" / "vol-2.19"
    files = sorted(p.name for p in folder.iterdir())
    assert files == sorted(f"{r.subscriber_id}.eml" for r in batch)
    msg = message_from_bytes((folder / f"{batch[0].subscriber_id}.eml").read_bytes())
    assert msg["To"] == "Reader 0 <reader00000@example.net>"
    assert "List-Unsubscribe" in msg
    assert not list(folder.glob(".tmp-*")), "no temp file left behind"


def test_outbox_rewrites_the_same_file_on_resend(home: Path) -> None:
    settings = make_settings(home)
    transport = make_transport(settings, make_builder(settings))
    with transport:
        transport.send(recipients(1))
        transport.send(recipients(1))
    assert len(list((home / "outbox" / "vol-2.19").iterdir())) == 1


def test_outbox_stopped_hands_off_nothing(home: Path) -> None:
    settings = make_settings(home)
    transport = make_transport(settings, make_builder(settings))
    with transport:
        transport.stop_event.set()
        outcomes = transport.send(recipients(2))
    assert {o.status for o in outcomes} == {Status.NOT_ATTEMPTED}
