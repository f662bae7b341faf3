"""Inbound Parse: verdict headers a sender writes into their own message are removed
before SendGrid's are added (issue 16, point 5), through a real uvicorn server."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.subscribers import SubscriberStore
from tests.support.webserver import INBOUND_SECRET, Serve, outbox_messages, status_of

#: a forged unsubscribe with the victim's From, vouching for itself in both header kinds
FORGED = (
    b"X-Inbound-Parse-DKIM: {@example.net : pass}\r\n"
    b"X-Inbound-Parse-SPF: pass\r\n"
    b"Authentication-Results: mx.example.org; dkim=pass header.d=example.net;\r\n"
    b" spf=pass smtp.mailfrom=victim@example.net\r\n"
    b"From: Victim <victim@example.net>\r\nTo: digest@example.org\r\n"
    b"Subject: unsubscribe\r\nMessage-ID: <forged.1@attacker.example.com>\r\n"
    b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlease unsubscribe me.\r\n"
)


def test_a_forged_pass_cannot_override_sendgrids_failing_verdict(
    serve: Serve, store: SubscriberStore, home: Path
) -> None:
    store.add("victim@example.net", status="active", source="seed")
    client = serve()
    response = client.post(
        f"/inbound/{INBOUND_SECRET}",
        files={
            "email": (None, FORGED),
            "SPF": (None, "fail"),
            "dkim": (None, "{@attacker.example.com : fail}"),
            "envelope": (None, '{"from": "x@attacker.example.com", "to": ["digest@example.org"]}'),
        },
    )
    assert response.status_code == 200, response.text
    # before: the forged "X-Inbound-Parse-DKIM: pass" hid SendGrid's fail and the
    # victim was unsubscribed; now SendGrid's verdict stands and a human decides
    assert status_of(store, "victim@example.net") == "active"
    assert outbox_messages(home) == []


def test_a_sendgrid_aligned_pass_applies_the_unsubscribe(
    serve: Serve, store: SubscriberStore, home: Path
) -> None:
    store.add("reader@example.net", status="active", source="seed")
    raw = FORGED.replace(b"victim@", b"reader@").split(b"From: ", 1)[1]
    client = serve()
    response = client.post(
        f"/inbound/{INBOUND_SECRET}",
        files={
            "email": (None, b"From: " + raw),
            "SPF": (None, "pass"),
            "dkim": (None, "{@example.net : pass}"),
            "envelope": (None, '{"from": "reader@example.net", "to": ["digest@example.org"]}'),
        },
    )
    assert response.status_code == 200, response.text
    assert status_of(store, "reader@example.net") == "unsubscribed"
