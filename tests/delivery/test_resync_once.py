"""A change to the subscriber file during a send (an admin's save, the ledger's fold)
re-syncs the journal and reads it again: nobody still held by a hand-off is sent twice,
and nobody who left meanwhile is sent at all.

Found by a review of the send loops (each test failed before the fix): the re-read from
the journal's start took readers whose envelope was open, or who waited out a 4xx, a
second time, and the in-flight mark did not ask that the row still be pending.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.compose.message import Recipient
from newsletter.delivery.campaign import Campaign
from newsletter.delivery.transports import Outcome
from newsletter.delivery.transports.smtp import SmtpTransport
from tests.delivery.test_campaign import campaign, setup
from tests.delivery.transports.test_smtp_pipeline import Send, make_send
from tests.support.sendkit import address
from tests.support.smtp_server import SmtpServer
from tests.support.transports import PreparingMockTransport


@pytest.fixture
def server() -> Iterator[SmtpServer]:
    with SmtpServer() as srv:
        yield srv


def appender(send: Send, smtp: SmtpServer, at: list[int]) -> Callable[[list[Any]], None]:
    """A progress hook that appends a reader to the file once ``at[i]`` copies arrived."""
    done: list[int] = []

    def progress(_outcomes: list[Any]) -> None:
        n = sum(smtp.handler.copies().values())
        if len(done) < len(at) and n >= at[len(done)]:
            with send.store.path.open("a", encoding="utf-8") as fh:
                fh.write(f"new{len(done)}@example.net,New,active,import,,,\n")
            done.append(n)

    return progress


def greylisting(home: Path, smtp: SmtpServer) -> tuple[Send, SmtpTransport, Campaign]:
    """A planned send of 300 whose reader 3 is greylisted once (451 at RCPT), on 2
    pipelined connections that wait 0.5-1 s before trying again."""
    send = make_send(home, smtp, 300)
    smtp.handler.delay = 0.003
    smtp.handler.replies[address(3)] = ["451 4.7.1 greylisted, try again later"]
    t = SmtpTransport(send.builder, host="127.0.0.1", port=smtp.port, security="none",
                      concurrency=2, backoff=0.5, max_backoff=1.0)  # fmt: skip
    c = send.campaign(t)
    c.plan()
    return send, t, c


def duplicates(smtp: SmtpServer) -> dict[str, int]:
    return {k: v for k, v in smtp.handler.copies().items() if v > 1}


def test_a_file_change_mid_send_sends_nobody_twice_pipelined(
    home: Path, server: SmtpServer
) -> None:
    send = make_send(home, server, 200)
    server.handler.delay = 0.002
    t = send.transport(concurrency=4)
    c = send.campaign(t)
    c.plan()
    with t:
        assert t.pipelined
        report = c.run(run_id=1, progress=appender(send, server, [20, 60, 100]))
    assert duplicates(server) == {}
    assert report.sent == sum(server.handler.copies().values())


def test_a_reader_waiting_out_a_4xx_is_sent_once_across_a_file_change(
    home: Path, server: SmtpServer
) -> None:
    send, t, c = greylisting(home, server)
    with t:
        c.run(run_id=1, progress=appender(send, server, [20]))
    assert server.handler.copies()[address(3)] == 1
    assert duplicates(server) == {}
    assert send.states()[address(3)] == "sent"


def test_a_reader_unsubscribed_in_the_file_while_waiting_out_a_4xx_gets_no_copy(
    home: Path, server: SmtpServer
) -> None:
    send, t, c = greylisting(home, server)
    edited: list[bool] = []

    def progress(_outcomes: list[Any]) -> None:
        if not edited and sum(server.handler.copies().values()) >= 20:
            SubscriberStore(send.store.path).set_status(address(3), "unsubscribed", note="phone")
            edited.append(True)

    with t:
        report = c.run(run_id=1, progress=progress)
    assert edited
    assert server.handler.copies().get(address(3), 0) == 0
    assert send.states()[address(3)] == "skipped" and report.skipped >= 1


def test_a_file_change_mid_send_sends_nobody_twice_threaded(home: Path, server: SmtpServer) -> None:
    server.handler.pipelining = False  # the thread-per-connection path
    send = make_send(home, server, 200)
    server.handler.delay = 0.002
    t = send.transport(concurrency=8)
    c = send.campaign(t)
    c.plan()
    with t:
        assert not t.pipelined
        c.run(run_id=1, progress=appender(send, server, [10, 50, 90, 130]))
    assert duplicates(server) == {}


def test_the_limit_holds_across_a_file_change_with_requests_written_ahead(home: Path) -> None:
    builder, store, journal = setup(home, 60)

    def handler(r: Recipient) -> Outcome:
        if r.email == address(0):
            SubscriberStore(store.path).add("late@example.net", name="Late")
        return Outcome.sent(r.email, "x")

    t = PreparingMockTransport(builder, handler, batch_size=5, concurrency=1)
    c = campaign(builder, store, journal, t)
    c.plan()
    report = c.run(run_id=1, limit=10)
    assert len(t.messages) == report.sent == 10
