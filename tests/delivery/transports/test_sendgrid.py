from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.compose.message import MessageBuilder
from newsletter.delivery.transports import Status
from newsletter.delivery.transports.sendgrid import SendGridTransport
from newsletter.errors import TransportAuthError
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import recipients
from tests.support.transports import without_sleeping

KEY = "SG.test-key"


@pytest.fixture
def server() -> Iterator[SendGridServer]:
    with SendGridServer(KEY, hang_seconds=1.0) as srv:
        yield srv


def transport(builder: MessageBuilder, server: SendGridServer, **kw: object) -> SendGridTransport:
    kw.setdefault("api_key", KEY)
    return without_sleeping(SendGridTransport, builder, host=server.url, **kw)


def test_one_request_per_thousand_recipients_with_personal_parts(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    batch = recipients(2500)
    with transport(builder, server) as t:
        outcomes: list = []
        for i in range(0, len(batch), t.batch_size):
            outcomes += t.send(batch[i : i + t.batch_size])
    assert server.requests == t.requests == 3
    assert {o.status for o in outcomes} == {Status.SENT}
    assert len({o.provider_id for o in outcomes}) == 3  # X-Message-Id per request
    assert set(server.copies().values()) == {1} and len(server.copies()) == 2500
    first = server.accepted[0]
    p = first.personalization
    assert p["to"] == [{"email": "reader00000@example.net", "name": "Reader 0"}]
    assert p["custom_args"] == {"issue": "vol-2.19", "subscriber_id": batch[0].subscriber_id}
    assert p["substitutions"]["%%unsubscribe_url%%"].startswith("https://digest.example.org/")
    assert "List-Unsubscribe" in p["headers"] and "List-Unsubscribe-Post" in p["headers"]
    body = first.body
    assert [c["type"] for c in body["content"]] == ["text/plain", "text/html"]
    assert "%%unsubscribe_url%%" in body["content"][1]["value"]
    assert body["categories"] == ["vol-2.19"]
    assert body["from"] == {"email": "digest@example.org", "name": "US-Japan Alliance Digest"}
    for att in body.get("attachments", []):
        assert att["disposition"] == "inline" and att["content_id"]
    # no header leaks from one call into the next
    assert all(h.get("Authorization") == f"Bearer {KEY}" for h in server.request_headers)


def test_a_bad_key_stops_after_exactly_one_request(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    with transport(builder, server, api_key="SG.wrong") as t:
        outcomes = t.send(recipients(5))
        assert isinstance(t.fatal, TransportAuthError)
        assert "authorization grant is invalid" in str(t.fatal)
        assert t.send(recipients(5))[0].status is Status.NOT_ATTEMPTED
    assert server.requests == 1
    assert {o.status for o in outcomes} == {Status.NOT_ATTEMPTED}


def test_429_waits_for_the_rate_limit_reset_then_succeeds(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    server.script = ["429"]
    server.rate_reset_in = 3
    with transport(builder, server, max_reset_wait=10) as t:
        outcomes = t.send(recipients(3))
    assert {o.status for o in outcomes} == {Status.SENT}
    assert server.requests == 2
    (delay,) = t.delays  # type: ignore[attr-defined]
    assert 1.0 < delay <= 4.1  # honours X-RateLimit-Reset (epoch seconds), not the backoff


def test_500_twice_then_202(builder: MessageBuilder, server: SendGridServer) -> None:
    server.script = ["500", "500"]
    with transport(builder, server, backoff=0.5, max_backoff=0.8) as t:
        outcomes = t.send(recipients(3))
    assert {o.status for o in outcomes} == {Status.SENT}
    assert server.requests == 3
    assert len(t.delays) == 2 and all(d <= 0.8 for d in t.delays)  # type: ignore[attr-defined]
    assert set(server.copies().values()) == {1}


def test_5xx_past_the_attempts_stops_the_send(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    server.script = ["500"] * 3
    with transport(builder, server, max_attempts=3) as t:
        outcomes = t.send(recipients(2))
        assert t.fatal is not None and "gave up after 3 attempts" in str(t.fatal)
    assert {o.status for o in outcomes} == {Status.RETRY}


def test_a_timeout_after_sending_is_uncertain_and_not_resent(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    server.script = ["hang"]
    with transport(builder, server, timeout=0.3) as t:
        outcomes = t.send(recipients(4))
    assert {o.status for o in outcomes} == {Status.UNCERTAIN}
    assert "may have accepted it" in outcomes[0].reason
    assert server.requests == 1
    assert set(server.copies().values()) == {1}  # SendGrid did accept it: one copy each


def test_400_is_recorded_with_sendgrid_error_text(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    server.script = ["400"]
    with transport(builder, server) as t:
        outcomes = t.send(recipients(2))
        # a 400 about the request itself (the sender) would hit every batch: stop
        assert t.fatal is not None
        assert "the request was refused" in t.fatal.message
    assert {o.status for o in outcomes} == {Status.FAILED}
    assert outcomes[0].reason == (
        "SendGrid answered 400: The from email does not contain a valid address. (from.email)"
    )
    assert server.requests == 1


def test_400_naming_one_personalization_fails_only_that_recipient(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    from newsletter.compose.message import Recipient

    batch = recipients(5)
    batch[2] = Recipient("no-at-sign.example.org", "Typo")
    with transport(builder, server) as t:
        outcomes = t.send(batch)
        assert t.fatal is None
    assert [o.status for o in outcomes] == [Status.SENT] * 2 + [Status.FAILED] + [Status.SENT] * 2
    assert outcomes[2].permanent
    assert outcomes[2].reason.startswith("SendGrid answered 400: Does not contain a valid address.")
    assert server.requests == 2  # the refused batch, then the other four
    assert server.recipients_accepted == 4


def test_unusable_recipient_fails_alone_and_idn_goes_as_punycode(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    from newsletter.compose.message import Recipient

    batch = [
        Recipient("josé@example.net", "José"),
        Recipient("line@example.net", "Line\nBreak"),
        Recipient("user@bücher.example", "Jürgen"),
    ]
    with transport(builder, server) as t:
        outcomes = t.send(batch)
    assert [o.status for o in outcomes] == [Status.FAILED, Status.FAILED, Status.SENT]
    assert "SMTPUTF8" in outcomes[0].reason and outcomes[0].permanent
    assert "line break" in outcomes[1].reason
    assert server.accepted[0].personalization["to"][0]["email"] == "user@xn--bcher-kva.example"


def test_unreachable_host_is_retried_then_stops(builder: MessageBuilder) -> None:
    from tests.support.smtp_server import free_port

    t = SendGridTransport(
        builder,
        api_key=KEY,
        host=f"http://127.0.0.1:{free_port()}",
        timeout=1,
        max_attempts=2,
        sleep=lambda s: None,
    )
    with t:
        outcomes = t.send(recipients(1))
    assert outcomes[0].status is Status.RETRY and "cannot connect" in outcomes[0].reason
    assert t.requests == 2 and t.fatal is not None


def test_one_rate_limit_answer_pauses_every_request(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    import threading

    server.script = ["429"]
    server.rate_reset_in = 3
    with transport(builder, server, concurrency=2, max_reset_wait=10) as t:
        first = t.send(recipients(2))  # answered 429: waits for the reset, then is sent

        # another worker's request, after the 429: it waits for the same reset first
        second: list = []
        worker = threading.Thread(target=lambda: second.extend(t.send(recipients(3)[2:])))
        worker.start()
        worker.join()
    assert {o.status for o in first + second} == {Status.SENT}
    assert server.requests == 3
    own, shared = t.delays  # type: ignore[attr-defined]
    assert 1.0 < own <= 4.1 and 0.5 < shared <= own


def test_a_long_rate_limit_waits_instead_of_stopping(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    server.script = ["429"] * 7  # more than max_attempts: a rate limit is no failure
    server.rate_reset_in = 2
    with transport(builder, server, max_attempts=3, max_reset_wait=10) as t:
        outcomes = t.send(recipients(2))
        assert t.fatal is None
    assert {o.status for o in outcomes} == {Status.SENT}
    assert server.requests == 8
    assert t.delays and all(d <= 2.1 for d in t.delays)  # type: ignore[attr-defined]


def test_rate_limit_past_the_cap_stops_with_the_rest_pending(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    server.script = ["429"] * 10
    # a clock far behind the reset: every 429 asks for the longest wait, 10 s
    late = {"clock": lambda: 0.0, "max_reset_wait": 10, "max_rate_limit_wait": 5}
    with transport(builder, server, **late) as t:
        outcomes = t.send(recipients(2))
        assert t.fatal is not None
        assert "rate limited for 5 s" in t.fatal.message
        assert "SENDGRID_RATE_LIMIT_WAIT" in (t.fatal.hint or "")
    assert {o.status for o in outcomes} == {Status.RETRY}
    assert server.requests == 2  # waited 5 s (the cap, not the 10 asked): then stopped


def test_sendgrid_has_its_own_default_for_requests_in_flight(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from newsletter.delivery.transports import make_transport
    from tests.support.sendkit import make_builder, make_settings

    monkeypatch.delenv("NEWSLETTER_CONCURRENCY", raising=False)
    sendgrid: dict[str, object] = {"transport": "sendgrid", "sendgrid_api_key": KEY}
    settings = make_settings(home, **sendgrid)
    b = make_builder(settings)
    assert make_transport(settings, b).concurrency == 16  # not SMTP's 4
    assert make_transport(settings, b, concurrency=3).concurrency == 3  # --concurrency
    monkeypatch.setenv("NEWSLETTER_CONCURRENCY", "6")  # set: it applies to SendGrid too
    assert make_transport(make_settings(home, **sendgrid), b).concurrency == 6
    monkeypatch.delenv("NEWSLETTER_CONCURRENCY")
    assert make_transport(make_settings(home, transport="smtp"), b).concurrency == 4


def test_the_benchmarks_stand_in_checks_every_body_after_the_run(
    builder: MessageBuilder, server: SendGridServer
) -> None:
    """``check_later`` (bench_sendgrid) answers without parsing, then checks each body as
    it would have: valid ones are accepted, a broken one is named, nothing is lost."""
    import urllib.request

    server.check_later = True
    with transport(builder, server) as t:
        assert {o.status for o in t.send(recipients(3))} == {Status.SENT}
    broken = urllib.request.Request(
        f"{server.url}/v3/mail/send",
        data=b'{"personalizations": []}',
        headers={"Authorization": f"Bearer {KEY}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(broken) as answer:
        assert answer.status == 202  # answered first, checked afterwards
    assert server.recipients_accepted == 0
    wrong = server.check_deferred()
    assert len(wrong) == 1 and wrong[0].startswith("request 2: The personalizations field")
    assert server.recipients_accepted == 3 and set(server.copies().values()) == {1}
    assert server.check_deferred() == []  # each body is checked once
