"""The bulk personalization writer against the one-recipient reference it replaces."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.delivery.transports import Status
from newsletter.delivery.transports.sendgrid_body import (
    PersonalizationWriter,
    personalization_json,
)
from newsletter.errors import HeaderError
from newsletter.tokens import make_token, make_tokens, read_token
from tests.support.sendkit import make_builder, make_settings

SLUG = '"vol-2.19"'
READERS = [
    Recipient("reader00001@example.net", "Reader 1"),
    Recipient("Mixed.Case@Example.NET", ""),
    Recipient("  spaced@example.org ", "  Two   Spaces  "),
    Recipient("quote@example.com", 'Say "Hi", you; all'),
    Recipient("percent%sign@example.com", "100 % sure %s"),
    Recipient("yamada@example.jp", "山田 太郎"),
    Recipient("user@bücher.example", "Jürgen"),
    Recipient("back\\slash@example.net", "Back\\slash"),
]


def _reference(builder: MessageBuilder, r: Recipient) -> str | None:
    try:
        return personalization_json(builder, r, SLUG)
    except HeaderError:
        return None


@pytest.mark.parametrize("secret", [True, False], ids=["signed-links", "mailto-only"])
def test_writer_gives_exactly_the_reference_text(home: Path, secret: bool) -> None:
    overrides = {} if secret else {"public_url": None}
    builder = make_builder(make_settings(home, **overrides))
    writer = PersonalizationWriter(builder, SLUG)
    now = time.time()
    rows = [(r.email, r.name) for r in READERS]
    prepared = writer.write(rows, now=now)
    # the reference signs at its own clock: compare within the same second
    if int(time.time()) != int(now):
        prepared = writer.write(rows, now=time.time())
    assert prepared.emails == [r.email for r in READERS]
    assert prepared.parts == [_reference(builder, r) for r in READERS]
    assert not prepared.failures
    for part in prepared.parts:
        assert isinstance(json.loads(part or ""), dict)
    links = {json.loads(p or "")["substitutions"]["%%unsubscribe_url%%"] for p in prepared.parts}
    assert len(links) == (len(READERS) if secret else 1)
    if secret:
        link = json.loads(prepared.parts[1] or "")["substitutions"]["%%unsubscribe_url%%"]
        token = link.rsplit("/", 1)[1]
        assert read_token(builder.settings.require_secret(), token, "unsubscribe") == (
            "mixed.case@example.net"
        )


def test_unusable_readers_fail_alone_with_the_reason(builder: MessageBuilder) -> None:
    writer = PersonalizationWriter(builder, SLUG)
    rows = [
        ("ok@example.net", "OK"),
        ("line@example.net", "Line\nBreak"),
        ("josé@example.net", "José"),
        ("ok2@example.net", ""),
    ]
    prepared = writer.write(rows)
    assert [p is None for p in prepared.parts] == [False, True, True, False]
    assert sorted(prepared.failures) == [1, 2]
    assert all(o.status is Status.FAILED and o.permanent for o in prepared.failures.values())
    assert "line break" in prepared.failures[1].reason
    assert "SMTPUTF8" in prepared.failures[2].reason
    rest = prepared.without({0})
    assert rest.emails == ["line@example.net", "josé@example.net", "ok2@example.net"]
    assert sorted(rest.failures) == [0, 1] and rest.parts[2] == prepared.parts[3]


@pytest.mark.parametrize("length", [40, 64, 65, 200])  # HMAC hashes keys over 64 bytes
def test_bulk_tokens_are_the_tokens_one_at_a_time(length: int) -> None:
    secret = ("a-long-enough-secret-for-the-test-0123456789" * 5)[:length]
    emails = ["A@Example.net", " b@example.org ", "c+tag@example.com"]
    now = 1_700_000_000.0
    assert make_tokens(secret, "unsubscribe", emails, ttl=3600, now=now) == [
        make_token(secret, "unsubscribe", e, ttl=3600, now=now) for e in emails
    ]
