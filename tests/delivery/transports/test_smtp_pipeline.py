"""The pipelined SMTP engine, driven by the send loop against aiosmtpd on 127.0.0.1:
what each reply means, journaled as the threaded path journals it, and the journal rule
checked from the server's side (a body arrives only for a recipient committed in flight)."""

from __future__ import annotations

import sqlite3
import ssl
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.delivery.campaign import Campaign, Report
from newsletter.delivery.journal import Journal
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.delivery.transports.smtp_wire import Stuffer, parse_replies, stuffed
from tests.support.sendkit import address, make_builder, make_settings, write_subscribers
from tests.support.smtp_server import SmtpServer, self_signed
from tests.support.transports import without_sleeping


@dataclass
class Send:
    builder: MessageBuilder
    store: SubscriberStore
    journal: Journal
    server: SmtpServer
    path: Path

    def transport(self, concurrency: int = 3, **kw: Any) -> SmtpTransport:
        kw.setdefault("security", "none")
        return without_sleeping(
            SmtpTransport,
            self.builder,
            host="127.0.0.1",
            port=self.server.port,
            concurrency=concurrency,
            **kw,
        )

    def campaign(self, transport: SmtpTransport) -> Campaign:
        return Campaign(
            issue="vol-2.19",
            builder=self.builder,
            transport=transport,
            journal=self.journal,
            store=self.store,
            store_path=self.store.path,
            make_recipient=Recipient,
        )

    def run(self, t: SmtpTransport, **kw: Any) -> Report:
        c = self.campaign(t)
        c.plan()
        with t:
            assert t.pipelined
            return c.run(run_id=self.journal.begin_run("vol-2.19", "smtp"), **kw)

    def states(self) -> dict[str, str]:
        rows = self.journal.db.execute("SELECT key, state FROM deliveries").fetchall()
        return {key: state for key, state in rows}


def make_send(home: Path, server: SmtpServer, n: int) -> Send:
    settings = make_settings(home)
    write_subscribers(settings.subscribers_file, n)
    store = SubscriberStore.from_settings(settings)
    path = settings.state_dir / "journal.sqlite3"
    return Send(make_builder(settings), store, Journal(path), server, path)


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as srv:
        yield srv


def test_every_message_once_each_body_after_its_in_flight_commit(
    home: Path, server: SmtpServer
) -> None:
    send = make_send(home, server, 60)
    seen: list[str] = []
    reader = sqlite3.connect(send.path, check_same_thread=False)
    handle_data = server.handler.handle_DATA

    async def look_then_accept(srv: Any, session: Any, envelope: Any) -> str:
        # the server's side of the rule: a message arrives only for a committed in_flight
        (key,) = envelope.rcpt_tos
        (state,) = reader.execute("SELECT state FROM deliveries WHERE key = ?", (key,)).fetchone()
        seen.append(state)
        return await handle_data(srv, session, envelope)

    server.handler.handle_DATA = look_then_accept  # type: ignore[method-assign]
    t = send.transport(concurrency=4)
    report = send.run(t)
    assert (report.sent, report.attempted) == (60, 60)
    assert set(seen) == {"in_flight"} and len(seen) == 60
    assert sorted(server.handler.copies().values()) == [1] * 60
    assert set(send.states().values()) == {"sent"}
    assert t.connections_opened == 4  # the pool, reused for every message
    # the message as built, byte for byte but for its Date (the stuffing undone)
    first = server.handler.messages[0]
    (rcpt,) = first.rcpt_tos
    i = int(rcpt[6:11])
    built = send.builder.to_bytes(Recipient(rcpt, f"Reader {i}"))
    assert len(first.data) == len(built)
    assert first.data.split(b"Date:")[0] == built.split(b"Date:")[0]


def test_never_more_in_flight_than_connections(home: Path, server: SmtpServer) -> None:
    send = make_send(home, server, 80)
    server.handler.delay = 0.002
    most = 0
    reader = sqlite3.connect(send.path, check_same_thread=False)
    handle_data = server.handler.handle_DATA

    async def count_in_flight(srv: Any, session: Any, envelope: Any) -> str:
        nonlocal most
        (n,) = reader.execute(
            "SELECT COUNT(*) FROM deliveries WHERE state = 'in_flight'"
        ).fetchone()
        most = max(most, n)
        return await handle_data(srv, session, envelope)

    server.handler.handle_DATA = count_in_flight  # type: ignore[method-assign]
    report = send.run(send.transport(concurrency=3))
    assert report.sent == 80
    assert 1 <= most <= 3


def test_4xx_is_retried_then_given_up_5xx_fails_and_bounces(home: Path, server: SmtpServer) -> None:
    send = make_send(home, server, 6)
    server.handler.replies[address(1)] = ["451 4.3.0 try later"] * 2
    server.handler.replies[address(2)] = ["452 4.2.2 mailbox full"] * 9
    server.handler.sticky[address(3)] = f"550 5.1.1 <{address(3)}>: no such user"
    t = send.transport(concurrency=2, max_attempts=3, max_backoff=1.5)
    report = send.run(t)
    assert (report.sent, report.failed, report.retry, report.bounced) == (4, 1, 1, 1)
    assert len(t.delays) == 4 and all(d <= 1.5 for d in t.delays)  # type: ignore[attr-defined]
    states = send.states()
    assert states[address(1)] == "sent" and server.handler.copies()[address(1)] == 1
    assert states[address(2)] == "failed" and states[address(3)] == "failed"
    row = send.journal.db.execute(
        "SELECT reason, permanent FROM deliveries WHERE key = ?", (address(2),)
    ).fetchone()
    assert row == ("RCPT TO: 452 4.2.2 mailbox full", 0)
    bounced = send.store.get(address(3))
    assert bounced is not None and bounced.status == "bounced"
    # the next run tries the temporary failure again, and only it
    server.handler.replies.clear()
    again = send.run(send.transport())
    assert again.sent == 1 and server.handler.copies()[address(2)] == 1


def test_a_4xx_after_the_body_is_tried_again_not_left_in_doubt(
    home: Path, server: SmtpServer
) -> None:
    send = make_send(home, server, 4)
    handle_data = server.handler.handle_DATA
    refused: list[str] = []

    async def refuse_once(srv: Any, session: Any, envelope: Any) -> str:
        if envelope.rcpt_tos == [address(2)] and not refused:
            refused.append(address(2))
            return "451 4.3.0 queue full, try later"
        return await handle_data(srv, session, envelope)

    server.handler.handle_DATA = refuse_once  # type: ignore[method-assign]
    report = send.run(send.transport(concurrency=1))
    assert report.sent == 4 and report.not_attempted == 0
    assert refused and server.handler.copies()[address(2)] == 1
    assert set(send.states().values()) == {"sent"}


def test_a_connection_lost_before_the_body_is_reopened_after_it_uncertain(
    home: Path, server: SmtpServer
) -> None:
    send = make_send(home, server, 10)
    server.handler.drop_on_mail = 1
    server.handler.drop_after_data = 1
    t = send.transport(concurrency=2)
    report = send.run(t)
    assert (report.sent, report.uncertain) == (9, 1)
    uncertain = [k for k, s in send.states().items() if s == "uncertain"]
    assert len(uncertain) == 1
    copies = server.handler.copies()
    assert copies[uncertain[0]] == 1  # it did arrive: not sent a second time
    assert all(copies[address(i)] == 1 for i in range(10))
    assert t.connections_opened >= 4


def test_relay_denied_stops_the_send_and_the_rest_stays_pending(
    home: Path, server: SmtpServer
) -> None:
    send = make_send(home, server, 30)
    server.handler.rcpt_reply = "554 5.7.1 <r@example.net>: Relay access denied"
    t = send.transport(concurrency=1)
    report = send.run(t)
    assert report.fatal is not None and "in a row refused for policy" in report.fatal.message
    states = send.states()
    assert list(states.values()).count("failed") == 5
    assert list(states.values()).count("pending") == 25
    assert report.bounced == 0


def test_a_refused_sender_stops_at_once(home: Path, server: SmtpServer) -> None:
    send = make_send(home, server, 8)
    server.handler.mail_reply = "553 5.7.1 <digest@example.org>: Sender address rejected"
    report = send.run(send.transport(concurrency=1))
    assert report.fatal is not None and "refuses the sender" in report.fatal.message
    states = list(send.states().values())
    assert states.count("failed") == 1 and states.count("pending") == 7
    assert server.handler.messages == []


def test_a_stop_leaves_nothing_in_doubt(home: Path, server: SmtpServer) -> None:
    send = make_send(home, server, 200)
    server.handler.delay = 0.002
    t = send.transport(concurrency=4)
    c = send.campaign(t)
    c.plan()

    def progress(outcomes: list[Any]) -> None:
        if sum(send.server.handler.copies().values()) >= 20:
            c.stop()

    with t:
        report = c.run(run_id=1, progress=progress)
    assert report.stopped
    counts = send.journal.counts("vol-2.19")
    assert counts["in_flight"] == counts["uncertain"] == 0
    assert counts["sent"] == sum(server.handler.copies().values()) < 200
    assert counts["pending"] == 200 - counts["sent"]


def test_a_reader_whose_header_cannot_be_built_fails_alone(home: Path, server: SmtpServer) -> None:
    send = make_send(home, server, 3)
    with send.store.path.open("a", encoding="utf-8") as fh:
        fh.write("josé@example.net,José,active,import,,,\n")
    report = send.run(send.transport())
    assert (report.sent, report.failed) == (3, 1)
    row = send.journal.db.execute(
        "SELECT state, reason, permanent FROM deliveries WHERE email = ?", ("josé@example.net",)
    ).fetchone()
    assert row[0] == "failed" and "SMTPUTF8" in row[1] and row[2] == 1


def test_starttls_connections_stream_too(home: Path, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    with SmtpServer(tls_context=server_ctx) as srv:
        send = make_send(home, srv, 25)
        report = send.run(send.transport(security="starttls", ssl_context=client_ctx))
        assert report.sent == 25
        assert sorted(srv.handler.copies().values()) == [1] * 25


def test_a_server_without_pipelining_uses_the_threaded_path(home: Path) -> None:
    with SmtpServer() as srv:
        srv.handler.pipelining = False
        send = make_send(home, srv, 12)
        t = send.transport()
        c = send.campaign(t)
        c.plan()
        with t:
            assert not t.pipelined
            report = c.run(run_id=1)
        assert report.sent == 12 and sorted(srv.handler.copies().values()) == [1] * 12


@pytest.mark.parametrize(
    "chunks",
    [
        [b".top\r\n", b"a\r\n.b\r\n", b".c\r\n", b"d"],
        [b"x" * 2000 + b"\r\n.", b"y\r\n", b".z" * 800 + b"\r\n"],
        [b"a\r", b"\n.b\r\n"],  # a CRLF split across two chunks
        [b"", b".\r\n", b"..\r\n", b"end"],
    ],
)
def test_chunks_are_stuffed_as_the_joined_message_would_be(chunks: list[bytes]) -> None:
    stuff = Stuffer()
    for _ in range(2):  # the second time from the cache
        assert b"".join(stuff(chunks)) == stuffed(b"".join(chunks))


def test_replies_are_parsed_across_reads() -> None:
    buf = bytearray(b"250 2.0.0 Ok: queued\r\n250-first\r\n250-second")
    assert parse_replies(buf) == [(250, b"2.0.0 Ok: queued")]
    buf += b"\r\n250 last\r\n354 go ahead\r\nxyz"
    assert parse_replies(buf) == [(250, b"first\nsecond\nlast"), (354, b"go ahead")]
    assert buf == bytearray(b"xyz")


def test_dkim_signed_messages_stream_and_verify(home: Path, server: SmtpServer) -> None:
    from newsletter.delivery.dkim import DkimSigner
    from newsletter.delivery.dkim_keys import generate_key
    from tests.support.dkimkit import DOMAIN, SELECTOR, key_record, verify
    from tests.support.dns_server import DnsServer

    key = generate_key("ed25519")
    send = make_send(home, server, 5)
    signer = DkimSigner(key, selector=SELECTOR, domain=DOMAIN)
    report = send.run(send.transport(concurrency=2, sign=signer))
    assert report.sent == 5
    with DnsServer() as dns:
        dns.zone = key_record(key)
        for message in server.handler.messages:
            assert message.data.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256")
            assert verify(message.data, dns.address)
