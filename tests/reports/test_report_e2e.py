"""The whole path a report's numbers take, on 127.0.0.1 only: a send through the local
SendGrid server, signed Event Webhook events of every type posted to the real web app
(one batch twice), DSNs in the mailbox and a one-click unsubscribe; then `report` must
count each reader once per kind, exactly."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from newsletter.audience.events import EventLedger
from newsletter.cli.app import app
from newsletter.compose.message import Recipient
from newsletter.config import Settings
from newsletter.delivery.journal import Journal
from newsletter.web import create_app
from tests.conftest import GOLDEN_SETTINGS
from tests.support.eventkeys import keypair
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import address, make_builder, write_subscribers
from tests.support.webserver import ONE_CLICK, running, signed_post, unsubscribe_path, web_settings

KEY = "SG.report-test-key"
REPORT_TOKEN = "report-token-0123456789"
ISSUE = "vol-2.19"
READERS = 20


def dsn(headers: bytes, failed: str, message_id: str) -> bytes:
    """A mail server's delivery-status report (RFC 3464) for ``failed``, quoting the
    header block of the message it could not deliver."""
    return (
        b"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        b"To: digest@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        + f"Message-ID: <{message_id}@mx.example.net>\r\n".encode()
        + b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n"
        + f"Final-Recipient: rfc822; {failed}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n".encode()
        + b"--b\r\nContent-Type: text/rfc822-headers\r\n\r\n"
        + headers
        + b"--b--\r\n"
    )


@pytest.fixture
def sendgrid() -> Iterator[SendGridServer]:
    with SendGridServer(KEY) as server:
        yield server


def cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def webhook_events(issue: str) -> list[dict[str, Any]]:
    """One event of each type SendGrid posts, as it posts them (custom_args at top level)."""
    now = int(time.time())

    def event(n: int, kind: str, i: int, **extra: Any) -> dict[str, Any]:
        return {
            "email": address(i),
            "event": kind,
            "timestamp": now,
            "sg_event_id": f"ev-{n}",
            "sg_message_id": f"msg-{i}.filter",
            "issue": issue,
            "subscriber_id": f"s{i}",
            **extra,
        }

    events = [event(100 + i, "delivered", i) for i in range(4, READERS)]  # 16 delivered
    events += [
        event(1, "bounce", 1, type="bounce", reason="550 5.1.1 mailbox unavailable"),
        event(2, "bounce", 2, type="blocked", reason="421 4.7.0 try again later"),
        event(3, "dropped", 3, reason="Bounced Address"),
        event(4, "spamreport", 4),
        event(5, "unsubscribe", 5),
        event(6, "deferred", 6, response="451 4.3.0 greylisted", attempt="1"),
    ]
    events += [event(200 + i, "open", i, useragent="Mozilla/5.0") for i in range(8, 14)]
    events.append(event(300, "open", 8, useragent="Mozilla/5.0"))  # the same reader again
    events += [event(400 + i, "click", i, url="https://digest.example.org/") for i in (8, 9, 10)]
    return events


def test_send_webhooks_dsns_and_unsubscribes_give_exact_numbers(
    home: Path, sendgrid: SendGridServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = keypair()
    env = {
        "NEWSLETTER_FROM": GOLDEN_SETTINGS["sender"],
        "NEWSLETTER_CONTACT": GOLDEN_SETTINGS["contact"],
        "NEWSLETTER_PUBLIC_URL": GOLDEN_SETTINGS["public_url"],
        "NEWSLETTER_SECRET_KEY": GOLDEN_SETTINGS["secret_key"],
        "NEWSLETTER_TRANSPORT": "sendgrid",
        "SENDGRID_API_KEY": KEY,
        "SENDGRID_API_HOST": sendgrid.url,
        "SENDGRID_TRACKING": "true",
        "SENDGRID_WEBHOOK_PUBLIC_KEY": public,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    write_subscribers(home / "subscribers" / "subscribers.csv", READERS)

    # 1. the send, through the local SendGrid server, tracking on
    code, out, err = cli("send", ISSUE, "--yes")
    assert code == 0, out + err
    assert sendgrid.recipients_accepted == READERS
    tracking = sendgrid.accepted[0].body["tracking_settings"]
    assert tracking["open_tracking"] == {"enable": True}
    assert tracking["click_tracking"]["enable"] is True

    # 2. signed Event Webhook events of every type, the batch posted twice (a retry)
    settings: Settings = web_settings(public, report_token=REPORT_TOKEN)
    events = webhook_events(ISSUE)
    with running(create_app(settings)) as base, httpx.Client(base_url=base, timeout=30) as client:
        for _ in range(2):
            response = signed_post(client, private, events)
            assert response.status_code == 200, response.text
        # 3. a one-click unsubscribe (RFC 8058) by reader 7
        one_click = client.post(
            unsubscribe_path(settings, address(7)),
            content=ONE_CLICK,
            headers={"content-type": "application/x-www-form-urlencoded"},
        )
        assert one_click.status_code == 200, one_click.text
        # the served HTML report wants the token
        assert client.get("/reports").status_code == 401
        page = client.get("/reports", auth=("admin", REPORT_TOKEN))
        assert page.status_code == 200 and "<svg" in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'")
    assert EventLedger.in_state_dir(settings.state_dir).count() == len(events)

    # 4. DSNs in the mailbox: a new hard bounce (reader 14), and reader 1 again
    mailbox = home / "mailbox"
    mailbox.mkdir()
    builder = make_builder(settings)
    for n, i in enumerate((14, 1)):
        headers = builder.to_bytes(Recipient(address(i))).split(b"\r\n\r\n", 1)[0] + b"\r\n"
        (mailbox / f"dsn-{n}.eml").write_bytes(dsn(headers, address(i), f"d{n}"))
    code, out, err = cli("signups", "process", "--source", str(mailbox))
    assert code == 0, out + err

    # 5. the report: each reader once per kind, whichever way the news came in
    code, out, err = cli("report", ISSUE, "--json")
    assert code == 0, out + err
    data = json.loads(out)
    counts = {k: data[k] for k in (
        "audience", "sent", "delivered", "delivery_confirmed", "uncertain", "permanent",
        "temporary", "complaints", "unsubscribes", "opens", "clicks", "tracked",
    )}  # fmt: skip
    assert counts == {
        "audience": 20,
        "sent": 20,
        "delivered": 16,  # SendGrid's delivered events
        "delivery_confirmed": True,
        "uncertain": 0,
        "permanent": 3,  # reader 1 (webhook + DSN: once), 3 (dropped), 14 (DSN)
        "temporary": 2,  # reader 2 (blocked), 6 (deferred)
        "complaints": 1,  # reader 4 (spam report; the list's "complained" is the same)
        "unsubscribes": 2,  # reader 5 (SendGrid), reader 7 (one-click)
        "opens": 6,  # readers 8 to 13; reader 8's second open is not a second reader
        "clicks": 3,
        "tracked": True,
    }
    assert data["rates"] == {
        "delivery": 0.8,
        "permanent": 0.15,
        "temporary": 0.1,
        "complaint": 0.0625,
        "unsubscribe": 0.125,
        "open": 0.375,
        "click": 0.1875,
    }
    assert data["warnings"] == [
        "complaints 6.2 % reach Gmail's limit of 0.30 %",
        "temporary failures 10.0 % are over 5 %",
        "permanent failures 15.0 % are over 1 %",
    ]
    code, out, _ = cli("report", ISSUE)
    assert code == 0
    assert out.splitlines()[1:4] == [
        "  delivered              16    80.0 %  (confirmed by SendGrid)",
        "  bounced, hard           3    15.0 %  (permanent failures, limit 1 %)",
        "  bounced, soft           2    10.0 %  (temporary failures, limit 5 %)",
    ]
    code, out, _ = cli("report", "--html", "report.html")
    assert (code, out) == (0, "wrote report.html (1 issue)\n")
    assert Path("report.html").read_text(encoding="utf-8").count("<svg") == 3
    code, out, _ = cli("report")
    assert code == 0
    lines = out.splitlines()
    assert lines[1].split() == [ISSUE, lines[1].split()[1], "20", "80.0", "%", "15.0", "%",
                                "10.0", "%", "6.2", "%", "2"]  # fmt: skip
    assert "warning: vol-2.19: permanent failures 15.0 % are over 1 %" in lines

    # 6. privacy: one reader's history, then a purge that leaves no trace in the stores
    code, out, _ = cli("subscribers", "show", address(1))
    assert code == 0
    history = [line.split()[1:4] for line in out.splitlines() if line.startswith("  20")]
    # sent and bounced in the same second here: the history is in time order, then kind
    assert history == [[ISSUE, "bounce_hard", "sendgrid"], [ISSUE, "sent", "journal"]]
    code, out, _ = cli("subscribers", "show", address(5), "--json")
    data = json.loads(out)
    assert data["row"]["status"] == "unsubscribed"
    assert {(e["issue"], e["kind"], e["source"]) for e in data["events"]} == {
        (ISSUE, "sent", "journal"),
        (ISSUE, "delivered", "sendgrid"),
        (ISSUE, "unsubscribe", "sendgrid"),
    }
    code, out, _ = cli("subscribers", "remove", address(1), "--purge")
    assert code == 0
    assert out.splitlines()[1] == (
        f"forgot {address(1)} in 1 journal row, 2 report events, 1 webhook event"
    )
    with Journal(settings.state_dir / "journal.sqlite3") as journal:
        assert address(1) not in {d.key for d in journal.rows(ISSUE, ("sent",))}
    data = json.loads(cli("report", ISSUE, "--json")[1])
    assert (data["sent"], data["permanent"]) == (19, 2)
