"""The contact-address pipeline, end to end: the corpus through a folder, a Maildir and an
mbox; store effects, confirmations in the outbox, the review queue, idempotence, a message
that fails, a reused Message-ID. Requests and replies: test_signups_confirmations.py;
bounces: test_signups_bounces.py; the CLI: test_signups_cli.py."""

from __future__ import annotations

import mailbox
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.inbound.mailfiles import FolderSource, MaildirSource, MboxSource
from newsletter.audience.inbound.records import Records
from newsletter.audience.inbound.sources import InboundSource
from newsletter.audience.signups import process_raw_message, process_source
from newsletter.config import Settings
from newsletter.tokens import read_token, subscriber_id
from tests.support.signupkit import (
    SECRET,
    confirmation_for,
    corpus,
    load,
    outbox,
    seed,
    statuses,
    token_in,
)

#: subscribed as active before the corpus runs (so unsubscribes and bounces have targets)
SEEDED_ACTIVE = [
    "h.tanaka@example.com",
    "ivy@example.net",
    "kenji@example.net",
    "mika@example.com",
    "oscar@example.com",
    "quinn@example.net",
    "victor@example.com",
    "wendy@example.net",
]
PENDING_AFTER = {
    "ken.sato@example.net",
    "m.fischer@example.com",
    "pat@example.net",
    "jun.ito@example.com",
    "jane.doe@example.com",
    "bob.lee@example.com",
    "frank@example.com",
    "dan@example.com",
    "erin@example.net",
    "grace@example.com",
    "carol.tanaka@example.com",
    "taro.yamada@example.com",
    "hanako.suzuki@example.com",
    "eve@example.com",
    "chloe@example.net",
    "ryo@example.com",
    "team-asia@example.com",
}
ACTIVE_AFTER = {"alice@example.com", *SEEDED_ACTIVE}
#: the corpus's unsubscribes by mail carry no trusted verdict on their From: each reader
#: is sent a one-click "confirm you want to leave" link instead (outbox/leave/)
UNSUBSCRIBED_AFTER: set[str] = set()
LEAVE_LINKS = {
    "h.tanaka@example.com",
    "ivy@example.net",
    "kenji@example.net",
    "mika@example.com",
    "oscar@example.com",
    "quinn@example.net",
}
#: the corpus files that end in the review queue
REVIEW_FILES = {
    "13-forwarded-no-address.eml",
    "20-unsubscribe-colleague.eml",
    "21-ambiguous-change-address.eml",
    "22-question.eml",
    "27-dsn-5.1.1.eml",  # the Message-ID it quotes is not one we signed for victor
    "28-dsn-4.x-delayed.eml",  # a delay that quotes nothing we signed: not attributed
    "30-confirm-forged-other.eml",
    "31-confirm-tampered.eml",
    "32-confirm-expired.eml",
    "35-empty-body.eml",
    "37-garbage-bytes.eml",
    "38-invalid-sender.eml",
    "40-thanks-no-request.eml",
    "43-japanese-thanks-reader.eml",
    "45-helpdesk-ticket-ack.eml",  # automatic acknowledgements quoting a confirmation
    "46-japanese-auto-ack.eml",
    "47-customer-care-ack.eml",
}
#: what the pipeline does with each corpus file (the seeded list above, no journal)
ACTIONS = {
    "01": "confirmation sent",
    "02": "confirmation sent",
    "03": "confirmation sent",
    "04": "confirmation sent",
    "05": "confirmation sent",
    "06": "confirmation sent",
    "07": "confirmation sent",
    "08": "confirmation sent",
    "09": "confirmation sent",
    "10": "leave link sent",
    "11": "leave link sent",
    "12": "confirmation sent",
    "13": "review",
    "14": "confirmation sent",
    "15": "confirmation sent",
    "16": "leave link sent",
    "17": "leave link sent",
    "18": "leave link sent",
    "19": "leave link sent",
    "20": "review",
    "21": "review",
    "22": "review",
    "23": "recorded",
    "24": "recorded",
    "25": "recorded",
    "26": "recorded",
    "27": "review",
    "28": "review",
    "29": "confirmed",
    "30": "review",
    "31": "review",
    "32": "review",
    "33": "confirmation sent",
    "34": "recorded",
    "35": "review",
    "36": "recorded",
    "37": "review",
    "38": "review",
    "39": "recorded",
    "40": "review",
    "41": "recorded",
    "42": "confirmation sent",
    "43": "review",
    "44": "confirmation sent",
    "45": "review",
    "46": "review",
    "47": "review",
}


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    """Start from an empty subscriber list (the home's sample list is someone else's)."""
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


def write_folder(root: Path) -> Path:
    folder = root / "eml"
    folder.mkdir()
    for name in corpus():
        (folder / name).write_bytes(load(name))
    return folder


def write_maildir(root: Path) -> Path:
    path = root / "Maildir"
    mailbox.Maildir(str(path), create=True).close()
    for i, name in enumerate(corpus()):
        # unique names in corpus order; the "new/" files carry no info suffix
        (path / "new" / f"{1700000000 + i}.M{i:06d}P1.test,{name[:2]}").write_bytes(load(name))
    return path


def write_mbox(root: Path) -> Path:
    path = root / "contact.mbox"
    box = mailbox.mbox(str(path), create=True)
    try:
        for name in corpus():
            box.add(load(name))
        box.flush()
    finally:
        box.close()
    return path


SOURCES: dict[str, Callable[[Path], InboundSource]] = {
    "folder": lambda root: FolderSource(write_folder(root)),
    "maildir": lambda root: MaildirSource(write_maildir(root)),
    "mbox": lambda root: MboxSource(write_mbox(root)),
}


@pytest.mark.parametrize("kind", sorted(SOURCES))
def test_corpus_through_each_source(kind: str, settings: Settings, tmp_path: Path) -> None:
    seed(settings, SEEDED_ACTIVE)
    source = SOURCES[kind](tmp_path)
    outcomes = process_source(source, settings)
    names = corpus()
    assert len(outcomes) == len(names)
    got = {number_of(o.source_id, names): o.action for o in outcomes}
    assert got == ACTIONS

    final = statuses(settings)
    assert {k for k, s in final.items() if s == "pending"} == PENDING_AFTER
    assert {k for k, s in final.items() if s == "active"} == ACTIVE_AFTER
    assert {k for k, s in final.items() if s == "unsubscribed"} == UNSUBSCRIBED_AFTER

    # exactly one confirmation per address, transactional, with a valid token
    mails = outbox(settings)
    to = sorted(m["To"].addresses[0].addr_spec.lower() for m in mails)
    assert to == sorted(PENDING_AFTER | {"alice@example.com"})
    for msg in mails:
        assert msg["Auto-Submitted"] == "auto-replied"
        assert msg["List-Unsubscribe"] is None and msg["List-Id"] is None
        assert msg["Bcc"] is None and msg["Cc"] is None  # 33's injected header stays out
        email = msg["To"].addresses[0].addr_spec.lower()
        assert read_token(SECRET, token_in(msg), "confirm") == email
        assert token_in(msg) not in str(msg["Subject"])
        assert token_in(msg) in str(msg["Message-ID"])
    leave = sorted(p.stem for p in (settings.outbox_dir / "leave").glob("*.eml"))
    assert leave == sorted(subscriber_id(a) for a in LEAVE_LINKS)
    # replying threads under the request
    assert confirmation_for(settings, "pat@example.net")["In-Reply-To"]

    with Records.from_settings(settings) as records:
        queue = list(records.items(review=["open"]))
        assert records.count() == len(names)
    by_source = {r.source_id: r for r in queue}
    assert {number_of(r.source_id, names) for r in queue} == {n[:2] for n in REVIEW_FILES}
    assert all(r.reason for r in by_source.values())

    # a re-run changes nothing
    before_csv = settings.subscribers_file.read_bytes()
    before_mail = sorted((p.name, p.stat().st_mtime_ns) for p in settings.outbox_dir.rglob("*"))
    again = process_source(SOURCES_REOPEN[kind](tmp_path), settings)
    assert {o.action for o in again} <= {"duplicate"}
    assert settings.subscribers_file.read_bytes() == before_csv
    assert sorted((p.name, p.stat().st_mtime_ns) for p in settings.outbox_dir.rglob("*")) == (
        before_mail
    )


def number_of(source_id: str, names: list[str]) -> str:
    if source_id.endswith(".eml"):
        return source_id[:2]
    if source_id.startswith("#"):
        return names[int(source_id[1:]) - 1][:2]
    return source_id.rsplit(",", 1)[1]


SOURCES_REOPEN: dict[str, Callable[[Path], InboundSource]] = {
    "folder": lambda root: FolderSource(root / "eml"),
    "maildir": lambda root: MaildirSource(root / "Maildir"),
    "mbox": lambda root: MboxSource(root / "contact.mbox"),
}


def test_maildir_moves_handled_mail_to_cur_with_a_flag(settings: Settings, tmp_path: Path) -> None:
    path = write_maildir(tmp_path)
    process_source(MaildirSource(path), settings)
    assert list((path / "new").iterdir()) == []
    done = sorted((path / "cur").iterdir())
    assert len(done) == len(corpus())
    assert all(p.name.endswith(":2,S") for p in done)
    again = process_source(MaildirSource(path), settings)
    assert {o.action for o in again} == {"duplicate"}
    assert sorted((path / "cur").iterdir()) == done  # nothing renamed twice


def test_mbox_is_left_untouched(settings: Settings, tmp_path: Path) -> None:
    path = write_mbox(tmp_path)
    before = path.read_bytes()
    process_source(MboxSource(path), settings)
    assert path.read_bytes() == before


def test_dry_run_writes_and_sends_nothing(settings: Settings, tmp_path: Path) -> None:
    path = write_maildir(tmp_path)
    outcomes = process_source(MaildirSource(path), settings, dry_run=True)
    assert {o.action for o in outcomes} == {"dry run"}
    assert len(list((path / "new").iterdir())) == len(corpus())
    assert not settings.subscribers_file.exists()
    assert outbox(settings) == []
    with Records.from_settings(settings) as records:
        assert records.count() == 0


def test_one_failing_message_does_not_stop_the_others(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import newsletter.audience.actions as actions

    real = actions.request_confirmation  # type: ignore[attr-defined]

    def flaky(email: str, *args: Any, **kwargs: Any) -> Any:
        if email == "pat@example.net":
            raise RuntimeError("disk on fire")
        return real(email, *args, **kwargs)

    monkeypatch.setattr(actions, "request_confirmation", flaky)  # the name it calls
    folder = tmp_path / "eml"
    folder.mkdir()
    for name in ("01-plain-please-add-me.eml", "04-subject-only-subscribe.eml", "05-html-only.eml"):
        (folder / name).write_bytes(load(name))
    outcomes = process_source(FolderSource(folder), settings)
    assert [o.action for o in outcomes] == ["confirmation sent", "error", "confirmation sent"]
    assert "disk on fire" in outcomes[1].detail and outcomes[1].review
    with Records.from_settings(settings) as records:
        (item,) = records.items(review=["open"])
        assert item.outcome == "error" and item.kind == "subscribe"


def test_a_different_message_reusing_a_message_id_is_kept_for_review(
    settings: Settings,
) -> None:
    """Review finding 4: a second, different message with the same Message-ID used to
    be a silent duplicate whose bytes were never stored."""
    first = load("01-plain-please-add-me.eml")
    assert process_raw_message(first, settings, source="test").action == "confirmation sent"
    other = load("18-unsubscribe-body.eml")
    mid = re.search(rb"Message-ID: (<[^>]+>)", first)
    assert mid is not None
    other = re.sub(rb"Message-ID: <[^>]+>", b"Message-ID: " + mid.group(1), other)
    seed(settings, ["oscar@example.com"])
    outcome = process_raw_message(other, settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert "reuses the Message-ID of [1]" in outcome.detail
    assert statuses(settings)["oscar@example.com"] == "active"  # not acted on
    with Records.from_settings(settings) as records:
        assert records.count() == 2
        assert outcome.record_id is not None
        assert records.raw(outcome.record_id) == other  # nothing lost
    # the very same bytes again are duplicates, each of the two
    for raw in (first, other):
        assert process_raw_message(raw, settings, source="test").action == "duplicate"
    with Records.from_settings(settings) as records:
        assert records.count() == 2
