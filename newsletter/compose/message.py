"""Rendered issue + one recipient -> a complete email, ready for any transport.

The MIME skeleton (boundaries, the image part, constant headers) is prepared once per
issue; per recipient only To, Message-ID, Date, the unsubscribe link and the two
quoted-printable bodies are produced. ``to_bytes`` is the one implementation;
``build`` parses its output back into an ``EmailMessage`` for callers that want one.

Structure::

    multipart/alternative
    ├── text/plain; charset=utf-8 (quoted-printable)
    └── multipart/related            (only when an image is embedded)
        ├── text/html; charset=utf-8 (quoted-printable)
        └── image/png; Content-ID: <...>  (base64)
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import secrets
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from email import policy
from email.headerregistry import Address
from email.message import EmailMessage
from email.parser import BytesParser
from email.utils import format_datetime, make_msgid
from typing import TYPE_CHECKING
from urllib.parse import quote

from newsletter.compose.render import PLACEHOLDER_UNSUBSCRIBE, RenderedIssue
from newsletter.errors import HeaderError
from newsletter.tokens import (
    UNSUBSCRIBE_TTL,
    make_bounce_address,
    make_message_id,
    make_token,
    make_tokens,
)

if TYPE_CHECKING:
    import datetime as dt

    from newsletter.config import Settings

#: 7-bit safe, CRLF line endings: what goes on the wire.
WIRE_POLICY = policy.SMTP.clone(cte_type="7bit")
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u0085\u2028\u2029]")


def check_header(name: str, value: str) -> str:
    """Refuse header values that could inject headers (CR, LF or control characters)."""
    if _CONTROL.search(value):
        raise HeaderError(
            f"header {name}: value {value[:60]!r} contains a line break or control character",
            hint="check the issue's subject, the NEWSLETTER_* settings and subscriber names",
        )
    return value


@dataclass(frozen=True, slots=True)
class Recipient:
    email: str
    name: str = ""

    @property
    def subscriber_id(self) -> str:
        """A stable, non-reversible id for tying provider events back to a subscriber."""
        return hashlib.sha256(self.email.strip().lower().encode()).hexdigest()[:16]


def ascii_address(addr: str) -> str:
    """IDN domains become punycode; a non-ASCII local part would need SMTPUTF8."""
    if addr.isascii():
        return addr
    # imported here: its grammar's regexes take about 20 ms to compile
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(addr, check_deliverability=False)
    except EmailNotValidError as exc:
        raise HeaderError(f"address {addr!r} is not valid: {exc}") from None
    if result.ascii_email is None:
        raise HeaderError(
            f"address {addr!r} has a non-ASCII local part, which needs SMTPUTF8 (not supported)"
        )
    return result.ascii_email


_ATEXT_PHRASE = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?: +[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
_SIMPLE_ADDRESS = re.compile(
    r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+"
)


def format_mailbox(name: str, addr: str, *, header: str) -> str:
    """A header-safe ``"Name" <addr>``; display names in any script are RFC 2047 encoded."""
    check_header(header, name)
    check_header(header, addr)
    name, addr = name.strip(), addr.strip()
    # Fast path for the common case (ASCII name, plain address); the result is what
    # email.headerregistry.Address gives, at a tenth of the cost.
    if name.isascii() and _SIMPLE_ADDRESS.fullmatch(addr):
        if not name:
            return addr
        if _ATEXT_PHRASE.fullmatch(name):
            return f"{name} <{addr}>"
        quoted = name.replace("\\", "\\\\").replace('"', '\\"')
        return f'"{quoted}" <{addr}>'
    return str(Address(display_name=name, addr_spec=ascii_address(addr)))


def _fold(name: str, value: str) -> bytes:
    """One header line, folded and RFC 2047-encoded where needed, as wire bytes."""
    if value.isascii() and len(name) + len(value) < 76:
        return f"{name}: {value}\r\n".encode("ascii")
    header = WIRE_POLICY.header_factory(name, value)
    folded: str = header.fold(policy=WIRE_POLICY)
    return folded.encode("ascii")


def _raw_header(name: str, value: str) -> bytes:
    """A structured ASCII header (URLs, ids) written as-is: never RFC 2047-encoded.

    A list like ``<url>, <mailto:...>`` is folded after each comma; a single long URL
    stays whole (RFC 5322 allows lines up to 998 characters).
    """
    check_header(name, value)
    if not value.isascii():
        raise HeaderError(f"header {name}: value must be ASCII: {value[:60]!r}")
    return f"{name}: {value}".replace(">, <", ">,\r\n <").encode("ascii") + b"\r\n"


def _qp(text: str) -> bytes:
    """Quoted-printable, CRLF line endings, lines <= 76 (binascii's C encoder)."""
    data = text.replace("\r\n", "\n").replace("\r", "\n").encode("utf-8")
    encoded: bytes = binascii.b2a_qp(data, quotetabs=False, istext=True, header=False)
    return encoded.replace(b"\n", b"\r\n")


class QPTemplate:
    """Quoted-printable body whose static lines are encoded once.

    QP encodes line by line (soft breaks never cross a hard line break), so encoding the
    lines without the placeholder once and only the placeholder's lines per recipient
    gives exactly the bytes of encoding the whole text each time, at a fraction of the cost.
    """

    def __init__(self, text: str, placeholder: str) -> None:
        self.placeholder = placeholder
        lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
        self._parts: list[bytes | str] = []
        static: list[str] = []
        for i, line in enumerate(lines):
            line_nl = line + ("\n" if i < len(lines) - 1 else "")
            if placeholder in line:
                if static:
                    self._parts.append(_qp("".join(static)))
                    static = []
                self._parts.append(line_nl)
            else:
                static.append(line_nl)
        if static:
            self._parts.append(_qp("".join(static)))

    def render(self, value: str) -> bytes:
        return b"".join(self.render_parts(value))

    def render_parts(self, value: str) -> list[bytes]:
        """The encoded body as its parts: the static ones are the same objects each time."""
        return [
            part if isinstance(part, bytes) else _qp(part.replace(self.placeholder, value))
            for part in self._parts
        ]


def _list_id(settings: Settings, rendered: RenderedIssue) -> str:
    if settings.list_id:
        return settings.list_id
    slug = re.sub(r"[^a-z0-9]+", "-", rendered.series.lower()).strip("-") or "newsletter"
    name = rendered.series.replace('"', "")
    return f'"{name}" <{slug}.{ascii_address("x@" + settings.sender_domain)[2:]}>'


class MessageBuilder:
    """Builds each recipient's message from one rendered issue."""

    def __init__(
        self,
        rendered: RenderedIssue,
        settings: Settings,
        *,
        subject_prefix: str = "",
        bulk: bool = True,
        extra_headers: Mapping[str, str] | None = None,
    ) -> None:
        """``bulk=False`` drops List-Id/List-Unsubscribe (transactional mail such as a
        signup confirmation); ``extra_headers`` (e.g. ``Auto-Submitted``) go on every
        message and are checked for injection here, once."""
        self.rendered = rendered
        self.bulk = bulk
        self.extra_headers = {
            check_header("header name", k): check_header(k, v)
            for k, v in (extra_headers or {}).items()
        }
        self.settings = settings
        self.subject = check_header("Subject", subject_prefix + rendered.subject)
        self.from_address = settings.from_address
        self.from_name = settings.from_name or rendered.series
        self.reply_to = settings.reply_to_address
        self.contact = settings.contact_address
        self.domain = settings.sender_domain
        self._secret = settings.require_secret() if settings.public_url else None
        # Signed Message-IDs (tokens.make_message_id) whenever a secret is configured, so
        # a bounce report quoting one can be verified against the address it names.
        self._msgid_secret = self._secret or (
            settings.secret_key.get_secret_value() if settings.secret_key else None
        )
        self._mailto = f"mailto:{self.contact}?subject=unsubscribe"
        self.list_id = check_header("List-Id", _list_id(settings, rendered))

        head = b"".join(
            [
                _fold("From", format_mailbox(self.from_name, self.from_address, header="From")),
                _fold("Reply-To", format_mailbox("", self.reply_to, header="Reply-To")),
                _fold("Subject", self.subject),
                b"MIME-Version: 1.0\r\n",
            ]
        )
        self._head = head
        token = secrets.token_hex(8)
        self._alt = f"=_alt_{token}".encode()
        self._rel = f"=_rel_{token}".encode()
        self._text_qp = QPTemplate(rendered.text, PLACEHOLDER_UNSUBSCRIBE)
        self._html_qp = QPTemplate(rendered.html, PLACEHOLDER_UNSUBSCRIBE)
        self._image_parts = b"".join(
            b"--"
            + self._rel
            + b"\r\n"
            + f"Content-Type: {img.maintype}/{img.subtype}\r\n".encode()
            + f'Content-Disposition: inline; filename="{img.filename}"\r\n'.encode()
            + f"Content-ID: <{img.cid}>\r\n".encode()
            + b"Content-Transfer-Encoding: base64\r\n\r\n"
            + base64.encodebytes(img.data).replace(b"\n", b"\r\n")
            for img in rendered.images
        )

    # Personal parts -----------------------------------------------------------------
    def unsubscribe_url(self, r: Recipient) -> str:
        if self._secret is None or not self.settings.public_url:
            return self._mailto
        token = make_token(self._secret, "unsubscribe", r.email, ttl=UNSUBSCRIBE_TTL)
        return f"{self.settings.public_url}/u/{quote(token)}"

    def unsubscribe_urls(self, emails: Sequence[str], *, now: float | None = None) -> list[str]:
        """:meth:`unsubscribe_url` for many readers at once (a SendGrid request's 1,000)."""
        if self._secret is None or not self.settings.public_url:
            return [self._mailto] * len(emails)
        base = f"{self.settings.public_url}/u/"
        # a token is base64url "." base64url: nothing in it that quote() would change
        tokens = make_tokens(self._secret, "unsubscribe", emails, ttl=UNSUBSCRIBE_TTL, now=now)
        return [base + token for token in tokens]

    def message_id(self, r: Recipient) -> str:
        """A fresh Message-ID at the sender's domain, signed for ``r`` when a secret is set."""
        if self._msgid_secret:
            return make_message_id(self._msgid_secret, r.email, self.domain)
        return make_msgid(domain=self.domain)

    def envelope_sender(self, r: Recipient) -> str | None:
        """The VERP Return-Path for ``r`` (NEWSLETTER_BOUNCE_ADDRESS), or None when off."""
        bounce = self.settings.bounce_address
        if not bounce or not self._msgid_secret:
            return None
        return make_bounce_address(
            self._msgid_secret,
            bounce,
            r.email,
            self.rendered.slug,
            separator=self.settings.bounce_separator,
        )

    def substitutions(self, r: Recipient, *, url: str | None = None) -> dict[str, str]:
        return {PLACEHOLDER_UNSUBSCRIBE: url if url is not None else self.unsubscribe_url(r)}

    def list_headers(self, r: Recipient, *, url: str | None = None) -> dict[str, str]:
        """Every per-recipient extra header: List-Id and List-Unsubscribe (RFC 2369), plus
        RFC 8058 one-click over https (bulk mail only), and ``extra_headers``."""
        headers: dict[str, str] = {}
        if self.bulk:
            headers["List-Id"] = self.list_id
            url = url if url is not None else self.unsubscribe_url(r)
            if url.startswith("http"):
                headers["List-Unsubscribe"] = f"<{url}>, <{self._mailto}>"
                headers["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
            else:
                headers["List-Unsubscribe"] = f"<{self._mailto}>"
        headers.update(self.extra_headers)
        return headers

    # The message ----------------------------------------------------------------------
    def to_bytes(self, r: Recipient, *, now: dt.datetime | None = None) -> bytes:
        """The complete message for one recipient, CRLF line endings, 7-bit clean."""
        return b"".join(self.to_chunks(r, now=now))

    def to_chunks(self, r: Recipient, *, now: dt.datetime | None = None) -> list[bytes]:
        """:meth:`to_bytes` as its pieces, each starting a line: the issue's static parts
        are the same objects for every recipient, so a transport can prepare them once
        (SMTP dot-stuffing) and write the pieces without joining them."""
        url = self.unsubscribe_url(r)
        to = format_mailbox(r.name, r.email, header="To")
        when = now if now is not None else None
        date = (
            format_datetime(when)
            if when
            else time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime())
        )
        head = (
            self._head
            + _fold("To", to)
            + _raw_header("Date", date)
            + _raw_header("Message-ID", self.message_id(r))
            + b"".join(
                _raw_header(name, value) if value.isascii() else _fold(name, value)
                for name, value in self.list_headers(r, url=url).items()
            )
        )
        alt = self._alt
        chunks = [
            head + b'Content-Type: multipart/alternative; boundary="' + alt + b'"\r\n\r\n'
            b"--" + alt + b"\r\n"
            b'Content-Type: text/plain; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n",
            *self._text_qp.render_parts(url),
            b"\r\n--" + alt + b"\r\n",
        ]
        html_head = (
            b'Content-Type: text/html; charset="utf-8"\r\n'
            b"Content-Transfer-Encoding: quoted-printable\r\n\r\n"
        )
        html = self._html_qp.render_parts(url.replace("&", "&amp;"))
        if self._image_parts:
            rel = self._rel
            chunks += [
                b'Content-Type: multipart/related; boundary="' + rel + b'"\r\n\r\n'
                b"--" + rel + b"\r\n" + html_head,
                *html,
                b"\r\n",
                self._image_parts,
                b"--" + rel + b"--\r\n--" + alt + b"--\r\n",
            ]
        else:
            chunks += [html_head, *html, b"\r\n--" + alt + b"--\r\n"]
        return chunks

    def build(self, r: Recipient) -> EmailMessage:
        """The same message as an ``EmailMessage`` (parsed from :meth:`to_bytes`)."""
        msg = BytesParser(policy=policy.default).parsebytes(self.to_bytes(r))
        assert isinstance(msg, EmailMessage)
        return msg
