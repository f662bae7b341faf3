"""Inbound classification: the corpus in tests/data/inbound, compared outcome by outcome.

Each ``.eml`` has an entry in ``expected.yaml``; tokens are filled in by
:func:`tests.support.inboundkit.load`. The outcomes of each kind are tested in detail
beside the module that reads them (test_inbound_bounces, _automatic, _replies, _intent,
_authentication); here, what the order of the decisions itself decides.
"""

from __future__ import annotations

import re

import pytest

from tests.support.inboundkit import DATA, EXPECTED, classify, load
from tests.support.inboundkit import mail as _mail


def test_corpus_and_expectations_match() -> None:
    files = sorted(p.name for p in DATA.glob("*.eml"))
    assert files == sorted(EXPECTED)
    assert len(files) >= 24


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_corpus(name: str) -> None:
    want = EXPECTED[name]
    got = classify(load(name))
    assert got.kind == want["kind"], got.reason
    assert list(got.addresses) == want["addresses"], got.reason
    assert got.token_email == want.get("token_email")
    for key in ("sender", "original_message_id", "subject"):
        if key in want:
            assert getattr(got, key) == want[key]
    assert got.reason and "\n" not in got.reason
    assert not re.search(r"[\r\n\x00-\x1f\x7f\u2028\u2029]", got.subject)
    assert len(got.subject) <= 200 and len(got.excerpt) <= 500
    if got.message_id is not None:
        assert re.fullmatch(r"<[^<>\s]+>|[^<>\s]+", got.message_id)


def test_sender_from_our_domain_is_reviewed() -> None:
    got = classify(_mail("please add me", sender="staff@example.org"))
    assert got.kind == "review"


def test_undecodable_bytes_never_raise() -> None:
    raw = (
        b"From: a@example.com\nSubject: \xff\xfe\nContent-Type: text/plain; charset=nonsense\n"
        b"Content-Transfer-Encoding: quoted-printable\n\nplease add me =FF=FE \xc3\x28\n"
    )
    got = classify(raw)
    assert got.kind == "subscribe"
    assert "\ufffd" in got.subject or got.subject
