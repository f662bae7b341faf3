"""An unsubscribe by mail is applied only when a trusted verdict vouches for its From;
otherwise the reader is mailed a one-click "confirm you want to leave" link."""

from __future__ import annotations

import re
from email import policy
from email.parser import BytesParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from newsletter.audience.inbound.authentication import strip_untrusted
from newsletter.audience.signups import process_raw_message
from newsletter.config import Settings, load_settings
from newsletter.tokens import read_token
from tests.conftest import GOLDEN_SETTINGS
from tests.support.signupkit import SECRET, seed, statuses


def request(extra: bytes = b"", sender: bytes = b"reader@example.net") -> bytes:
    return (
        extra + b"From: Reader <" + sender + b">\r\nTo: digest@example.org\r\n"
        b"Subject: unsubscribe\r\nMessage-ID: <u1@example.net>\r\n"
        b"Content-Type: text/plain; charset=utf-8\r\n\r\nPlease take me off the list.\r\n"
    )


@pytest.fixture
def trusting(home: Path) -> Settings:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    return load_settings(None, **GOLDEN_SETTINGS, trusted_authserv_ids="mx.example.org")


def leave_mails(settings: Settings) -> list[str]:
    folder = settings.outbox_dir / "leave"
    out = []
    for path in sorted(folder.glob("*.eml")) if folder.exists() else []:
        msg = BytesParser(policy=policy.default).parsebytes(path.read_bytes())
        text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
        assert msg["Auto-Submitted"] == "auto-replied"
        out.append(text)
    return out


def test_unauthenticated_unsubscribe_sends_a_leave_link(trusting: Settings) -> None:
    seed(trusting, ["reader@example.net"])
    outcome = process_raw_message(request(), trusting, source="test")
    assert outcome.action == "leave link sent", outcome.detail
    assert statuses(trusting)["reader@example.net"] == "active"  # before: unsubscribed
    [text] = leave_mails(trusting)
    link = re.search(r"https://digest\.example\.org/u/(\S+)", text)
    assert link is not None
    assert read_token(SECRET, unquote(link.group(1)), "unsubscribe") == "reader@example.net"


def test_a_pass_from_an_untrusted_authserv_id_does_not_count(trusting: Settings) -> None:
    seed(trusting, ["reader@example.net"])
    forged = b"Authentication-Results: mx.attacker.example; dkim=pass header.d=example.net\r\n"
    outcome = process_raw_message(request(forged), trusting, source="test")
    assert outcome.action == "leave link sent"
    assert statuses(trusting)["reader@example.net"] == "active"


@pytest.mark.parametrize(
    "verdict",
    [
        b"mx.example.org; dkim=pass header.d=example.net header.s=s1",
        b"mx.example.org; spf=pass smtp.mailfrom=bounces@mail.example.net",
        b"mx.example.org 1; dmarc=pass header.from=example.net",
    ],
)
def test_a_trusted_aligned_pass_applies_it(trusting: Settings, verdict: bytes) -> None:
    seed(trusting, ["reader@example.net"])
    raw = request(b"Authentication-Results: " + verdict + b"\r\n")
    outcome = process_raw_message(raw, trusting, source="test")
    assert outcome.action == "unsubscribed", outcome.detail
    assert statuses(trusting)["reader@example.net"] == "unsubscribed"
    assert leave_mails(trusting) == []


def test_a_trusted_pass_for_another_domain_is_not_aligned(trusting: Settings) -> None:
    seed(trusting, ["reader@example.net"])
    raw = request(b"Authentication-Results: mx.example.org; dkim=pass header.d=example.com\r\n")
    assert process_raw_message(raw, trusting, source="test").action == "leave link sent"


def test_without_a_public_url_a_human_decides(home: Path) -> None:
    settings = load_settings(None, **{**GOLDEN_SETTINGS, "public_url": None})
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)
    seed(settings, ["reader@example.net"])
    outcome = process_raw_message(request(), settings, source="test")
    assert outcome.action == "review" and outcome.review
    assert statuses(settings)["reader@example.net"] == "active"


def test_nobody_off_the_list_is_mailed(trusting: Settings) -> None:
    outcome = process_raw_message(request(sender=b"stranger@example.net"), trusting, source="t")
    assert outcome.action == "no change", outcome.detail
    assert leave_mails(trusting) == []


def test_strip_untrusted_keeps_only_our_own_verdicts() -> None:
    raw = (
        b"Authentication-Results: mx.example.org;\r\n dkim=pass header.d=example.net\r\n"
        b"Authentication-Results: evil.example; dkim=pass\r\n"
        b"X-Inbound-Parse-DKIM: {@example.net : pass}\r\n"
        b"x-inbound-parse-spf:\r\n pass\r\n"
        b"From: a@example.net\r\n\r\nAuthentication-Results: body text stays\r\n"
    )
    out = strip_untrusted(raw, authserv_ids=["mx.example.org"])
    assert out == (
        b"Authentication-Results: mx.example.org;\r\n dkim=pass header.d=example.net\r\n"
        b"From: a@example.net\r\n\r\nAuthentication-Results: body text stays\r\n"
    )
    assert strip_untrusted(b"From: a@example.net\n\nhi\n") == b"From: a@example.net\n\nhi\n"


def leave_subjects(settings: Settings) -> list[str]:
    folder = settings.outbox_dir / "leave"
    parse = BytesParser(policy=policy.default).parsebytes
    return [str(parse(p.read_bytes())["Subject"]) for p in sorted(folder.glob("*.eml"))]


def test_the_leave_link_is_in_the_readers_language(trusting: Settings) -> None:
    # the optional language column, as an admin's spreadsheet has it
    trusting.subscribers_file.write_text(
        "email,name,status,source,subscribed_at,confirmed_at,updated_at,language\n"
        "yamada@example.jp,山田 花子,active,seed,2024-01-01T00:00:00Z,2024-01-01T00:00:00Z,"
        "2024-01-01T00:00:00Z,ja\n",
        encoding="utf-8",
    )
    outcome = process_raw_message(request(sender=b"yamada@example.jp"), trusting, source="test")
    assert outcome.action == "leave link sent", outcome.detail
    [text] = leave_mails(trusting)
    assert "配信停止をご希望の場合は" in text and "Unsubscribe" not in text
    series = trusting.from_name
    assert leave_subjects(trusting) == [f"{series}の配信停止の確認"]


def test_a_request_written_in_japanese_gets_a_japanese_leave_link(trusting: Settings) -> None:
    seed(trusting, ["reader@example.net"])  # no language on the row
    asked = "配信停止をお願いします。".encode()
    japanese = request().replace(b"Please take me off the list.", asked)
    assert process_raw_message(japanese, trusting, source="test").action == "leave link sent"
    [text] = leave_mails(trusting)
    assert "ご本人からのものか確認できなかった" in text
