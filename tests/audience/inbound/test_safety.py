"""Values from inbound mail are made safe before they reach anything outbound.

Python 3.11.7 predates the fix for CVE-2024-6923 (3.11.10): an RFC 2047 encoded CR/LF
in a parsed header survives decoding and can become new header lines on output.
"""

from __future__ import annotations

from email import policy
from email.headerregistry import Address
from email.message import EmailMessage

import pytest

from newsletter.audience.inbound import clean_address, clean_header_text, clean_text, parse_message

INJECTION = (
    b"From: =?utf-8?q?Eve=0D=0ABcc:_evil@example.net?= <eve@example.com>\n"
    b"To: digest@example.org\n"
    b"Subject: =?utf-8?q?hi=0D=0ABcc:_evil@example.net?=\n"
    b"\nhello\n"
)


def _outbound(subject: str, to: str) -> bytes:
    out = EmailMessage()
    out["From"] = "digest@example.org"
    out["To"] = to
    out["Subject"] = subject
    out.set_content("reply")
    return out.as_bytes(policy=policy.SMTP)


def _header_names(data: bytes) -> list[str]:
    head = data.split(b"\r\n\r\n", 1)[0]
    return [
        line.split(b":", 1)[0].decode().lower()
        for line in head.split(b"\r\n")
        if line and not line[:1].isspace()
    ]


def test_encoded_crlf_subject_is_decoded_to_a_line_break_by_the_parser() -> None:
    # The danger this module exists for: the parsed value really holds CR/LF.
    msg = parse_message(INJECTION)
    assert "\n" in str(msg["Subject"]) or "\r" in str(msg["Subject"])


def test_clean_subject_has_no_line_break_and_serialises_to_one_header() -> None:
    msg = parse_message(INJECTION)
    subject = clean_header_text(msg["Subject"])
    assert subject == "hi Bcc: evil@example.net"
    assert "\r" not in subject and "\n" not in subject
    data = _outbound(subject, "eve@example.com")
    names = _header_names(data)
    assert names.count("bcc") == 0
    assert names.count("subject") == 1
    assert b"\r\nBcc:" not in data


def test_display_name_with_encoded_crlf() -> None:
    msg = parse_message(INJECTION)
    with pytest.raises(ValueError):
        _ = msg["From"]  # the stdlib refuses to build it; classification must not crash
    raw = "=?utf-8?q?Eve=0D=0ABcc:_evil@example.net?= <eve@example.com>"
    name = clean_header_text(raw.rsplit("<", 1)[0])
    assert name == "Eve Bcc: evil@example.net"
    assert clean_address(raw) is None  # a mailbox whose name decodes to CR/LF is refused
    address = clean_address(raw.rsplit(" ", 1)[1])  # the bare <addr> part is fine
    assert address == "eve@example.com"
    data = _outbound("Re: hello", str(Address(display_name=name, addr_spec=address)))
    names = _header_names(data)
    assert names.count("bcc") == 0 and names.count("to") == 1
    to_header = parse_message(data)["To"]
    assert [a.addr_spec for a in to_header.addresses] == ["eve@example.com"]


@pytest.mark.parametrize(
    "value",
    [
        "a\r\nBcc: x@example.net",
        "a\nb",
        "a\u2028b",
        "a\u2029b",
        "a\x85b",
        "a\x00b\x1b[31m",
        "a\u202eb",
        "=?utf-8?q?a=0Ab?=",
        "=?utf-8?b?YQ1CY2M6IHhAZXhhbXBsZS5uZXQ=?=",
    ],
)
def test_clean_header_text_strips_controls(value: str) -> None:
    text = clean_header_text(value)
    assert not any(ord(ch) < 32 or ch in "\x7f\x85\u2028\u2029\u202e" for ch in text)
    assert "  " not in text


def test_clean_header_text_bounds_and_accepts_anything() -> None:
    assert len(clean_header_text("x" * 1000)) == 200
    assert clean_header_text("x" * 1000, limit=10) == "x" * 9 + "…"
    assert clean_header_text(None) == ""
    assert clean_header_text(42) == "42"
    assert clean_header_text("  many   spaces\t here ") == "many spaces here"
    assert clean_header_text("=?utf-8?b?5pel57Gz?=") == "日米"


def test_clean_header_text_survives_lone_surrogates() -> None:
    assert clean_header_text("bad \udcff byte") == "bad byte"


def test_clean_text_keeps_lines() -> None:
    assert clean_text("a\r\n\r\n\r\n\r\nb\x00c\u2028d") == "a\n\nb c d"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("Alice@EXAMPLE.COM", "Alice@example.com"),
        ("  bob@example.com ", "bob@example.com"),
        ("<bob@example.com>", "bob@example.com"),
        ("Bob Lee <bob@example.com>", "bob@example.com"),
        ("mailto:bob@example.com", "bob@example.com"),
        (Address("Bob", "bob", "example.com"), "bob@example.com"),
        ("bob@example.com\r\nBcc: evil@example.net", None),
        ("bob@example.com\n", None),
        ("=?utf-8?q?bob@example.com=0D=0ABcc:x@example.net?=", None),
        ("bob@example.com, evil@example.net", None),
        ("not an address", None),
        ("root@localhost", None),
        ('"quoted local"@example.com', None),
        ("", None),
        (None, None),
    ],
)
def test_clean_address(value: object, expected: str | None) -> None:
    assert clean_address(value) == expected
