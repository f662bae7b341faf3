"""Delivery-status reports: a permanent failure is a bounce; a report naming many is not."""

from __future__ import annotations

from tests.support.inboundkit import classify, load


def test_bounce_fields() -> None:
    got = classify(load("27-dsn-5.1.1.eml"))
    assert got.kind == "bounce"
    assert got.message_id == "<20240603001244.4VtR0B1C2Dz9sRK@mx.example.org>"
    assert "5.1.1" in got.reason


def test_a_delivery_report_naming_many_recipients_is_for_a_human() -> None:
    blocks = "".join(
        f"Final-Recipient: rfc822; r{i}@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n"
        for i in range(6)
    )
    raw = (
        "From: MAILER-DAEMON@mx.example.net\r\nTo: digest@example.org\r\nSubject: failed\r\n"
        "Message-ID: <d1@mx.example.net>\r\nMIME-Version: 1.0\r\n"
        'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        "--b\r\nContent-Type: message/delivery-status\r\n\r\nReporting-MTA: dns; x\r\n\r\n"
        + blocks
        + "--b--\r\n"
    ).encode()
    got = classify(raw)
    assert got.kind == "review" and "6 recipients" in got.reason
    five = raw.replace(
        b"Final-Recipient: rfc822; r5@example.net\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n", b""
    )
    assert classify(five).kind == "bounce"
