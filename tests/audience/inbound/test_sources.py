"""Inbound sources: IMAP against a real Dovecot on 127.0.0.1, and SendGrid Inbound Parse
payloads (raw and parsed mode) that must come out as the .eml files do."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.audience.inbound.classify import parse_message
from newsletter.audience.inbound.imap import ImapSource
from newsletter.audience.inbound.inbound_parse import raw_from_inbound_parse
from newsletter.audience.inbound.mailfiles import open_path_source
from newsletter.audience.inbound.records import Records
from newsletter.audience.signups import process_raw_message, process_source
from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError, NewsletterError, TransportAuthError
from tests.conftest import GOLDEN_SETTINGS
from tests.support.dovecot import DOVECOT, DovecotServer, start_dovecot
from tests.support.signupkit import load, outbox, statuses


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


# ------------------------------------------------------------------------ IMAP


@pytest.fixture(scope="module")
def dovecot() -> Iterator[DovecotServer]:
    if not DOVECOT.exists():
        pytest.fail(f"{DOVECOT} not found: run `bash scripts/test.sh` (it installs dovecot-imapd)")
    with start_dovecot() as server:
        yield server


_FOLDERS = iter(range(1, 1000))


@pytest.fixture
def imap_settings(dovecot: DovecotServer, home: Path) -> Settings:
    """Settings pointing at a fresh folder pair on the shared server."""
    n = next(_FOLDERS)
    return load_settings(
        None,
        **GOLDEN_SETTINGS,
        **dovecot.settings(),
        imap_folder=f"Signups{n}",
        imap_done_folder=f"Signups{n} Done",
    )


def append(server: DovecotServer, folder: str, *messages: bytes) -> None:
    imap = server.connect()
    try:
        imap.create(f'"{folder}"')
        for raw in messages:
            typ, data = imap.append(f'"{folder}"', None, None, raw)
            assert typ == "OK", data
    finally:
        imap.logout()


def count(server: DovecotServer, folder: str) -> int:
    imap = server.connect()
    try:
        typ, data = imap.select(f'"{folder}"', readonly=True)
        assert typ == "OK", data
        return int(data[0] or 0)
    finally:
        imap.logout()


def uidvalidity(server: DovecotServer, folder: str) -> int:
    imap = server.connect()
    try:
        typ, data = imap.status(f'"{folder}"', "(UIDVALIDITY)")
        assert typ == "OK"
        return int(data[0].split(b"UIDVALIDITY ")[1].rstrip(b")"))
    finally:
        imap.logout()


def run(settings: Settings, **kwargs: object) -> list[str]:
    with Records.from_settings(settings) as records:
        source = ImapSource.from_settings(settings, records=records)
        for key, value in kwargs.items():
            setattr(source, key, value)
        return [o.action for o in process_source(source, settings, records=records)]


CORPUS = [
    "01-plain-please-add-me.eml",
    "10-outlook-reply-unsubscribe.eml",
    "14-japanese-iso2022jp-subscribe.eml",
    "22-question.eml",
    "23-auto-submitted.eml",
]


def test_imap_process_moves_to_the_done_folder(
    dovecot: DovecotServer, imap_settings: Settings
) -> None:
    folder, done = imap_settings.imap_folder, imap_settings.imap_done_folder
    append(dovecot, folder, *(load(n) for n in CORPUS))
    actions = run(imap_settings)
    assert actions == ["confirmation sent", "no change", "confirmation sent", "review", "recorded"]
    assert count(dovecot, folder) == 0
    assert count(dovecot, done) == len(CORPUS)  # created on first use, nothing deleted
    assert statuses(imap_settings) == {
        "alice@example.com": "pending",
        "taro.yamada@example.com": "pending",
    }
    # a restart finds nothing to do
    assert run(imap_settings) == []
    # a copy that resurfaces in the folder is recognised, not handled again
    imap = dovecot.connect()
    imap.select(f'"{done}"')
    imap.uid("COPY", "1", f'"{folder}"')
    imap.logout()
    assert run(imap_settings) == ["duplicate"]
    assert count(dovecot, folder) == 0
    assert len(outbox(imap_settings)) == 2


def test_imap_without_move_copies_then_expunges(
    dovecot: DovecotServer, imap_settings: Settings
) -> None:
    folder, done = imap_settings.imap_folder, imap_settings.imap_done_folder
    append(dovecot, folder, load(CORPUS[0]), load(CORPUS[3]))
    assert run(imap_settings, use_move=False) == ["confirmation sent", "review"]
    assert count(dovecot, folder) == 0
    assert count(dovecot, done) == 2


def test_imap_uidvalidity_change(dovecot: DovecotServer, imap_settings: Settings) -> None:
    folder = imap_settings.imap_folder
    append(dovecot, folder, load(CORPUS[0]), load(CORPUS[3]))
    old = uidvalidity(dovecot, folder)
    assert run(imap_settings) == ["confirmation sent", "review"]
    # the folder is deleted and made again: UIDs start over under a new UIDVALIDITY
    imap = dovecot.connect()
    imap.delete(f'"{folder}"')
    imap.logout()
    append(dovecot, folder, load(CORPUS[0]), load(CORPUS[2]))
    assert uidvalidity(dovecot, folder) != old
    # UID 1 is the old message again (a duplicate); UID 2 is new and handled
    assert run(imap_settings) == ["duplicate", "confirmation sent"]
    assert "taro.yamada@example.com" in statuses(imap_settings)
    assert count(dovecot, folder) == 0


def test_imap_wrong_password_is_an_auth_error(dovecot: DovecotServer, home: Path) -> None:
    settings = load_settings(
        None, **GOLDEN_SETTINGS, **{**dovecot.settings(), "imap_password": "wrong"}
    )
    with pytest.raises(TransportAuthError, match="refused the login for contact"):
        run(settings)


def test_imap_unreachable_names_host_and_port(home: Path) -> None:
    from tests.support.dovecot import free_port

    port = free_port()
    settings = load_settings(
        None,
        **GOLDEN_SETTINGS,
        imap_host="127.0.0.1",
        imap_port=port,
        imap_security="none",
        imap_username="x",
        imap_password="y",
    )
    with pytest.raises(NewsletterError, match=f"127.0.0.1:{port}: cannot connect"):
        run(settings)


def test_imap_settings_missing(home: Path) -> None:
    settings = load_settings(None, **GOLDEN_SETTINGS)
    with pytest.raises(ConfigError, match="NEWSLETTER_IMAP_HOST"):
        ImapSource.from_settings(settings)
    settings = load_settings(None, **GOLDEN_SETTINGS, imap_host="127.0.0.1")
    with pytest.raises(ConfigError, match="NEWSLETTER_IMAP_USERNAME"):
        ImapSource.from_settings(settings)


# ---------------------------------------------------------- path detection


def test_open_path_source_refuses_other_files(tmp_path: Path) -> None:
    other = tmp_path / "notes.txt"
    other.write_text("hello")
    with pytest.raises(NewsletterError, match="not an mbox file"):
        open_path_source(other)
    with pytest.raises(NewsletterError, match="no such file or folder"):
        open_path_source(tmp_path / "missing")


# ------------------------------------------------------- SendGrid Inbound Parse


def _split(raw: bytes) -> tuple[str, bytes]:
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    head, _, body = raw.partition(sep)
    return head.decode("utf-8", "surrogateescape"), body


def parsed_form(name: str, *, envelope_from: str = "sender@example.com") -> dict[str, str]:
    """The form SendGrid posts in parsed mode, as a web framework hands it over: fields
    in a legacy charset arrive as Latin-1-decoded text, with ``charsets`` saying which."""
    raw = load(name)
    msg = parse_message(raw)
    headers, _body = _split(raw)
    form: dict[str, str] = {"headers": headers}
    charsets: dict[str, str] = {"headers": "UTF-8", "from": "UTF-8", "subject": "UTF-8"}
    for part in msg.walk():
        ctype = part.get_content_type()
        field = {"text/plain": "text", "text/html": "html"}.get(ctype)
        if field is None or field in form:
            continue
        charset = part.get_content_charset() or "utf-8"
        data = part.get_payload(decode=True)
        assert isinstance(data, bytes)
        utf8 = charset.lower() in ("utf-8", "us-ascii")
        form[field] = data.decode("utf-8" if utf8 else "latin-1")
        charsets[field] = charset
    form["from"] = str(msg["From"])
    form["to"] = str(msg["To"])
    form["subject"] = str(msg["Subject"])
    form["charsets"] = json.dumps(charsets)
    form["envelope"] = json.dumps({"to": ["digest@example.org"], "from": envelope_from})
    return form


PARSE_CASES = [
    "01-plain-please-add-me.eml",
    "05-html-only.eml",
    "07-colleague-one.eml",
    "10-outlook-reply-unsubscribe.eml",
    "14-japanese-iso2022jp-subscribe.eml",
    "15-japanese-utf8-base64-colleague.eml",
    "16-japanese-shiftjis-unsubscribe.eml",
    "22-question.eml",
    "23-auto-submitted.eml",
    "29-confirm-valid-reply.eml",
]


def _outcome(raw: bytes, settings: Settings) -> tuple[str, tuple[str, ...]]:
    outcome = process_raw_message(raw, settings, source="inbound-parse")
    return outcome.kind, outcome.addresses


@pytest.mark.parametrize("name", PARSE_CASES)
def test_inbound_parse_matches_the_eml(name: str, settings: Settings, tmp_path: Path) -> None:
    expected = _outcome(load(name), settings)
    # raw mode: the whole message in "email"
    with Records.from_settings(settings) as records:
        records.db.execute("DELETE FROM messages")
    raw_mode = raw_from_inbound_parse(
        {"email": load(name).decode("utf-8", "surrogateescape"), "charsets": "{}"}
    )
    assert _outcome(raw_mode, settings) == expected
    # parsed mode: rebuilt from headers, text, html and charsets
    with Records.from_settings(settings) as records:
        records.db.execute("DELETE FROM messages")
    rebuilt = raw_from_inbound_parse(parsed_form(name))
    assert _outcome(rebuilt, settings) == expected


def test_parsed_mode_decodes_declared_charsets() -> None:
    form = parsed_form("14-japanese-iso2022jp-subscribe.eml")
    assert json.loads(form["charsets"])["text"] == "iso-2022-jp"
    msg = parse_message(raw_from_inbound_parse(form))
    body = msg.get_body(("plain",))
    assert body is not None and "購読を希望します" in body.get_content()
    assert str(msg["Subject"]) == "購読希望"


def test_parsed_mode_is_deterministic() -> None:
    form = parsed_form("06-alternative-signature-mailto.eml")
    assert raw_from_inbound_parse(form) == raw_from_inbound_parse(form)


@pytest.mark.parametrize("mode", ["raw", "parsed"])
def test_empty_envelope_sender_is_a_null_sender(mode: str, settings: Settings) -> None:
    name = "01-plain-please-add-me.eml"
    envelope = json.dumps({"to": ["digest@example.org"], "from": ""})
    if mode == "raw":
        form = {"email": load(name).decode(), "envelope": envelope}
    else:
        form = {**parsed_form(name), "envelope": envelope}
    raw = raw_from_inbound_parse(form)
    assert raw.startswith(b"Return-Path: <>")
    outcome = process_raw_message(raw, settings, source="inbound-parse")
    assert outcome.kind == "auto" and outcome.action == "recorded"
    assert outbox(settings) == []


def test_empty_form_is_refused() -> None:
    with pytest.raises(NewsletterError, match="holds no message"):
        raw_from_inbound_parse({"charsets": "{}"})
