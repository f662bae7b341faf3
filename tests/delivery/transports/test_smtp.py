from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.compose.message import MessageBuilder
from newsletter.delivery.transports import Status
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.errors import TransportAuthError, TransportError
from tests.support.sendkit import recipients
from tests.support.smtp_server import SmtpServer, free_port, self_signed
from tests.support.transports import without_sleeping


@pytest.fixture(params=[True, False], ids=["pipelining", "no-pipelining"])
def server(request: pytest.FixtureRequest) -> Iterator[SmtpServer]:
    """Every test runs against a server with and without RFC 2920 PIPELINING."""
    with SmtpServer() as srv:
        srv.handler.pipelining = request.param
        yield srv


def transport(
    builder: MessageBuilder, port: int, *, concurrency: int = 2, **kw: object
) -> SmtpTransport:
    kw.setdefault("security", "none")
    return without_sleeping(
        SmtpTransport, builder, host="127.0.0.1", port=port, concurrency=concurrency, **kw
    )


def test_sends_each_message_over_a_pool_of_reused_connections(
    builder: MessageBuilder, server: SmtpServer
) -> None:
    batch = recipients(20)
    with transport(builder, server.port, concurrency=3) as t:
        outcomes = t.send(batch)
        assert t.connections_opened == 3
    assert [o.status for o in outcomes] == [Status.SENT] * 20
    assert outcomes[0].provider_id.startswith("250 2.0.0 Ok: queued as Q")
    copies = server.handler.copies()
    assert sorted(copies) == sorted(r.email for r in batch)
    assert set(copies.values()) == {1}
    first = server.handler.messages[0]
    assert first.mail_from == "digest@example.org"
    assert b"Subject: US-Japan Alliance Digest" in first.data
    assert len({m.peer for m in server.handler.messages}) == 3
    advertised = any("250-PIPELINING" in lines for lines in server.handler.ehlo_seen)
    assert advertised is server.handler.pipelining


def test_4xx_is_retried_with_capped_backoff(builder: MessageBuilder, server: SmtpServer) -> None:
    server.handler.replies["reader00001@example.net"] = ["451 4.3.0 try later"] * 2
    server.handler.replies["reader00002@example.net"] = ["452 4.2.2 mailbox full"] * 9
    with transport(builder, server.port, max_attempts=3, max_backoff=1.5) as t:
        outcomes = t.send(recipients(3))
    assert [o.status for o in outcomes] == [Status.SENT, Status.SENT, Status.RETRY]
    assert outcomes[2].reason == "RCPT TO: 452 4.2.2 mailbox full"
    assert all(d <= 1.5 for d in t.delays)  # type: ignore[attr-defined]
    assert len(t.delays) == 4  # type: ignore[attr-defined]
    assert server.handler.copies()["reader00001@example.net"] == 1


def test_5xx_is_a_permanent_failure_with_the_server_text(
    builder: MessageBuilder, server: SmtpServer
) -> None:
    server.handler.sticky["reader00001@example.net"] = (
        "550 5.1.1 <reader00001@example.net>: no such user"
    )
    with transport(builder, server.port) as t:
        outcomes = t.send(recipients(3))
    bad = outcomes[1]
    assert bad.status is Status.FAILED and bad.permanent and bad.bounce
    assert bad.reason == "RCPT TO: 550 5.1.1 <reader00001@example.net>: no such user"
    assert outcomes[0].status is outcomes[2].status is Status.SENT
    assert sorted(server.handler.copies()) == ["reader00000@example.net", "reader00002@example.net"]


def test_a_dropped_connection_before_the_message_is_reopened(
    builder: MessageBuilder, server: SmtpServer
) -> None:
    with transport(builder, server.port, concurrency=1) as t:
        t.send(recipients(1))
        server.handler.drop_on_mail = 1
        outcomes = t.send(recipients(3)[1:])
    assert [o.status for o in outcomes] == [Status.SENT, Status.SENT]
    assert set(server.handler.copies().values()) == {1}
    assert t.connections_opened == 2


def test_no_answer_after_the_message_is_uncertain_not_resent(
    builder: MessageBuilder, server: SmtpServer
) -> None:
    server.handler.drop_after_data = 1
    with transport(builder, server.port, concurrency=1) as t:
        outcomes = t.send(recipients(2))
    assert outcomes[0].status is Status.UNCERTAIN
    assert "no reply after the message" in outcomes[0].reason
    assert outcomes[1].status is Status.SENT
    assert server.handler.copies()["reader00000@example.net"] == 1  # delivered once, not twice


def test_wrong_password_is_an_auth_error(builder: MessageBuilder) -> None:
    with SmtpServer(users={"digest": "right"}) as srv:
        t = transport(builder, srv.port, username="digest", password="wrong")
        with pytest.raises(TransportAuthError, match=r"127.0.0.1:\d+ failed to authenticate"):
            t.open()
        with transport(builder, srv.port, username="digest", password="right") as ok:
            assert ok.send(recipients(1))[0].status is Status.SENT


def test_nothing_listening_is_a_transport_error(builder: MessageBuilder) -> None:
    t = transport(builder, free_port())
    with pytest.raises(TransportError, match="cannot connect"):
        t.open()


def test_starttls_with_a_self_signed_certificate(builder: MessageBuilder, tmp_path: Path) -> None:
    cert, key = self_signed(tmp_path)
    server_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_ctx.load_cert_chain(cert, key)
    client_ctx = ssl.create_default_context(cafile=str(cert))
    with SmtpServer(tls_context=server_ctx) as srv:
        # untrusted certificate: refused
        with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
            transport(builder, srv.port, security="starttls").open()
        with transport(builder, srv.port, security="starttls", ssl_context=client_ctx) as t:
            outcomes = t.send(recipients(2))
    assert {o.status for o in outcomes} == {Status.SENT}
    assert len(srv.handler.messages) == 2


def test_relay_denied_is_not_a_bounce_and_stops_the_send(
    builder: MessageBuilder, server: SmtpServer
) -> None:
    server.handler.rcpt_reply = "554 5.7.1 <r@example.net>: Relay access denied"
    with transport(builder, server.port, concurrency=1) as t:
        outcomes = t.send(recipients(12))
        assert t.fatal is not None
        assert "5 recipients in a row refused for policy" in t.fatal.message
    refused = [o for o in outcomes if o.status is Status.FAILED]
    assert len(refused) == 5 and not any(o.bounce for o in refused)
    assert {o.status for o in outcomes[5:]} == {Status.NOT_ATTEMPTED}


def test_sender_refused_stops_at_once(builder: MessageBuilder, server: SmtpServer) -> None:
    server.handler.mail_reply = "553 5.7.1 <digest@example.org>: Sender address rejected"
    with transport(builder, server.port, concurrency=1) as t:
        outcomes = t.send(recipients(4))
        assert t.fatal is not None and "refuses the sender" in t.fatal.message
    assert outcomes[0].status is Status.FAILED and not outcomes[0].bounce
    assert {o.status for o in outcomes[1:]} == {Status.NOT_ATTEMPTED}


@pytest.mark.parametrize(
    ("code", "text", "bounce"),
    [
        (550, b"5.1.1 <x@example.net>: Recipient address rejected: User unknown", True),
        (552, b"5.2.2 mailbox full", False),
        (550, b"5.2.1 mailbox disabled", True),
        (550, b"5.7.1 Message rejected as spam", False),
        (554, b"Relay access denied", False),
        (550, b"Requested action not taken: mailbox unavailable", True),
        (451, b"4.1.1 try later", False),
    ],
)
def test_only_address_refusals_are_bounces(code: int, text: bytes, bounce: bool) -> None:
    from newsletter.delivery.transports.smtp import _is_address_refusal

    assert _is_address_refusal(code, text) is bounce


def test_a_recipient_whose_header_cannot_be_built_fails_alone(
    builder: MessageBuilder, server: SmtpServer
) -> None:
    from newsletter.compose.message import Recipient

    batch = [
        *recipients(2),
        Recipient("josé@example.net", "José"),
        Recipient("a@example.net", "A\nB"),
    ]
    with transport(builder, server.port) as t:
        outcomes = t.send(batch)
        assert t.fatal is None
    assert [o.status for o in outcomes] == [Status.SENT, Status.SENT, Status.FAILED, Status.FAILED]
    assert "SMTPUTF8" in outcomes[2].reason and outcomes[2].permanent and not outcomes[2].bounce
