"""The contact-address pipeline, end to end: the corpus through a folder, a Maildir and an
mbox; store effects, confirmations in the outbox, the review queue, idempotence, the rate
limit, confirmation by reply, forged confirmations and forged bounces, and the CLI."""

from __future__ import annotations

import mailbox
import re
import time
from collections.abc import Callable, Iterator
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from newsletter.audience.inbound.records import Records
from newsletter.audience.inbound.sources import (
    FolderSource,
    InboundSource,
    MaildirSource,
    MboxSource,
)
from newsletter.audience.signups import approve, process_raw_message, process_source
from newsletter.audience.subscribers import SubscriberStore
from newsletter.cli.app import app
from newsletter.compose.issuefile import load_issue
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.compose.render import render_issue
from newsletter.config import Settings, load_settings
from newsletter.errors import ExitCode
from newsletter.tokens import CONFIRM_TTL, make_token, read_token, verify_message_id
from tests.conftest import GOLDEN_SETTINGS

DATA = Path(__file__).resolve().parent.parent / "data" / "inbound"
SECRET = GOLDEN_SETTINGS["secret_key"]
_PLACEHOLDER = re.compile(rb"\{\{(TOKEN|EXPIRED|TAMPERED):([^}]+)\}\}")

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
ACTIVE_AFTER = {"alice@example.com", "victor@example.com", "wendy@example.net"}
UNSUBSCRIBED_AFTER = {
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
    "10": "unsubscribed",
    "11": "unsubscribed",
    "12": "confirmation sent",
    "13": "review",
    "14": "confirmation sent",
    "15": "confirmation sent",
    "16": "unsubscribed",
    "17": "unsubscribed",
    "18": "unsubscribed",
    "19": "unsubscribed",
    "20": "review",
    "21": "review",
    "22": "review",
    "23": "recorded",
    "24": "recorded",
    "25": "recorded",
    "26": "recorded",
    "27": "review",
    "28": "recorded",
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


def token_for(kind: str, email: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    if kind == "TOKEN":
        # minted now: the corpus's reply (29) answers the confirmation its request (01)
        # triggers in the same run, and a token older than the row is refused as stale
        return make_token(SECRET, "confirm", email, ttl=CONFIRM_TTL, now=now)
    if kind == "EXPIRED":
        return make_token(SECRET, "confirm", email, ttl=CONFIRM_TTL, now=now - 8 * 86400)
    signature = make_token(SECRET, "confirm", email, ttl=CONFIRM_TTL, now=now).split(".")[1]
    other = make_token(SECRET, "confirm", "mallory@example.net", ttl=CONFIRM_TTL, now=now)
    return other.split(".")[0] + "." + signature


def load(name: str) -> bytes:
    """A corpus file with its token placeholders filled (valid now)."""
    raw = (DATA / name).read_bytes()
    return _PLACEHOLDER.sub(lambda m: token_for(m[1].decode(), m[2].decode()).encode(), raw)


def corpus() -> list[str]:
    return sorted(p.name for p in DATA.glob("*.eml"))


def seed(settings: Settings, emails: list[str] = SEEDED_ACTIVE) -> SubscriberStore:
    store = SubscriberStore.from_settings(settings)
    for email in emails:
        store.add(email, status="active", source="seed")
    return store


def statuses(settings: Settings) -> dict[str, str]:
    return {s.key: s.status for s in SubscriberStore.from_settings(settings).iter_valid()}


def outbox(settings: Settings) -> list[EmailMessage]:
    folder = settings.outbox_dir / "confirm"
    out = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        assert isinstance(msg, EmailMessage)
        out.append(msg)
    return out


def confirmation_for(settings: Settings, email: str) -> EmailMessage:
    found = [m for m in outbox(settings) if m["To"].addresses[0].addr_spec.lower() == email]
    assert len(found) == 1, [m["To"] for m in outbox(settings)]
    return found[0]


def token_in(msg: EmailMessage) -> str:
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    match = re.search(r"Reference:\s+(\S+)", text)
    assert match
    return match.group(1)


# ----------------------------------------------------------------- sources


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
    seed(settings)
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
        assert token_in(msg) in str(msg["Subject"])
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


# ------------------------------------------------------------- confirmation


def reply_to(confirmation: EmailMessage, sender: str, *, quote: bool = True) -> bytes:
    body = confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    quoted = "\n".join("> " + line for line in body.splitlines()) if quote else ""
    subject = str(confirmation["Subject"])
    return (
        f"From: Someone <{sender}>\r\n"
        "To: digest@example.org\r\n"
        f"Subject: Re: {subject}\r\n"
        f"Message-ID: <reply.{time.time_ns()}@mail.example.com>\r\n"
        f"In-Reply-To: {confirmation['Message-ID']}\r\n"
        "MIME-Version: 1.0\r\n"
        'Content-Type: text/plain; charset="utf-8"\r\n'
        "\r\n"
        f"Yes please.\r\n\r\nOn Monday, the digest wrote:\r\n{quoted}\r\n"
    ).encode()


def test_reply_to_the_confirmation_confirms(settings: Settings) -> None:
    process_raw_message(load("04-subject-only-subscribe.eml"), settings, source="test")
    assert statuses(settings)["pat@example.net"] == "pending"
    confirmation = confirmation_for(settings, "pat@example.net")
    outcome = process_raw_message(
        reply_to(confirmation, "pat@example.net"), settings, source="test"
    )
    assert outcome.action == "confirmed", outcome.detail
    assert statuses(settings)["pat@example.net"] == "active"
    row = SubscriberStore.from_settings(settings).get("pat@example.net")
    assert row is not None and row.confirmed_at


def test_reply_without_the_quote_confirms_by_the_subject(settings: Settings) -> None:
    process_raw_message(load("04-subject-only-subscribe.eml"), settings, source="test")
    confirmation = confirmation_for(settings, "pat@example.net")
    reply = reply_to(confirmation, "pat@example.net", quote=False)
    assert token_in(confirmation).encode() not in reply.split(b"\r\n\r\n", 1)[1]
    assert process_raw_message(reply, settings, source="test").action == "confirmed"


def test_a_forged_confirmation_reply_confirms_nobody(settings: Settings) -> None:
    process_raw_message(load("04-subject-only-subscribe.eml"), settings, source="test")
    confirmation = confirmation_for(settings, "pat@example.net")
    outcome = process_raw_message(
        reply_to(confirmation, "mallory@example.net"), settings, source="test"
    )
    assert outcome.action == "review" and outcome.review
    assert statuses(settings) == {"pat@example.net": "pending"}


def test_a_request_for_a_colleague_only_mails_the_colleague(settings: Settings) -> None:
    outcome = process_raw_message(load("07-colleague-one.eml"), settings, source="test")
    assert outcome.results == (("bob.lee@example.com", "sent"),)
    assert statuses(settings) == {"bob.lee@example.com": "pending"}
    assert [m["To"].addresses[0].addr_spec for m in outbox(settings)] == ["bob.lee@example.com"]


def test_rate_limit_per_address(home: Path) -> None:
    settings = load_settings(None, **GOLDEN_SETTINGS, confirm_rate_limit=2)
    raw = load("01-plain-please-add-me.eml")
    results = []
    for n in range(3):
        again = raw.replace(b"Message-ID: <", f"Message-ID: <again{n}.".encode(), 1)
        outcome = process_raw_message(again, settings, source="test")
        results.append(outcome.results)
    assert [r[0][1] for r in results] == ["sent", "sent", "rate-limited"]
    with Records.from_settings(settings) as records:
        assert records.confirmations_sent("alice@example.com") == 2
    later = raw.replace(b"Message-ID: <", b"Message-ID: <later.", 1)
    outcome = process_raw_message(later, settings, source="test", now=time.time() + 25 * 3600)
    assert outcome.results == (("alice@example.com", "sent"),)


def test_unsubscribed_person_asking_again_gets_a_confirmation(settings: Settings) -> None:
    seed(settings, ["alice@example.com"])
    past = SubscriberStore(settings.subscribers_file, clock=lambda: "2024-01-01T00:00:00Z")
    past.set_status("alice@example.com", "unsubscribed")
    outcome = process_raw_message(load("01-plain-please-add-me.eml"), settings, source="test")
    assert outcome.results == (("alice@example.com", "sent"),)
    # review finding: the request used to make the row "pending"; it now stays
    # unsubscribed until the confirmation it was mailed is answered
    assert statuses(settings)["alice@example.com"] == "unsubscribed"
    confirmation = confirmation_for(settings, "alice@example.com")
    outcome = process_raw_message(
        reply_to(confirmation, "alice@example.com"), settings, source="test"
    )
    assert outcome.action == "confirmed", outcome.detail
    assert statuses(settings)["alice@example.com"] == "active"


def test_a_reply_with_a_token_older_than_the_unsubscribe_confirms_nobody(
    settings: Settings,
) -> None:
    process_raw_message(load("04-subject-only-subscribe.eml"), settings, source="test")
    confirmation = confirmation_for(settings, "pat@example.net")
    later = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 5))
    SubscriberStore(settings.subscribers_file, clock=lambda: later).set_status(
        "pat@example.net", "unsubscribed"
    )
    outcome = process_raw_message(
        reply_to(confirmation, "pat@example.net"), settings, source="test"
    )
    assert outcome.action == "review" and outcome.review
    assert "older than your last change" in outcome.detail
    assert statuses(settings)["pat@example.net"] == "unsubscribed"


def test_a_helpdesk_acknowledgement_quoting_the_confirmation_confirms_nobody(
    settings: Settings,
) -> None:
    process_raw_message(load("04-subject-only-subscribe.eml"), settings, source="test")
    confirmation = confirmation_for(settings, "pat@example.net")
    subject = str(confirmation["Subject"])
    raw = (
        "From: Support <pat@example.net>\r\nTo: digest@example.org\r\n"
        f"Subject: [Ticket #4411] Re: {subject}\r\nMessage-ID: <ack.1@example.net>\r\n\r\n"
        "Thank you for contacting us. A ticket has been opened.\r\n"
    ).encode()
    outcome = process_raw_message(raw, settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert statuses(settings)["pat@example.net"] == "pending"


def test_someone_else_cannot_bring_back_an_unsubscribed_address(settings: Settings) -> None:
    store = seed(settings, ["bob.lee@example.com"])
    store.set_status("bob.lee@example.com", "unsubscribed")
    outcome = process_raw_message(load("07-colleague-one.eml"), settings, source="test")
    assert outcome.results == (("bob.lee@example.com", "unsubscribed"),)
    assert outcome.review and outcome.action == "nothing sent"
    assert statuses(settings)["bob.lee@example.com"] == "unsubscribed"
    assert outbox(settings) == []


def test_bounced_address_is_not_mailed_until_a_human_approves(settings: Settings) -> None:
    store = seed(settings, ["alice@example.com"])
    store.set_status("alice@example.com", "bounced")
    outcome = process_raw_message(load("01-plain-please-add-me.eml"), settings, source="test")
    assert outcome.results == (("alice@example.com", "suppressed"),) and outcome.review
    assert outbox(settings) == []
    assert outcome.record_id is not None
    note = approve(outcome.record_id, settings)
    assert "alice@example.com: sent" in note
    assert statuses(settings)["alice@example.com"] == "pending"
    assert len(outbox(settings)) == 1


def test_one_failing_message_does_not_stop_the_others(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import newsletter.audience.signups as signups

    real = signups.request_confirmation  # type: ignore[attr-defined]

    def flaky(email: str, *args: Any, **kwargs: Any) -> Any:
        if email == "pat@example.net":
            raise RuntimeError("disk on fire")
        return real(email, *args, **kwargs)

    monkeypatch.setattr(signups, "request_confirmation", flaky)  # the name it calls
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


# -------------------------------------------------------------------- bounces


def issue_headers(settings: Settings, email: str) -> bytes:
    """The header block of a real issue built by MessageBuilder for ``email``."""
    builder = MessageBuilder(
        render_issue(load_issue(settings.issues_dir / "vol-2.19.yaml"), settings), settings
    )
    raw = builder.to_bytes(Recipient(email))
    return raw.split(b"\r\n\r\n", 1)[0] + b"\r\n"


def dsn(headers: bytes, failed: list[str], *, message_id: str = "dsn.1") -> bytes:
    """A multipart/report delivery-status report for ``failed``, quoting ``headers``."""
    blocks = b"".join(
        f"Final-Recipient: rfc822; {a}\r\nAction: failed\r\nStatus: 5.1.1\r\n\r\n".encode()
        for a in failed
    )
    return (
        b"From: MAILER-DAEMON@mx.example.net (Mail Delivery System)\r\n"
        b"To: digest@example.org\r\nSubject: Undelivered Mail Returned to Sender\r\n"
        + f"Message-ID: <{message_id}@mx.example.net>\r\n".encode()
        + b"MIME-Version: 1.0\r\n"
        b'Content-Type: multipart/report; report-type=delivery-status; boundary="b"\r\n\r\n'
        b"--b\r\nContent-Type: text/plain\r\n\r\nYour message could not be delivered.\r\n"
        b"--b\r\nContent-Type: message/delivery-status\r\n\r\n"
        b"Reporting-MTA: dns; mx.example.net\r\n\r\n" + blocks + b"--b\r\n"
        b"Content-Type: text/rfc822-headers\r\n\r\n" + headers + b"--b--\r\n"
    )


OTHERS = [f"reader{i}@corp{i}.example" for i in range(25)]


def test_bounce_quoting_our_signed_message_id_marks_bounced(settings: Settings) -> None:
    seed(settings, ["victor@example.com", *OTHERS])
    headers = issue_headers(settings, "victor@example.com")
    assert verify_message_id(
        SECRET, BytesParser().parsebytes(headers)["Message-ID"], "victor@example.com"
    )
    outcome = process_raw_message(dsn(headers, ["victor@example.com"]), settings, source="test")
    assert outcome.action == "bounced" and not outcome.review, outcome.detail
    assert statuses(settings)["victor@example.com"] == "bounced"


def test_the_same_bounce_naming_many_subscribers_bounces_nobody(settings: Settings) -> None:
    seed(settings, ["victor@example.com", *OTHERS])
    headers = issue_headers(settings, "victor@example.com")
    raw = dsn(headers, ["victor@example.com", *OTHERS])
    outcome = process_raw_message(raw, settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert "26 recipients" in outcome.detail
    assert set(statuses(settings).values()) == {"active"}


def test_a_bounce_quoting_the_id_sent_to_someone_else_bounces_nobody(
    settings: Settings,
) -> None:
    seed(settings, ["victor@example.com", *OTHERS])
    headers = issue_headers(settings, "victor@example.com")
    for n, target in enumerate(OTHERS[:3]):
        raw = dsn(headers, [target], message_id=f"dsn.{n}")
        outcome = process_raw_message(raw, settings, source="test")
        assert outcome.action == "review" and outcome.review
        assert f"bounce does not quote a message we sent to {target}" in outcome.detail
    assert set(statuses(settings).values()) == {"active"}


def test_forged_bounce_suppresses_nobody(settings: Settings) -> None:
    """Review finding 2 (r3.py): a report naming every subscriber, quoting nothing."""
    seed(settings, ["victor@example.com", *OTHERS[:4]])
    for n, names in enumerate((["victor@example.com"], ["victor@example.com", *OTHERS[:4]])):
        outcome = process_raw_message(dsn(b"", names, message_id=f"f{n}"), settings, source="t")
        assert outcome.action == "review" and outcome.review, outcome.detail
    # the corpus DSN quotes an unsigned Message-ID at our domain: not ours either
    outcome = process_raw_message(load("27-dsn-5.1.1.eml"), settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert "does not quote a message we sent to" in outcome.detail
    assert set(statuses(settings).values()) == {"active"}


def test_bounce_quoting_a_foreign_message_id_suppresses_nobody(settings: Settings) -> None:
    seed(settings, ["victor@example.com"])
    raw = load("27-dsn-5.1.1.eml").replace(
        b"<vol-2.19.7f3a9c@example.org>", b"<forged.1@attacker.example.net>"
    )
    outcome = process_raw_message(raw, settings, source="test")
    assert outcome.action == "review"
    assert statuses(settings)["victor@example.com"] == "active"


def test_bounce_of_a_confirmation_marks_bounced(settings: Settings) -> None:
    process_raw_message(load("01-plain-please-add-me.eml"), settings, source="test")
    confirmation = confirmation_for(settings, "alice@example.com")
    headers = b"".join(
        f"{k}: {v}\r\n".encode() for k, v in confirmation.items() if k in ("From", "Message-ID")
    )
    outcome = process_raw_message(dsn(headers, ["alice@example.com"]), settings, source="test")
    assert outcome.action == "bounced", outcome.detail
    assert statuses(settings)["alice@example.com"] == "bounced"


# ------------------------------------------------------------------------ CLI

runner = CliRunner()


@pytest.fixture
def cli_home(settings: Settings, home: Path) -> Iterator[Path]:
    (home / ".env").write_text(
        "NEWSLETTER_FROM=US-Japan Alliance Digest <digest@example.org>\n"
        "NEWSLETTER_CONTACT=digest@example.org\n"
        "NEWSLETTER_PUBLIC_URL=https://digest.example.org\n"
        f"NEWSLETTER_SECRET_KEY={SECRET}\n"
    )
    yield home


def test_cli_process_review_show_and_decide(cli_home: Path, settings: Settings) -> None:
    folder = cli_home / "mail"
    folder.mkdir()
    for name in ("01-plain-please-add-me.eml", "20-unsubscribe-colleague.eml", "22-question.eml"):
        (folder / name).write_bytes(load(name))

    result = runner.invoke(app, ["signups", "process", "--source", str(folder)])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        "[1] 01-plain-please-add-me.eml: confirmation sent: confirmation sent to alice@example.com"
    )
    assert lines[1].startswith("[2] 20-unsubscribe-colleague.eml: review: carol@example.com")
    assert lines[2].startswith("[3] 22-question.eml: review: a question about subscribing")
    assert lines[3] == (
        f"folder:{folder}: 3 messages: 1 confirmation sent, 2 review; "
        "1 confirmation email sent; 2 for review"
    )
    assert lines[4] == "next: newsletter signups review"

    again = runner.invoke(app, ["signups", "process", "--source", str(folder)])
    assert again.output.splitlines() == [f"folder:{folder}: 3 messages: 3 duplicate"]

    review = runner.invoke(app, ["signups", "review"])
    assert review.exit_code == 0
    assert "[2] " in review.output and "from carol@example.com" in review.output
    assert "[3] " in review.output and "PDF" in review.output and "[1] " not in review.output

    show = runner.invoke(app, ["signups", "show", "2"])
    assert show.exit_code == 0
    assert "Please remove bob.lee@example.com from your mailing list" in show.output
    assert "Subject: Staff change" in show.output

    approved = runner.invoke(app, ["signups", "approve", "3"])
    assert approved.exit_code == ExitCode.ERROR
    assert "say what to do with --as" in approved.output

    assert runner.invoke(app, ["signups", "ignore", "3"]).exit_code == 0
    assert runner.invoke(app, ["signups", "reject", "2"]).output == (
        "[2] rejected: nothing was sent or changed\n"
    )
    twice = runner.invoke(app, ["signups", "reject", "2"])
    assert twice.exit_code == ExitCode.ERROR
    assert "error: inbound message [2] is rejected; only open items can be decided" in (
        twice.output
    )
    assert runner.invoke(app, ["signups", "review"]).output == "nothing to review\n"
    missing = runner.invoke(app, ["signups", "show", "99"])
    assert missing.exit_code == ExitCode.ERROR and "no inbound message with id 99" in (
        missing.output
    )


def test_cli_approve_an_unsubscribe_for_a_colleague(cli_home: Path, settings: Settings) -> None:
    seed(settings, ["bob.lee@example.com"])
    folder = cli_home / "mail"
    folder.mkdir()
    (folder / "20.eml").write_bytes(load("20-unsubscribe-colleague.eml"))
    runner.invoke(app, ["signups", "process", "--source", str(folder)])
    assert statuses(settings)["bob.lee@example.com"] == "active"
    result = runner.invoke(app, ["signups", "approve", "1"])
    assert result.exit_code == 0, result.output
    assert result.output == ("[1] approved as unsubscribe: bob.lee@example.com: unsubscribed\n")
    assert statuses(settings)["bob.lee@example.com"] == "unsubscribed"


def test_cli_process_without_source_or_imap_is_a_config_error(cli_home: Path) -> None:
    result = runner.invoke(app, ["signups", "process"])
    assert result.exit_code == ExitCode.CONFIG
    assert "error: NEWSLETTER_IMAP_HOST is not set" in result.output
    assert "Traceback" not in result.output


def test_cli_process_without_secret_is_a_config_error(home: Path) -> None:
    result = runner.invoke(app, ["signups", "process", "--source", str(home)])
    assert result.exit_code == ExitCode.CONFIG
    assert "NEWSLETTER_SECRET_KEY is not set" in result.output


@pytest.mark.parametrize("command", ["process", "review", "show", "approve", "reject", "ignore"])
def test_cli_every_command_has_help(command: str) -> None:
    result = runner.invoke(app, ["signups", command, "--help"])
    assert result.exit_code == 0
    assert len(result.output) > 200


def test_review_reports_payloads_the_web_server_kept(cli_home: Path, settings: Settings) -> None:
    kept = cli_home / ".newsletter" / "inbound-unprocessed"
    kept.mkdir(parents=True)
    (kept / "ab12.eml").write_bytes(load("01-plain-please-add-me.eml"))
    (kept / "ab12.eml.txt").write_text("reason: list locked\n")
    (kept / "cd34.form").write_bytes(b"garbage")
    result = runner.invoke(app, ["signups", "review"])
    assert result.exit_code == 0, result.output
    folder = Path(".newsletter/inbound-unprocessed")
    assert result.output.splitlines() == [
        f"2 inbound payload(s) kept by `newsletter serve` in {folder}/ "
        "(the .txt beside each says why)",
        f"  retry the 1 .eml message(s): newsletter signups process --source {folder}",
        "  1 .form payload(s) could not be read at all: read them by hand",
        "nothing to review",
    ]


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
