"""Delivery-status reports: a permanent failure is a bounce; a report naming many is not."""

from __future__ import annotations

from tests.support.inboundkit import classify, load


def test_bounce_fields() -> None:
    got = classify(load("27-dsn-5.1.1.eml"))
    assert got.kind == "bounce"
    assert got.message_id == "<20240603001244.4VtR0B1C2Dz9sRK@mx.example.org>"
    assert got.reason == "permanent delivery failure for Victor@example.com"
    assert got.quoted_ids == ("<vol-2.19.7f3a9c@example.org>",)


def test_a_delivery_report_naming_many_recipients_names_them_all() -> None:
    """Read whole; the act stage attributes it only by its VERP address
    (test_signups_bounces.py)."""
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
    assert got.kind == "bounce"
    assert got.addresses == tuple(f"r{i}@example.net" for i in range(6))
