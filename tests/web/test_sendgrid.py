"""The SendGrid endpoints through a real uvicorn server: the Event Webhook, Inbound Parse."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.audience.events import SIGNATURE_HEADER, TIMESTAMP_HEADER, EventLedger
from newsletter.audience.subscribers import SubscriberStore
from newsletter.audience.subscribers.ledger import Ledger
from newsletter.config import Settings
from newsletter.errors import LockTimeoutError
from newsletter.web import Pipeline
from tests.support.eventkeys import keypair
from tests.support.webserver import (
    INBOUND_SECRET,
    Recorder,
    Serve,
    confirmations_to,
    signed_post,
    status_of,
    web_settings,
)

# SendGrid Event Webhook ------------------------------------------------------------------
EVENTS: list[dict[str, Any]] = [
    {"email": "alice@example.org", "event": "bounce", "type": "bounce", "sg_event_id": "e-1"},
    {"email": "bob.brown@example.org", "event": "spamreport", "sg_event_id": "e-2"},
    {"email": "hanako.yamada@example.com", "event": "unsubscribe", "sg_event_id": "e-3"},
    {"email": "carol@example.com", "event": "delivered", "sg_event_id": "e-4"},
    {"email": "carol@example.com", "event": "bounce", "type": "blocked", "sg_event_id": "e-5"},
]


def test_event_webhook_applies_signed_events(
    serve: Serve,
    keys: tuple[ec.EllipticCurvePrivateKey, str],
    store: SubscriberStore,
    wsettings: Settings,
) -> None:
    client = serve()
    response = signed_post(client, keys[0], EVENTS)
    assert response.status_code == 200, response.text
    assert status_of(store, "alice@example.org") == "bounced"
    assert status_of(store, "bob.brown@example.org") == "complained"
    assert status_of(store, "hanako.yamada@example.com") == "unsubscribed"
    assert status_of(store, "carol@example.com") == "pending"
    assert EventLedger.in_state_dir(wsettings.state_dir).count() == 5
    assert (wsettings.state_dir / "webhooks.sqlite3").exists()


@pytest.mark.parametrize(
    "attack", ["flipped-byte", "wrong-key", "old-timestamp", "unsigned", "superscript-timestamp"]
)
def test_event_webhook_refuses_what_does_not_verify(
    serve: Serve,
    keys: tuple[ec.EllipticCurvePrivateKey, str],
    store: SubscriberStore,
    home: Path,
    attack: str,
) -> None:
    client = serve()
    before = (home / "subscribers" / "subscribers.csv").read_bytes()
    if attack == "flipped-byte":
        response = signed_post(client, keys[0], EVENTS, tamper=True)
    elif attack == "wrong-key":
        response = signed_post(client, keypair()[0], EVENTS)
    elif attack == "old-timestamp":
        response = signed_post(client, keys[0], EVENTS, timestamp=int(time.time()) - 3600)
    elif attack == "superscript-timestamp":
        # "¹²³" as the Latin-1 bytes a header carries: str.isdigit() says yes, int() says no
        response = client.post(
            "/webhooks/sendgrid",
            content=json.dumps(EVENTS),
            headers={SIGNATURE_HEADER: "MEUCIQ==", TIMESTAMP_HEADER: "¹²³".encode("latin-1")},
        )
    else:
        response = client.post("/webhooks/sendgrid", content=json.dumps(EVENTS))
    assert response.status_code == 403
    assert (home / "subscribers" / "subscribers.csv").read_bytes() == before


def test_event_webhook_applies_a_duplicate_once(
    serve: Serve, keys: tuple[ec.EllipticCurvePrivateKey, str], store: SubscriberStore
) -> None:
    client = serve()
    batch = [EVENTS[0]]
    assert signed_post(client, keys[0], batch).status_code == 200
    assert status_of(store, "alice@example.org") == "bounced"
    store.set_status("alice@example.org", "active", note="admin: mailbox fixed")
    retried = signed_post(client, keys[0], batch)  # SendGrid's retry of the same event
    assert retried.status_code == 200
    assert status_of(store, "alice@example.org") == "active"


def test_event_webhook_bad_json_and_busy_store(
    serve: Serve,
    keys: tuple[ec.EllipticCurvePrivateKey, str],
    store: SubscriberStore,
    wsettings: Settings,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    client = serve()
    import base64

    from cryptography.hazmat.primitives import hashes

    stamp = str(int(time.time()))
    body = b'{"not": "a list"}'
    sig = base64.b64encode(keys[0].sign(stamp.encode() + body, ec.ECDSA(hashes.SHA256())))
    response = client.post(
        "/webhooks/sendgrid",
        content=body,
        headers={
            "X-Twilio-Email-Event-Webhook-Signature": sig.decode(),
            "X-Twilio-Email-Event-Webhook-Timestamp": stamp,
        },
    )
    assert response.status_code == 400

    def locked(*args: object, **kwargs: object) -> None:
        raise sqlite3.OperationalError("database is locked")

    with monkeypatch.context() as patch:  # the consent ledger cannot commit
        patch.setattr(Ledger, "insert", locked)
        assert signed_post(client, keys[0], [EVENTS[0]]).status_code == 503
    # nothing was recorded, so SendGrid's retry is applied
    assert signed_post(client, keys[0], [EVENTS[0]]).status_code == 200
    assert status_of(store, "alice@example.org") == "bounced"


def test_endpoints_are_disabled_without_their_settings(serve: Serve, home: Path) -> None:
    client = serve(web_settings(None, inbound_secret=None))
    assert client.post("/webhooks/sendgrid", content=b"[]").status_code == 404
    response = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, "x")})
    assert response.status_code == 404


# SendGrid Inbound Parse ------------------------------------------------------------------
RAW = (
    b"From: Dana <dana@example.net>\r\nTo: digest@example.org\r\n"
    b"Subject: subscribe\r\nMessage-ID: <abc@example.net>\r\n\r\nPlease add me.\r\n"
)


def test_inbound_parse_secret_path(serve: Serve, wsettings: Settings) -> None:
    recorder = Recorder()
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    wrong = client.post("/inbound/not-the-secret", files={"email": (None, RAW)})
    assert wrong.status_code == 404
    assert client.post("/inbound/", files={"email": (None, RAW)}).status_code == 404
    assert recorder.calls == []
    right = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)})
    assert right.status_code == 200
    assert recorder.calls == [(RAW, "sendgrid-inbound")]


def test_inbound_parse_keeps_8bit_bytes_exactly(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    raw = RAW.replace(b"Please add me.", "購読お願いします".encode("shift_jis"))
    client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, raw)})
    assert recorder.calls[0][0] == raw


def test_inbound_parse_end_to_end(serve: Serve, store: SubscriberStore, home: Path) -> None:
    client = serve()
    response = client.post(
        f"/inbound/{INBOUND_SECRET}",
        files={"email": (None, RAW), "envelope": (None, '{"from": "dana@example.net"}')},
    )
    assert response.status_code == 200, response.text
    assert status_of(store, "dana@example.net") == "pending"
    assert confirmations_to(home, "dana@example.net") == 1
    # SendGrid's retry of the same post changes nothing
    client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)})
    assert confirmations_to(home, "dana@example.net") == 1


def test_inbound_parse_malformed_and_failing_payloads_are_kept(
    serve: Serve, wsettings: Settings
) -> None:
    recorder = Recorder(fail=RuntimeError("classifier crashed"))
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    kept = wsettings.state_dir / "inbound-unprocessed"
    empty = client.post(f"/inbound/{INBOUND_SECRET}", files={"nothing": (None, "here")})
    assert empty.status_code == 200
    assert "kept for review" in empty.text
    garbage = client.post(
        f"/inbound/{INBOUND_SECRET}",
        content=b"--x\r\nbroken",
        headers={"content-type": "multipart/form-data"},
    )
    assert garbage.status_code == 200
    failing = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)})
    assert failing.status_code == 200
    assert len(list(kept.glob("*.form"))) == 2
    assert [p.read_bytes() for p in kept.glob("*.eml")] == [RAW]
    assert "classifier crashed" in next(kept.glob("*.eml.txt")).read_text()
    # a busy list is transient: SendGrid is asked to retry
    recorder.fail = LockTimeoutError("subscribers.csv.lock: held")
    assert (
        client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, RAW)}).status_code == 503
    )


def test_inbound_parse_body_limit(serve: Serve) -> None:
    recorder = Recorder()
    client = serve(pipeline=Pipeline(process_raw_message=recorder.process_raw_message))
    big = b"x" * (30 * 1024 * 1024 + 1)
    response = client.post(f"/inbound/{INBOUND_SECRET}", files={"email": (None, big)})
    assert response.status_code == 413
    assert recorder.calls == []


def test_inbound_parse_verdicts_are_carried_into_the_message() -> None:
    from newsletter.web.pipeline import with_inbound_auth

    raw = b"From: a@example.com\r\nSubject: unsubscribe\r\n\r\nunsubscribe\r\n"
    form: dict[str, str | bytes] = {"SPF": "fail", "dkim": b"{@example.com : fail}\r\nBcc: x"}
    out = with_inbound_auth(form, raw)
    assert out.startswith(
        b"X-Inbound-Parse-SPF: fail\r\nX-Inbound-Parse-DKIM: {@example.com : fail}  Bcc: x\r\n"
    )
    assert out.endswith(raw)
    assert with_inbound_auth({}, raw) == raw
