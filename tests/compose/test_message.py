"""The message builder: structure, headers, encodings, refusal of header injection."""

from __future__ import annotations

from email import policy
from email.parser import BytesParser
from pathlib import Path

import pytest

from newsletter.compose.issuefile import load_issue
from newsletter.compose.message import MessageBuilder, Recipient, check_header
from newsletter.compose.render import render_issue
from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError, HeaderError
from newsletter.tokens import read_token
from tests.conftest import GOLDEN_SETTINGS


def builder_for(home: Path, settings: Settings, **kwargs: str) -> MessageBuilder:
    return MessageBuilder(
        render_issue(load_issue(home / "issues" / "vol-2.19.yaml"), settings), settings, **kwargs
    )


def test_structure_and_headers(home: Path, settings: Settings) -> None:
    b = builder_for(home, settings)
    raw = b.to_bytes(Recipient("taro@example.jp", "山田 太郎"))
    assert raw.isascii() and b"\r\n" in raw and b"\n" not in raw.replace(b"\r\n", b"")
    assert max(len(line) for line in raw.split(b"\r\n")) <= 998
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert msg.defects == [] and all(not p.defects for p in msg.walk())
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative",
        "text/plain",
        "multipart/related",
        "text/html",
        "image/png",
    ]
    assert str(msg["To"]) == "山田 太郎 <taro@example.jp>"
    assert b"=?utf-8?b?5bGx55SwIOWkqumDjg==?=" in raw
    assert str(msg["From"]) == "US-Japan Alliance Digest <digest@example.org>"
    assert str(msg["Reply-To"]) == "digest@example.org"
    assert msg["Subject"] == "US-Japan Alliance Digest, Vol 2.19 (October 13, 2023)"
    assert msg["Message-ID"].endswith("@example.org>")
    assert msg["Date"]
    assert msg["List-Id"] == '"US-Japan Alliance Digest" <us-japan-alliance-digest.example.org>'
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    https, mailto = [u.strip(" <>") for u in msg["List-Unsubscribe"].split(",")]
    assert mailto == "mailto:digest@example.org?subject=unsubscribe"
    token = https.rsplit("/", 1)[1]
    assert https.startswith("https://digest.example.org/u/")
    assert read_token(GOLDEN_SETTINGS["secret_key"], token, "unsubscribe") == "taro@example.jp"
    text = msg.get_body(("plain",)).get_content()
    html = msg.get_body(("html",)).get_content()
    assert f"Unsubscribe: {https}" in text and f'href="{https}"' in html
    image = next(p for p in msg.walk() if p.get_content_type() == "image/png")
    assert image["Content-ID"] == "<vol-2.19-hero.png@example.org>"
    assert 'src="cid:vol-2.19-hero.png@example.org"' in html
    assert image.get_content() == (home / "issues/assets/vol-2.19-hero.png").read_bytes()


def test_every_recipient_gets_its_own_ids_and_token(home: Path, settings: Settings) -> None:
    b = builder_for(home, settings)
    one, two = (b.build(Recipient(a)) for a in ("a@example.org", "b@example.org"))
    assert one["Message-ID"] != two["Message-ID"]
    assert one["List-Unsubscribe"] != two["List-Unsubscribe"]
    assert Recipient("A@Example.org").subscriber_id == Recipient("a@example.org").subscriber_id


def test_without_public_url_unsubscribe_is_mailto_only(home: Path) -> None:
    settings = load_settings(None, contact="digest@example.org")
    msg = builder_for(home, settings).build(Recipient("a@example.org"))
    assert msg["List-Unsubscribe"] == "<mailto:digest@example.org?subject=unsubscribe>"
    assert msg["List-Unsubscribe-Post"] is None
    assert (
        'href="mailto:digest@example.org?subject=unsubscribe"'
        in msg.get_body(("html",)).get_content()
    )


def test_public_url_without_secret_is_a_config_error(home: Path) -> None:
    settings = load_settings(None, public_url="https://digest.example.org")
    with pytest.raises(ConfigError, match="NEWSLETTER_SECRET_KEY is not set"):
        builder_for(home, settings)


def test_hosted_images_give_a_flat_alternative(home: Path) -> None:
    settings = load_settings(None, assets_url="https://cdn.example.org")
    msg = builder_for(home, settings).build(Recipient("a@example.org"))
    assert [p.get_content_type() for p in msg.walk()] == [
        "multipart/alternative",
        "text/plain",
        "text/html",
    ]


def test_names_that_need_quoting_and_idn_domains(home: Path, settings: Settings) -> None:
    b = builder_for(home, settings)
    msg = b.build(Recipient("pat@example.org", 'O\'Brien, "Pat"'))
    assert msg["To"].addresses[0].display_name == 'O\'Brien, "Pat"'
    msg = b.build(Recipient("user@bücher.example", "Jürgen"))
    assert msg["To"].addresses[0].domain == "xn--bcher-kva.example"
    assert msg["To"].addresses[0].display_name == "Jürgen"
    with pytest.raises(HeaderError, match="SMTPUTF8"):
        b.to_bytes(Recipient("用户@example.org"))


@pytest.mark.parametrize(
    "bad", ["Eve\r\nBcc: x@example.net", "Eve\nBcc: x@example.net", "Eve\x00", "a\u2028b"]
)
def test_header_injection_is_refused(home: Path, settings: Settings, bad: str) -> None:
    b = builder_for(home, settings)
    with pytest.raises(HeaderError, match="line break or control character"):
        b.to_bytes(Recipient("eve@example.org", bad))
    with pytest.raises(HeaderError):
        check_header("Subject", bad)


def test_subject_prefix_for_test_sends(home: Path, settings: Settings) -> None:
    msg = builder_for(home, settings, subject_prefix="[TEST] ").build(Recipient("a@example.org"))
    assert msg["Subject"].startswith("[TEST] US-Japan Alliance Digest")


def test_text_lines_fit_78_after_qp_decoding(home: Path, settings: Settings) -> None:
    msg = builder_for(home, settings).build(Recipient("a@example.org"))
    text = msg.get_body(("plain",)).get_content()
    long_lines = [line for line in text.splitlines() if len(line) > 78]
    assert all("://" in line for line in long_lines), long_lines


def test_qp_template_matches_whole_encoding() -> None:
    from newsletter.compose.message import QPTemplate, _qp

    text = "héllo\n" + "x" * 200 + "\nline with %%P%% inside " + "y" * 90 + "\ntrailing  \n\nend"
    for value in ("https://e.org/u/abc", "mailto:a@example.org?subject=unsubscribe", "ü" * 50):
        assert QPTemplate(text, "%%P%%").render(value) == _qp(text.replace("%%P%%", value))


def test_transactional_mail_has_no_list_headers(home: Path, settings: Settings) -> None:
    b = builder_for(home, settings)
    b = MessageBuilder(
        b.rendered, settings, bulk=False, extra_headers={"Auto-Submitted": "auto-replied"}
    )
    msg = b.build(Recipient("a@example.org"))
    assert msg["List-Unsubscribe"] is None and msg["List-Id"] is None
    assert msg["Auto-Submitted"] == "auto-replied"
    with pytest.raises(HeaderError):
        MessageBuilder(b.rendered, settings, extra_headers={"X-Evil": "a\r\nBcc: x@example.net"})


@pytest.mark.parametrize(
    ("name", "addr"),
    [
        ("", "a@example.org"),
        ("Pat Lee", "pat.lee@example.org"),
        ("J. Smith", "j@example.org"),
        ('O\'Brien, "Pat"', "pat@example.org"),
        ("back\\slash", "b@example.org"),
        ("  spaced  out ", "s@example.org"),
        ("山田 太郎", "taro@example.jp"),
        ("Reader", "first+tag@sub.example.co.uk"),
    ],
)
def test_mailbox_fast_path_matches_headerregistry(name: str, addr: str) -> None:
    from email.headerregistry import Address

    from newsletter.compose.message import format_mailbox

    expected = str(Address(display_name=name.strip(), addr_spec=addr))
    assert format_mailbox(name, addr, header="To") == expected


def test_message_ids_are_signed_for_the_recipient(home: Path, settings: Settings) -> None:
    from newsletter.tokens import verify_message_id

    msg = builder_for(home, settings).build(Recipient("alice@example.org"))
    secret = GOLDEN_SETTINGS["secret_key"]
    assert verify_message_id(secret, msg["Message-ID"], "alice@example.org")
    assert not verify_message_id(secret, msg["Message-ID"], "bob@example.org")
