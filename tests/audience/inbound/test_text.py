"""The readable text of inbound mail: bodies, HTML, and only the new (unquoted) text."""

from __future__ import annotations

import pytest

from newsletter.audience.inbound import body_text, html_to_text, parse_message, strip_quoted
from tests.support.inboundkit import load


def test_strip_quoted_gmail_bottom_post_keeps_new_text() -> None:
    text = "On Mon, 3 Jun 2024 at 09:12, X <x@example.org> wrote:\n> old\n> older\n\nNew reply\n"
    assert strip_quoted(text) == "New reply"


@pytest.mark.parametrize(
    "marker",
    [
        "On Mon, 3 Jun 2024 at 09:12, X <x@example.org> wrote:",
        "-----Original Message-----",
        "----- Original Message -----",
        "---------- Forwarded message ---------",
        "-------- Forwarded Message --------",
        "Begin forwarded message:",
        "________________________________",
        "-- ",
        "--",
        "X さんは書きました:",
        "2024年6月3日(月) 9:12 Alliance Digest <digest@example.org>:",
        "-----元のメッセージ-----",
    ],
)
def test_strip_quoted_cuts_at_markers(marker: str) -> None:
    text = f"Top text\n\n{marker}\nold text\nmore old text\n"
    assert strip_quoted(text) == "Top text"


def test_strip_quoted_two_line_attribution() -> None:
    text = "Yes\n\nOn Mon, 3 Jun 2024 at 09:12, Alliance Digest <digest@example.org>\nwrote:\nold\n"
    assert strip_quoted(text) == "Yes"


def test_strip_quoted_outlook_header_block() -> None:
    text = "Remove me\n\nFrom: Digest <d@example.org>\nSent: Monday\nTo: me\nSubject: x\n\nold\n"
    assert strip_quoted(text) == "Remove me"
    jp = "解除\n\n差出人: Digest <d@example.org>\n送信日時: 2024年6月3日\n宛先: me\n\n古い\n"
    assert strip_quoted(jp) == "解除"


def test_strip_quoted_keeps_a_from_line_without_a_header_block() -> None:
    text = "From: the embassy team\nplease add us\n"
    assert strip_quoted(text) == "From: the embassy team\nplease add us"


def test_strip_quoted_drops_interleaved_quotes() -> None:
    assert strip_quoted("> q1\nanswer 1\n> q2\nanswer 2") == "answer 1\nanswer 2"


def test_html_to_text_blocks_entities_and_skips() -> None:
    html = (
        "<html><head><title>T</title><style>p{}</style></head><body>"
        "<p>Hello&nbsp;&amp; welcome</p><div>line<br>break</div>"
        "<script>var x = 'add me';</script><ul><li>one</li><li>two</li></ul></body></html>"
    )
    assert html_to_text(html) == "Hello & welcome\nline\nbreak\none\ntwo"


def test_html_to_text_marks_blockquotes() -> None:
    html = "<div>New</div><blockquote><p>Old</p><blockquote>Older</blockquote></blockquote>"
    text = html_to_text(html)
    assert text.splitlines()[0] == "New"
    assert "> Old" in text and "> > Older" in text
    assert strip_quoted(text) == "New"


def test_body_text_prefers_plain_in_alternative() -> None:
    msg = parse_message(load("06-alternative-signature-mailto.eml"))
    assert body_text(msg).startswith("Hello,\n\nCould you sign me up?")


def test_body_text_decodes_japanese_charsets() -> None:
    assert "購読を希望します" in body_text(
        parse_message(load("14-japanese-iso2022jp-subscribe.eml"))
    )
    assert "配信停止" in body_text(parse_message(load("16-japanese-shiftjis-unsubscribe.eml")))
    assert "①" in body_text(parse_message(load("16-japanese-shiftjis-unsubscribe.eml")))
    assert "hanako" in body_text(parse_message(load("15-japanese-utf8-base64-colleague.eml")))


def test_body_text_skips_attachments() -> None:
    raw = (
        b"From: a@example.com\nMIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n"
        b"--b\nContent-Type: text/plain\n\nhello\n--b\nContent-Type: text/plain\n"
        b"Content-Disposition: attachment; filename=x.txt\n\nplease add me\n--b--\n"
    )
    assert body_text(parse_message(raw)).strip() == "hello"
