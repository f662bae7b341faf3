"""SendGrid Event Webhook: signature verification, event mapping, the ledger (no server)."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from newsletter.audience.events import (
    EventLedger,
    SignatureError,
    apply_suppressions,
    load_public_key,
    map_event,
    parse_events,
    suppressions,
    verify_signature,
)
from newsletter.audience.subscribers import SubscriberStore
from tests.support.eventkeys import keypair, sign

NOW = 1_700_000_000


BODY = json.dumps([{"email": "a@example.org", "event": "bounce", "sg_event_id": "e1"}]).encode()


def test_valid_signature_verifies() -> None:
    private, public = keypair()
    verify_signature(public, BODY, sign(private, BODY, str(NOW)), str(NOW), now=NOW + 5)


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda b, s, t: (b[:-2] + b"x]", s, t), id="body-changed"),
        pytest.param(lambda b, s, t: (b, s, str(int(t) + 1)), id="timestamp-changed"),
        pytest.param(lambda b, s, t: (b, None, t), id="no-signature"),
        pytest.param(lambda b, s, t: (b, s, None), id="no-timestamp"),
        pytest.param(lambda b, s, t: (b, "not base64!!", t), id="bad-base64"),
        pytest.param(lambda b, s, t: (b, base64.b64encode(b"junk").decode(), t), id="bad-der"),
        pytest.param(lambda b, s, t: (b, s, "12abc"), id="timestamp-not-a-number"),
    ],
)
def test_any_tampering_is_a_signature_error(mutate: object) -> None:
    private, public = keypair()
    sig = sign(private, BODY, str(NOW))
    body, signature, timestamp = mutate(BODY, sig, str(NOW))  # type: ignore[operator]
    with pytest.raises(SignatureError):
        verify_signature(public, body, signature, timestamp, now=NOW)


def test_every_single_flipped_byte_is_refused() -> None:
    private, public = keypair()
    sig = sign(private, BODY, str(NOW))
    for i in range(len(BODY)):
        flipped = bytearray(BODY)
        flipped[i] ^= 0x01
        with pytest.raises(SignatureError):
            verify_signature(public, bytes(flipped), sig, str(NOW), now=NOW)


def test_wrong_key_and_stale_timestamp_are_refused() -> None:
    private, public = keypair()
    _, other = keypair()
    with pytest.raises(SignatureError):
        verify_signature(other, BODY, sign(private, BODY, str(NOW)), str(NOW), now=NOW)
    for stamp in (str(NOW - 601), str(NOW + 601)):
        with pytest.raises(SignatureError, match="window"):
            verify_signature(public, BODY, sign(private, BODY, stamp), stamp, now=NOW)
    verify_signature(public, BODY, sign(private, BODY, str(NOW - 600)), str(NOW - 600), now=NOW)


def test_public_key_must_be_p256_der() -> None:
    with pytest.raises(SignatureError, match="SENDGRID_WEBHOOK_PUBLIC_KEY"):
        load_public_key("bm90IGEga2V5")
    p384 = ec.generate_private_key(ec.SECP384R1()).public_key()
    der = p384.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    with pytest.raises(SignatureError, match="P-256"):
        load_public_key(base64.b64encode(der).decode())
    _, public = keypair()
    pem = f"-----BEGIN PUBLIC KEY-----\n{public}\n-----END PUBLIC KEY-----\n"
    assert load_public_key(pem).curve.name == "secp256r1"


@pytest.mark.parametrize(
    ("event", "status"),
    [
        ({"event": "bounce", "type": "bounce"}, "bounced"),
        ({"event": "bounce"}, "bounced"),
        ({"event": "bounce", "type": "blocked"}, None),
        ({"event": "dropped", "reason": "Bounced Address"}, "bounced"),
        ({"event": "dropped", "reason": "Unsubscribed Address"}, "unsubscribed"),
        ({"event": "dropped", "reason": "Spam Reporting Address"}, "complained"),
        ({"event": "dropped", "reason": "Invalid SMTPAPI header"}, None),
        ({"event": "unsubscribe"}, "unsubscribed"),
        ({"event": "group_unsubscribe", "asm_group_id": 1}, "unsubscribed"),
        ({"event": "spamreport"}, "complained"),
        ({"event": "delivered"}, None),
        ({"event": "open"}, None),
        ({"event": "deferred"}, None),
        ({"event": "group_resubscribe"}, None),
    ],
)
def test_map_event(event: dict[str, str], status: str | None) -> None:
    action = map_event({"email": "A@Example.org", "sg_event_id": "x", **event})
    assert action.status == status
    assert action.event_id == "x"


def test_event_without_valid_address_is_ignored_and_ids_are_stable() -> None:
    assert map_event({"event": "bounce", "email": "not an address"}).status is None
    event = {"event": "open", "email": "a@example.org", "timestamp": 1}
    assert map_event(event).event_id == map_event(dict(reversed(event.items()))).event_id
    assert map_event(event).event_id.startswith("sha256:")


def test_parse_events_wants_a_json_array_of_objects() -> None:
    assert parse_events(b"[]") == []
    for bad in (b"{}", b"[1]", b"nope", b"\xff"):
        with pytest.raises(ValueError):
            parse_events(bad)


def test_suppressions_keep_the_strongest_status_per_address() -> None:
    actions = [
        map_event({"event": "unsubscribe", "email": "a@example.org", "sg_event_id": "1"}),
        map_event({"event": "spamreport", "email": "A@example.org", "sg_event_id": "2"}),
        map_event({"event": "bounce", "email": "a@example.org", "sg_event_id": "3"}),
        map_event({"event": "open", "email": "b@example.org", "sg_event_id": "4"}),
    ]
    assert suppressions(actions) == {"a@example.org": ("complained", "SendGrid spam report")}


def test_apply_suppressions_never_weakens(tmp_path: Path) -> None:
    store = SubscriberStore(tmp_path / "subscribers.csv")
    store.add("c@example.org", status="complained")
    store.add("a@example.org")
    found = apply_suppressions(
        store,
        {
            "c@example.org": ("unsubscribed", "late unsubscribe"),
            "a@example.org": ("bounced", "bounce"),
            "nobody@example.org": ("bounced", "bounce"),
        },
    )
    assert found == {"c@example.org", "a@example.org"}
    got_c, got_a = store.get("c@example.org"), store.get("a@example.org")
    assert got_c is not None and got_c.status == "complained"
    assert got_a is not None and got_a.status == "bounced" and got_a.note == "bounce"


def test_ledger_applies_each_event_once_and_rolls_back_on_failure(tmp_path: Path) -> None:
    ledger = EventLedger(tmp_path / "webhooks.sqlite3")
    first = [map_event({"event": "bounce", "email": "a@example.org", "sg_event_id": "e1"})]
    with pytest.raises(RuntimeError), ledger.record(first) as fresh:
        assert len(fresh) == 1
        raise RuntimeError("store locked")
    with ledger.record(first + first) as fresh:
        assert len(fresh) == 1  # rolled back above, so still new; duplicates in a batch once
    with ledger.record(first) as fresh:
        assert fresh == []
    assert ledger.count() == 1
