"""Confirm-by-reply with replies shaped as Gmail, Outlook and Apple Mail write them:
quoted or not, subject kept or edited. The confirmation's subject carries no token; its
Message-ID does, and each client's reply carries it back in In-Reply-To/References (a
reply that lost those headers confirms by the reference it quotes)."""

from __future__ import annotations

import re
from collections.abc import Callable
from email.message import EmailMessage
from pathlib import Path

import pytest

from newsletter.audience.confirm_mail import confirm_message_id
from newsletter.audience.signups import process_raw_message
from newsletter.config import Settings
from newsletter.tokens import CONFIRM_TTL, make_token, verify_message_id
from tests.support.inboundkit import SECRET
from tests.support.signupkit import confirmation_for, load, statuses, token_in

SENDER = "pat@example.net"


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


def _text(confirmation: EmailMessage) -> str:
    return confirmation.get_body(("plain",)).get_content()  # type: ignore[union-attr,no-any-return]


def _head(confirmation: EmailMessage, subject: str, *, threaded: bool, extra: str = "") -> str:
    msgid = str(confirmation["Message-ID"])
    # Gmail/Outlook/Apple all send References = the parent's References + its Message-ID
    parent_refs = str(confirmation["References"] or "")
    thread = (
        f"In-Reply-To: {msgid}\r\nReferences: {parent_refs}\r\n {msgid}\r\n" if threaded else ""
    )
    return (
        f"From: Pat Example <{SENDER}>\r\n"
        "To: US-Japan Alliance Digest <digest@example.org>\r\n"
        f"Subject: {subject}\r\n"
        "Date: Tue, 01 Dec 2026 10:00:00 +0000\r\n"
        "Message-ID: <reply-1@mail.example.net>\r\n"
        f"{thread}{extra}MIME-Version: 1.0\r\n"
    )


def gmail(confirmation: EmailMessage, *, quote: bool, subject: str) -> bytes:
    """Gmail: multipart/alternative, "On ... wrote:" and a gmail_quote blockquote."""
    original = _text(confirmation)
    quoted_text = "\r\n".join("> " + line for line in original.splitlines())
    quoted_html = "<br>".join(original.splitlines())
    text = "Yes please\r\n" + (
        f"\r\nOn Tue, Dec 1, 2026 at 9:45 AM US-Japan Alliance Digest <digest@example.org>"
        f" wrote:\r\n\r\n{quoted_text}\r\n"
        if quote
        else ""
    )
    html = '<div dir="ltr">Yes please</div>' + (
        '<br><div class="gmail_quote"><div dir="ltr" class="gmail_attr">On Tue, Dec 1, 2026 '
        "at 9:45 AM US-Japan Alliance Digest &lt;digest@example.org&gt; wrote:<br></div>"
        f'<blockquote class="gmail_quote">{quoted_html}</blockquote></div>'
        if quote
        else ""
    )
    return (
        _head(confirmation, subject, threaded=True)
        + 'Content-Type: multipart/alternative; boundary="000000000000abc"\r\n\r\n'
        '--000000000000abc\r\nContent-Type: text/plain; charset="UTF-8"\r\n\r\n'
        f"{text}\r\n"
        '--000000000000abc\r\nContent-Type: text/html; charset="UTF-8"\r\n\r\n'
        f"{html}\r\n--000000000000abc--\r\n"
    ).encode()


def outlook(confirmation: EmailMessage, *, quote: bool, subject: str) -> bytes:
    """Outlook: HTML, top-posted, the original below a rule and a From/Sent/To block
    (not "> "-quoted), Thread-Index beside In-Reply-To/References."""
    original = "<br>".join(_text(confirmation).splitlines())
    body = '<div class="WordSection1"><p class="MsoNormal">Confirmed, thanks.</p></div>' + (
        '<div id="divRplyFwdMsg"><hr style="display:inline-block;width:98%">'
        "<b>From:</b> US-Japan Alliance Digest &lt;digest@example.org&gt;<br>"
        "<b>Sent:</b> Tuesday, December 1, 2026 9:45 AM<br>"
        f"<b>To:</b> {SENDER}<br><b>Subject:</b> {confirmation['Subject']}</div>"
        f"<div>{original}</div>"
        if quote
        else ""
    )
    return (
        _head(
            confirmation,
            subject,
            threaded=True,
            extra="Thread-Topic: Confirm\r\nThread-Index: AQHXabcdEFGHijklMNOPqrst==\r\n",
        )
        + 'Content-Type: text/html; charset="us-ascii"\r\n\r\n'
        f"<html><body>{body}</body></html>\r\n"
    ).encode()


def apple(confirmation: EmailMessage, *, quote: bool, subject: str) -> bytes:
    """Apple Mail: text/plain format=flowed, "> On ..., at ..., ... wrote:"."""
    quoted = "\r\n".join("> " + line for line in _text(confirmation).splitlines())
    text = "Count me in.\r\n\r\nSent from my iPhone\r\n" + (
        f"\r\n> On 1 Dec 2026, at 09:45, US-Japan Alliance Digest <digest@example.org> "
        f"wrote:\r\n>\r\n{quoted}\r\n"
        if quote
        else ""
    )
    return (
        _head(confirmation, subject, threaded=True)
        + "Content-Type: text/plain; charset=us-ascii; format=flowed\r\n"
        "Content-Transfer-Encoding: 7bit\r\n\r\n"
        f"{text}"
    ).encode()


Shape = Callable[..., bytes]
CLIENTS: dict[str, tuple[Shape, str]] = {
    "gmail": (gmail, "Re: "),
    "outlook": (outlook, "RE: "),
    "apple": (apple, "Re: "),
}


def pat_asks_to_subscribe(settings: Settings) -> EmailMessage:
    process_raw_message(load("04-subject-only-subscribe.eml"), settings, source="test")
    return confirmation_for(settings, SENDER)


@pytest.mark.parametrize("quote", [True, False], ids=["quoted", "unquoted"])
@pytest.mark.parametrize("edited", [False, True], ids=["subject-kept", "subject-edited"])
@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_each_clients_reply_confirms(
    client: str, edited: bool, quote: bool, settings: Settings
) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    token = token_in(confirmation)
    assert token not in str(confirmation["Subject"])
    shape, prefix = CLIENTS[client]
    subject = "subscribe me" if edited else prefix + str(confirmation["Subject"])
    reply = shape(confirmation, quote=quote, subject=subject)
    body = reply.split(b"\r\n\r\n", 1)[1]
    assert (token.encode() in body) is quote  # unquoted: only the headers carry it
    outcome = process_raw_message(reply, settings, source="test")
    assert outcome.action == "confirmed", outcome.detail
    assert statuses(settings)[SENDER] == "active"


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_a_quoted_reply_that_lost_its_thread_headers_confirms_by_the_reference(
    client: str, settings: Settings
) -> None:
    """A gateway or a copy-paste drops In-Reply-To/References: the quoted reference
    in the body still confirms."""
    confirmation = pat_asks_to_subscribe(settings)
    shape, _prefix = CLIENTS[client]
    reply = shape(confirmation, quote=True, subject="Fwd: subscription")
    reply = b"".join(
        line
        for line in reply.splitlines(keepends=True)
        if not line.startswith((b"In-Reply-To:", b"References:", b" <c."))
    )
    assert b"In-Reply-To" not in reply.split(b"\r\n\r\n", 1)[0]
    outcome = process_raw_message(reply, settings, source="test")
    assert outcome.action == "confirmed", outcome.detail


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_someone_elses_reply_carrying_the_headers_confirms_nobody(
    client: str, settings: Settings
) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    shape, _prefix = CLIENTS[client]
    reply = shape(confirmation, quote=False, subject="Re: hi").replace(
        SENDER.encode(), b"mallory@example.com", 1
    )
    outcome = process_raw_message(reply, settings, source="test")
    assert outcome.action == "review"
    assert statuses(settings)[SENDER] == "pending"


def test_the_confirmation_message_id_verifies_only_for_its_reader() -> None:
    """A bounce quoting the confirmation's Message-ID names its reader (and nobody else)."""
    token = make_token(SECRET, "confirm", "ann@example.com", ttl=CONFIRM_TTL, now=0)
    msgid = confirm_message_id(token, "example.org")
    assert verify_message_id(SECRET, msgid, "Ann@example.com")  # even once expired
    assert not verify_message_id(SECRET, msgid, "bob@example.com")
    assert not verify_message_id(SECRET, msgid.replace(token[-4:], "AAAA"), "ann@example.com")
    assert not verify_message_id("another-secret-" * 3, msgid, "ann@example.com")


def _only_the_reference(reply: bytes) -> bytes:
    """``reply`` without thread headers and without the quoted link: what is left to
    confirm is the short reference the body quotes."""
    kept = b"".join(
        line
        for line in reply.splitlines(keepends=True)
        if not line.startswith((b"In-Reply-To:", b"References:", b" <c."))
    )
    return re.sub(rb"https?://[^\s<>\"]*/confirm/[A-Za-z0-9_.%-]+", b"", kept)


@pytest.mark.parametrize("client", sorted(CLIENTS))
def test_the_short_reference_alone_confirms_its_reader(client: str, settings: Settings) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    token = token_in(confirmation)
    text = _text(confirmation)
    assert token not in text.replace(f"/confirm/{token}", "")  # only in the link
    assert re.search(r"NL-[0-9A-Z]{5,8}-[A-Z2-7]{12}", text)
    shape, _prefix = CLIENTS[client]
    reply = _only_the_reference(shape(confirmation, quote=True, subject="yes"))
    assert token.encode() not in reply and b"NL-" in reply
    outcome = process_raw_message(reply, settings, source="test")
    assert outcome.action == "confirmed", outcome.detail


def test_someone_elses_reference_confirms_nobody(settings: Settings) -> None:
    confirmation = pat_asks_to_subscribe(settings)
    reply = _only_the_reference(apple(confirmation, quote=True, subject="yes"))
    reply = reply.replace(b"From: Pat Example <pat@example.net>", b"From: <mallory@example.com>")
    outcome = process_raw_message(reply, settings, source="test")
    assert outcome.action == "review"
    assert "not the sender's" in outcome.detail
    assert statuses(settings)[SENDER] == "pending"
