"""VERP: each SMTP message's envelope sender names its reader, and a bounce returned to
it (built by a real Postfix) marks exactly that reader bounced."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from newsletter.audience.signups import process_raw_message
from newsletter.audience.subscribers import SubscriberStore
from newsletter.compose.issuefile import load_issue
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.compose.render import render_issue
from newsletter.config import Settings, load_settings
from newsletter.delivery.transports import Status
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.tokens import make_bounce_address, read_bounce_address, subscriber_id
from tests.conftest import GOLDEN_SETTINGS
from tests.support.postfix import DOMAIN, PostfixServer
from tests.support.smtp_server import SmtpServer
from tests.support.transports import without_sleeping

SECRET = GOLDEN_SETTINGS["secret_key"]
BOUNCE = "bounce@example.org"


@pytest.fixture
def vsettings(home: Path) -> Settings:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    return load_settings(None, **GOLDEN_SETTINGS, bounce_address=BOUNCE)


def builder_for(settings: Settings) -> MessageBuilder:
    issue = render_issue(load_issue(settings.issues_dir / "vol-2.19.yaml"), settings)
    return MessageBuilder(issue, settings)


def test_bounce_addresses_round_trip_and_refuse_tampering() -> None:
    address = make_bounce_address(SECRET, BOUNCE, "Ann@Example.com", "vol-2.19")
    local, domain = address.split("@")
    assert domain == "example.org" and local.startswith("bounce+") and len(local) <= 64
    found = read_bounce_address(SECRET, address, BOUNCE)
    assert found is not None and found[0] == subscriber_id("ann@example.com")
    # some MTAs fold the local part's case: still ours
    assert read_bounce_address(SECRET, address.upper(), BOUNCE) == found
    assert read_bounce_address("another-secret-0123456789", address, BOUNCE) is None
    tampered = address.replace(found[0], subscriber_id("bob@example.com"))
    assert read_bounce_address(SECRET, tampered, BOUNCE) is None
    assert read_bounce_address(SECRET, address, "bounce@example.net") is None
    dash = make_bounce_address(SECRET, BOUNCE, "ann@example.com", "vol-2.19", separator="-")
    assert dash.startswith("bounce-") and read_bounce_address(SECRET, dash, BOUNCE) is None
    assert read_bounce_address(SECRET, dash, BOUNCE, separator="-") == found


def test_an_smtp_send_has_a_return_path_per_recipient(vsettings: Settings) -> None:
    readers = ["ann@example.com", "bob@example.net", "chiyo@example.jp"]
    with SmtpServer() as server:
        transport = without_sleeping(
            SmtpTransport,
            builder_for(vsettings),
            host="127.0.0.1",
            port=server.port,
            security="none",
            concurrency=2,
        )
        with transport as t:
            outcomes = t.send([Recipient(a) for a in readers])
        assert [o.status for o in outcomes] == [Status.SENT] * 3
        got = {m.rcpt_tos[0]: m.mail_from for m in server.handler.messages}
    assert sorted(got) == sorted(readers)
    assert len(set(got.values())) == 3
    for reader, mail_from in got.items():
        assert mail_from == make_bounce_address(SECRET, BOUNCE, reader, "vol-2.19")


def test_without_the_setting_the_from_address_stays(home: Path) -> None:
    settings = load_settings(None, **GOLDEN_SETTINGS)
    with SmtpServer() as server:
        transport = without_sleeping(
            SmtpTransport,
            builder_for(settings),
            host="127.0.0.1",
            port=server.port,
            security="none",
            concurrency=1,
        )
        with transport as t:
            t.send([Recipient("ann@example.com")])
        assert server.handler.messages[0].mail_from == "digest@example.org"


def test_a_postfix_bounce_to_the_verp_address_marks_exactly_that_reader(
    vsettings: Settings, tmp_path: Path
) -> None:
    gone = f"gone@{DOMAIN}"  # no such user at Postfix: its local(8) bounces the message
    readers = [gone, "ann@example.com", "bob@example.net"]
    store = SubscriberStore.from_settings(vsettings)
    for reader in readers:
        store.add(reader, status="active", source="seed")
    with SmtpServer() as relay, PostfixServer(tmp_path / "postfix", relay.port) as postfix:
        transport = without_sleeping(
            SmtpTransport,
            builder_for(vsettings),
            host="127.0.0.1",
            port=postfix.port,
            security="none",
            concurrency=1,
        )
        with transport as t:
            assert {o.status for o in t.send([Recipient(a) for a in readers])} == {Status.SENT}
        deadline = time.monotonic() + 30
        while len(relay.handler.messages) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        received = list(relay.handler.messages)
    assert len(received) == 3, postfix.logs()[-2000:]
    reports = [m for m in received if m.mail_from in ("", "<>")]
    delivered = {m.rcpt_tos[0]: m.mail_from for m in received if m not in reports}
    # the two others went through Postfix with their own Return-Path
    assert delivered == {a: make_bounce_address(SECRET, BOUNCE, a, "vol-2.19") for a in readers[1:]}
    [report] = reports
    verp = make_bounce_address(SECRET, BOUNCE, gone, "vol-2.19")
    assert report.rcpt_tos == [verp]
    # as the contact mailbox's delivery agent stores it
    raw = f"Return-Path: <>\r\nDelivered-To: {verp}\r\n".encode() + report.data
    outcome = process_raw_message(raw, vsettings, source="postfix", store=store)
    assert outcome.action == "bounced", outcome.detail
    assert "VERP" in outcome.detail
    assert {s.email: s.status for s in store.iter_valid()} == {
        gone: "bounced",
        "ann@example.com": "active",
        "bob@example.net": "active",
    }
