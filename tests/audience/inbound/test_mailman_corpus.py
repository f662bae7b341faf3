"""GNU Mailman's bounce corpus (tests/data/mailman_bounces, from flufl.bounce 6.0.0).

117 real reports nobody here wrote: what the classifier reads from each, then each
failure report through the whole pipeline, returned to a VERP address or rewritten to
quote a Message-ID we signed, against a list holding the failed readers. Figures are
printed (``pytest -s``) and asserted against the issue's bars.
"""

from __future__ import annotations

import email
from collections import Counter
from email import policy
from email.message import Message
from pathlib import Path

import pytest
import yaml

from newsletter.audience.inbound import classify_message, parse_message
from newsletter.audience.inbound.bounces import quoted_message_ids
from newsletter.audience.signups import process_raw_message
from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings, load_settings
from newsletter.tokens import make_bounce_address, make_message_id
from tests.conftest import GOLDEN_SETTINGS

DATA = Path(__file__).resolve().parents[2] / "data" / "mailman_bounces"
EXPECTED: dict[str, dict[str, list[str]]] = yaml.safe_load(
    (DATA / "expected.yaml").read_text("utf-8")
)
SECRET = GOLDEN_SETTINGS["secret_key"]
BOUNCE = "bounce@example.org"


def _want(name: str) -> tuple[str, set[str]]:
    kind, addresses = next(iter(EXPECTED[name].items()))
    return kind, {a.lower() for a in addresses}


def _classify(raw: bytes) -> tuple[str, set[str]]:
    got = classify_message(parse_message(raw), contact="digest@example.org", secret=SECRET)
    return got.kind, {a.lower() for a in got.addresses}


def test_the_corpus_is_complete() -> None:
    files = sorted(p.name for p in DATA.glob("*.txt"))
    assert files == sorted(EXPECTED) and len(files) == 117
    kinds = Counter(_want(n)[0] for n in files)
    assert kinds == {"permanent": 100, "temporary": 11, "none": 6}


def test_what_the_classifier_reads_from_every_report() -> None:
    exact = Counter[str]()
    outcome = Counter[str]()
    for name in sorted(EXPECTED):
        kind, want = _want(name)
        got_kind, got = _classify((DATA / name).read_bytes())
        outcome[got_kind] += 1
        if kind == "permanent" and got_kind == "bounce" and got == want:
            exact["permanent"] += 1
        if kind == "temporary" and got_kind == "delay" and got == want:
            exact["temporary"] += 1
        if kind != "none":
            assert got_kind in ("bounce", "delay"), name  # never filed as automatic mail
        elif got_kind == "auto":  # Mailman's own test: an auto-reply, not a report
            assert name == "qmail_08.txt"
    print(
        f"\nMailman corpus: {exact['permanent']}/100 permanent failures read exactly, "
        f"{exact['temporary']}/11 delay warnings temporary; kinds {dict(outcome)}"
    )
    assert exact["permanent"] >= 97
    assert exact["temporary"] == 11


def _with_signed_id(raw: bytes, message_id: str) -> tuple[bytes, str]:
    """The report quoting ``message_id`` as the mail that failed: every Message-ID it
    already quotes replaced, else the returned headers added (text/rfc822-headers)."""
    quoted = quoted_message_ids(parse_message(raw))
    if quoted:
        for old in quoted:
            raw = raw.replace(old.encode(), message_id.encode())
        return raw, "replaced"
    msg: Message = email.message_from_bytes(raw, policy=policy.compat32)
    if msg.is_multipart():
        part = Message()
        part["Content-Type"] = "text/rfc822-headers"
        part.set_payload(f"Message-ID: {message_id}\n")
        msg.attach(part)
    else:
        body = msg.get_payload(decode=True) or b""
        msg.set_payload(body + f"\n\n--- returned headers ---\nMessage-ID: {message_id}\n".encode())
        del msg["Content-Transfer-Encoding"]
    return msg.as_bytes(), "added"


def _returned_to_verp(raw: bytes, reader: str) -> bytes:
    """The report as our receiving MTA delivers it when it came back to the VERP address."""
    verp = make_bounce_address(SECRET, BOUNCE, reader, "vol-2.19")
    newline = b"\r\n" if b"\r\n" in raw[:2000] else b"\n"
    if raw.startswith(b"From "):  # an mbox "From " line stays first
        first, rest = raw.split(newline, 1)
        return first + newline + b"Delivered-To: " + verp.encode() + newline + rest
    return b"Delivered-To: " + verp.encode() + newline + raw


@pytest.fixture
def verp_settings(home: Path) -> Settings:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    return load_settings(None, **GOLDEN_SETTINGS, bounce_address=BOUNCE, soft_bounce_limit=1000)


@pytest.mark.parametrize("how", ["verp", "message-id"])
def test_every_failure_report_marks_its_reader(how: str, verp_settings: Settings) -> None:
    settings = verp_settings
    store = SubscriberStore.from_settings(settings)
    reports = [n for n in sorted(EXPECTED) if _want(n)[0] != "none"]
    readers = {n: sorted(_want(n)[1])[0] for n in reports}
    for reader in sorted(set(readers.values())):
        store.add(reader, status="active", source="seed")
    marked = Counter[str]()
    actions = Counter[str]()
    added = 0
    for name in reports:
        kind, _ = _want(name)
        reader = readers[name]
        raw = (DATA / name).read_bytes()
        if how == "verp":
            raw = _returned_to_verp(raw, reader)
        else:
            mid = make_message_id(SECRET, reader, "example.org")
            raw, done = _with_signed_id(raw, mid)
            added += done == "added"
        outcome = process_raw_message(raw, settings, source="corpus", store=store)
        actions[outcome.action] += 1
        status = store.get(reader)
        assert status is not None
        if kind == "permanent" and outcome.action == "bounced" and status.status == "bounced":
            marked["permanent"] += 1
        if kind == "temporary" and outcome.action == "soft bounce":
            assert status.status == "active", name  # one delay is not a bounce
            marked["temporary"] += 1
        # whatever happened, the others on the list were left alone
        others = [s for s in store.iter_valid() if s.key != reader.lower()]
        assert all(s.status == "active" for s in others), name
        store.set_status(reader, "active")
    print(
        f"\n{how}: {marked['permanent']}/100 permanent reports marked the reader bounced, "
        f"{marked['temporary']}/11 delays counted as soft bounces; actions {dict(actions)}"
        + (f"; Message-ID added to {added} reports that quoted none" if added else "")
    )
    assert marked["permanent"] >= 99
    assert marked["temporary"] == 11
    assert not (settings.outbox_dir).exists() or not any(settings.outbox_dir.rglob("*.eml"))
