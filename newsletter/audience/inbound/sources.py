"""Where inbound mail comes from: files, a Maildir, an mbox, an IMAP mailbox, a webhook.

Every source yields :class:`InboundItem` (an id that names the message within the
source, and its raw bytes) and is told :meth:`InboundSource.mark_done` once the message
has a recorded outcome. No source ever deletes mail:

=============  ==============================================================================
folder         ``*.eml`` files, read in name order, left in place (records make re-runs safe)
Maildir        ``new/`` and ``cur/``; a handled message is moved to ``cur/`` with the ``S`` flag
mbox           read-only; re-runs are made safe by the records alone
IMAP           UID-based; a handled message is MOVEd (or COPY, flag ``\\Deleted``, UID EXPUNGE,
               only after the copy succeeded) to ``NEWSLETTER_IMAP_DONE_FOLDER``, created if
               missing; ``(UIDVALIDITY, UID)`` is recorded so a restart fetches nothing twice
=============  ==============================================================================

:func:`raw_from_inbound_parse` turns a SendGrid Inbound Parse POST (raw or parsed mode)
into the raw bytes of a message, so the webhook goes through the same pipeline.
"""

from __future__ import annotations

import base64
import hashlib
import imaplib
import json
import mailbox
import os
import re
import ssl
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from newsletter.audience.inbound.records import Records, message_identity
from newsletter.audience.inbound.safety import clean_address
from newsletter.errors import ConfigError, NewsletterError, TransportAuthError

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = [
    "FolderSource",
    "ImapSource",
    "InboundItem",
    "InboundSource",
    "MaildirSource",
    "MboxSource",
    "open_path_source",
    "raw_from_inbound_parse",
]

#: the Maildir flag that marks a handled message (RFC-less but universal: "seen")
DONE_FLAG = "S"


@dataclass(frozen=True, slots=True)
class InboundItem:
    """One message as a source holds it."""

    source_id: str  # names the message within its source (file name, key, UIDVALIDITY:UID)
    raw: bytes


class InboundSource(ABC):
    """A place inbound mail is read from. Use as a context manager (open/close)."""

    #: how the source is named in records and output, e.g. ``maildir:/srv/mail/contact``
    name: str = "source"

    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect or check the source exists; fail before anything is processed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; safe to call twice."""

    @abstractmethod
    def items(self) -> Iterator[InboundItem]:
        """Every message still to handle, oldest first."""

    def mark_done(self, item: InboundItem, outcome: str) -> None:  # noqa: B027
        """Called once ``item`` has a recorded outcome. Never deletes anything."""

    def __enter__(self) -> InboundSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ----------------------------------------------------------------------- files


class FolderSource(InboundSource):
    """A folder of ``.eml`` files (read in name order, left untouched)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"folder:{self.path}"

    def open(self) -> None:
        if not self.path.is_dir():
            raise NewsletterError(f"{self.path}: not a folder")

    def items(self) -> Iterator[InboundItem]:
        for file in sorted(self.path.glob("*.eml")):
            try:
                raw = file.read_bytes()
            except OSError as exc:
                raise NewsletterError(f"{file}: cannot read: {exc.strerror}") from exc
            yield InboundItem(file.name, raw)


class MaildirSource(InboundSource):
    """A Maildir (``new/``, ``cur/``, ``tmp/``).

    Every message in ``new/`` and ``cur/`` is offered (a message someone already read in
    a mail client still needs handling; the records skip those handled before). A
    handled message is renamed into ``cur/`` with the ``S`` flag added to its info;
    its bytes are never rewritten.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"maildir:{self.path}"
        self._files: dict[str, Path] = {}
        self._colon = ":"

    def open(self) -> None:
        try:
            box = mailbox.Maildir(str(self.path), factory=None, create=False)
        except mailbox.NoSuchMailboxError:
            raise NewsletterError(f"{self.path}: not a Maildir (no new/ and cur/)") from None
        self._colon = box.colon or ":"
        if not (self.path / "new").is_dir() or not (self.path / "cur").is_dir():
            raise NewsletterError(f"{self.path}: not a Maildir (no new/ and cur/)")

    def _key(self, name: str) -> str:
        return name.split(self._colon, 1)[0]

    def items(self) -> Iterator[InboundItem]:
        files: list[tuple[str, Path]] = []
        for sub in ("new", "cur"):
            for entry in (self.path / sub).iterdir():
                if entry.name.startswith(".") or not entry.is_file():
                    continue
                files.append((self._key(entry.name), entry))
        files.sort(key=lambda pair: pair[0])
        self._files = dict(files)
        for key, file in files:
            try:
                raw = file.read_bytes()
            except FileNotFoundError:  # moved by a mail client meanwhile
                continue
            yield InboundItem(key, raw)

    def mark_done(self, item: InboundItem, outcome: str) -> None:
        current = self._files.get(item.source_id)
        if current is None:
            return
        info = current.name.split(self._colon, 1)[1] if self._colon in current.name else ""
        flags = info[2:] if info.startswith("2,") else ""
        if current.parent.name == "cur" and DONE_FLAG in flags:
            return
        new_flags = "".join(sorted(set(flags) | {DONE_FLAG}))
        target = self.path / "cur" / f"{item.source_id}{self._colon}2,{new_flags}"
        try:
            os.rename(current, target)
        except OSError as exc:
            raise NewsletterError(f"{current}: cannot move to cur/: {exc.strerror}") from exc
        self._files[item.source_id] = target


class MboxSource(InboundSource):
    """An mbox file, read only: the records alone make re-runs safe."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.name = f"mbox:{self.path}"

    def open(self) -> None:
        if not self.path.is_file():
            raise NewsletterError(f"{self.path}: no such mbox file")

    def items(self) -> Iterator[InboundItem]:
        box = mailbox.mbox(str(self.path), factory=None, create=False)
        try:
            for n, key in enumerate(box.iterkeys(), start=1):
                yield InboundItem(f"#{n}", box.get_bytes(key))
        finally:
            box.close()


def open_path_source(path: Path) -> InboundSource:
    """A folder of .eml files, a Maildir or an mbox file, whichever ``path`` is."""
    path = Path(path)
    if path.is_dir():
        if (path / "cur").is_dir() and (path / "new").is_dir():
            return MaildirSource(path)
        return FolderSource(path)
    if path.is_file():
        with path.open("rb") as fh:
            start = fh.read(5)
        if start == b"From " or start == b"":
            return MboxSource(path)
        raise NewsletterError(
            f"{path}: not an mbox file (it does not start with 'From ')",
            hint="pass a folder of .eml files, a Maildir or an mbox file",
        )
    raise NewsletterError(f"{path}: no such file or folder")


# ------------------------------------------------------------------------ IMAP

Security = Literal["none", "starttls", "tls"]
_UIDVALIDITY = re.compile(rb"UIDVALIDITY (\d+)")


def _quote(name: str) -> str:
    """An IMAP quoted string (imaplib sends arguments as they are)."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


class ImapSource(InboundSource):
    """The contact mailbox over IMAP (imaplib)."""

    def __init__(
        self,
        *,
        host: str,
        port: int | None,
        security: Security,
        username: str,
        password: str,
        folder: str = "INBOX",
        done_folder: str = "Processed",
        records: Records | None = None,
        timeout: float = 30.0,
        use_move: bool | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.host = host
        self.port = port or (993 if security == "tls" else 143)
        self.security = security
        self.username = username
        self._password = password
        self.folder = folder
        self.done_folder = done_folder
        self.records = records
        self.timeout = timeout
        self.use_move = use_move
        self.ssl_context = ssl_context
        self.name = f"imap:{username}@{host}:{self.port}/{folder}"
        self.imap: imaplib.IMAP4 | None = None
        self.uidvalidity = 0
        self.moved = 0

    @classmethod
    def from_settings(cls, settings: Settings, *, records: Records | None = None) -> ImapSource:
        if not settings.imap_host:
            raise ConfigError(
                "NEWSLETTER_IMAP_HOST is not set: no contact mailbox to read",
                hint="set NEWSLETTER_IMAP_HOST (and _USERNAME, _PASSWORD), or pass --source "
                "with a folder of .eml files, a Maildir or an mbox file",
            )
        if not settings.imap_username:
            raise ConfigError("NEWSLETTER_IMAP_USERNAME is not set: the IMAP login needs it")
        if settings.imap_password is None or not settings.imap_password.get_secret_value():
            raise ConfigError("NEWSLETTER_IMAP_PASSWORD is not set: the IMAP login needs it")
        return cls(
            host=settings.imap_host,
            port=settings.imap_port,
            security=settings.imap_security,
            username=settings.imap_username,
            password=settings.imap_password.get_secret_value(),
            folder=settings.imap_folder,
            done_folder=settings.imap_done_folder,
            records=records,
        )

    @property
    def where(self) -> str:
        return f"{self.host}:{self.port}"

    @property
    def account(self) -> str:
        return f"{self.username}@{self.host}:{self.port}/{self.folder}"

    def _conn(self) -> imaplib.IMAP4:
        if self.imap is None:
            raise NewsletterError(f"{self.where}: the IMAP connection is not open")
        return self.imap

    def _check(self, what: str, result: tuple[str, Sequence[Any]]) -> list[Any]:
        typ, data = result
        if typ != "OK":
            text = b" ".join(d for d in data if isinstance(d, bytes)).decode(errors="replace")
            raise NewsletterError(f"{self.where}: {what} failed: {text}")
        return list(data)

    def open(self) -> None:
        context = self.ssl_context or ssl.create_default_context()
        try:
            if self.security == "tls":
                imap: imaplib.IMAP4 = imaplib.IMAP4_SSL(
                    self.host, self.port, ssl_context=context, timeout=self.timeout
                )
            else:
                imap = imaplib.IMAP4(self.host, self.port, timeout=self.timeout)
                if self.security == "starttls":
                    imap.starttls(context)
        except (OSError, imaplib.IMAP4.error, ssl.SSLError) as exc:
            raise NewsletterError(
                f"{self.where}: cannot connect to the IMAP server ({self.security}): {exc}",
                hint="check NEWSLETTER_IMAP_HOST, NEWSLETTER_IMAP_PORT and "
                "NEWSLETTER_IMAP_SECURITY",
            ) from exc
        self.imap = imap
        try:
            try:
                imap.login(self.username, self._password)
            except imaplib.IMAP4.error as exc:
                raise TransportAuthError(
                    f"{self.where} refused the login for {self.username}: {exc}",
                    hint="check NEWSLETTER_IMAP_USERNAME and NEWSLETTER_IMAP_PASSWORD",
                ) from None
            caps = self._check("CAPABILITY", imap.capability())
            words = set(b" ".join(c for c in caps if isinstance(c, bytes)).upper().split())
            self._has_move = b"MOVE" in words
            self._has_uidplus = b"UIDPLUS" in words
            self._ensure_folder(self.done_folder)
            self._check(f"SELECT {self.folder}", imap.select(_quote(self.folder)))
            _typ, values = imap.response("UIDVALIDITY")
            found = next((v for v in values if isinstance(v, bytes)), None)
            if found is None:
                status = self._check("STATUS", imap.status(_quote(self.folder), "(UIDVALIDITY)"))
                match = _UIDVALIDITY.search(b" ".join(s for s in status if isinstance(s, bytes)))
                found = match.group(1) if match else b"0"
            self.uidvalidity = int(found)
        except (OSError, imaplib.IMAP4.error) as exc:
            self.close()
            raise NewsletterError(f"{self.where}: IMAP error: {exc}") from exc
        except BaseException:
            self.close()
            raise

    def _ensure_folder(self, name: str) -> None:
        imap = self._conn()
        typ, data = imap.list('""', _quote(name))
        if typ == "OK" and any(d for d in data if d):
            return
        self._check(f"CREATE {name}", imap.create(_quote(name)))
        imap.subscribe(_quote(name))

    def close(self) -> None:
        imap, self.imap = self.imap, None
        if imap is None:
            return
        try:
            if imap.state == "SELECTED":
                imap.close()
            imap.logout()
        except (OSError, imaplib.IMAP4.error):
            pass

    def items(self) -> Iterator[InboundItem]:
        imap = self._conn()
        try:
            data = self._check("UID SEARCH", imap.uid("SEARCH", "UNDELETED"))
            uids = [int(u) for d in data if isinstance(d, bytes) for u in d.split()]
            for uid in sorted(uids):
                if self.records is not None and self.records.imap_seen(
                    self.account, self.uidvalidity, uid
                ):
                    self._move(uid)  # handled before, but the move did not happen
                    continue
                fetched = self._check(
                    f"UID FETCH {uid}", imap.uid("FETCH", str(uid), "(BODY.PEEK[])")
                )
                raw = next(
                    (part[1] for part in fetched if isinstance(part, tuple) and len(part) == 2),
                    None,
                )
                if not isinstance(raw, bytes):
                    continue  # expunged by someone else meanwhile
                yield InboundItem(f"{self.uidvalidity}:{uid}", raw)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise NewsletterError(f"{self.where}: IMAP error: {exc}") from exc

    def mark_done(self, item: InboundItem, outcome: str) -> None:
        validity_text, _, uid_text = item.source_id.partition(":")
        uid = int(uid_text)
        if self.records is not None:
            self.records.note_imap(
                self.account, int(validity_text), uid, message_identity(item.raw)
            )
        try:
            self._move(uid)
        except (OSError, imaplib.IMAP4.error) as exc:
            raise NewsletterError(f"{self.where}: IMAP error: {exc}") from exc

    def _move(self, uid: int) -> None:
        """Move one message to the done folder; a copy first, never a bare delete."""
        imap = self._conn()
        target = _quote(self.done_folder)
        use_move = self._has_move if self.use_move is None else self.use_move
        if use_move:
            self._check(f"UID MOVE {uid}", imap.uid("MOVE", str(uid), target))
        else:
            self._check(f"UID COPY {uid}", imap.uid("COPY", str(uid), target))
            self._check(
                f"UID STORE {uid}", imap.uid("STORE", str(uid), "+FLAGS.SILENT", r"(\Deleted)")
            )
            if self._has_uidplus:
                self._check(f"UID EXPUNGE {uid}", imap.uid("EXPUNGE", str(uid)))
            else:
                self._check("EXPUNGE", imap.expunge())
        self.moved += 1


# ------------------------------------------------------------ SendGrid Inbound Parse

_DROPPED_HEADERS = re.compile(
    r"^(?:content-type|content-transfer-encoding|mime-version|content-disposition|"
    r"return-path)\s*:",
    re.IGNORECASE,
)


def _field(form: Mapping[str, str | bytes], name: str, charsets: Mapping[str, str]) -> str:
    """A form field as text, honouring the charset SendGrid declared for it.

    A field declared in a legacy charset (ISO-2022-JP, Shift_JIS) may arrive as bytes,
    or as text a web framework decoded as Latin-1: both are turned back into bytes and
    decoded with the declared charset.
    """
    value = form.get(name)
    if value is None:
        return ""
    declared = (charsets.get(name) or "utf-8").strip().lower()
    if isinstance(value, bytes):
        data = value
    else:
        if declared in ("utf-8", "utf8", "us-ascii", "ascii"):
            return value
        try:
            data = value.encode("latin-1")
        except UnicodeEncodeError:
            return value  # already real text
    from newsletter.audience.inbound.text import decode_bytes

    return decode_bytes(data, declared)


def _one_line(text: str) -> str:
    return " ".join(text.replace("\r", " ").replace("\n", " ").split())


def _envelope_sender(form: Mapping[str, str | bytes]) -> str | None:
    """``"<>"`` for a null envelope sender, ``"<addr>"`` for a clean one, else None."""
    value = form.get("envelope")
    if value is None:
        return None
    text = value.decode("utf-8", errors="replace") if isinstance(value, bytes) else value
    try:
        envelope = json.loads(text)
    except ValueError:
        return None
    if not isinstance(envelope, dict) or "from" not in envelope:
        return None
    sender = envelope.get("from")
    if sender is None or not str(sender).strip() or str(sender).strip() == "<>":
        return "<>"
    address = clean_address(str(sender))
    return f"<{address}>" if address else None


def _header_lines(block: str) -> list[str]:
    """Header fields of a header block (continuation lines joined to their field)."""
    fields: list[str] = []
    for line in block.replace("\r\n", "\n").replace("\r", "\n").split("\n"):
        if not line.strip():
            if fields:
                break
            continue
        if line[0] in " \t" and fields:
            fields[-1] += "\r\n" + line
        elif ":" in line:
            fields.append(line)
    return fields


def _b64_part(content_type: str, text: str) -> bytes:
    body = base64.encodebytes(text.encode("utf-8")).replace(b"\n", b"\r\n")
    return (
        f'Content-Type: {content_type}; charset="utf-8"\r\n'.encode()
        + b"Content-Transfer-Encoding: base64\r\n\r\n"
        + body
    )


def raw_from_inbound_parse(form: Mapping[str, str | bytes]) -> bytes:
    """The raw message a SendGrid Inbound Parse POST carries.

    *Raw mode* posts the whole message in ``email``. *Parsed mode* posts ``headers``
    (the header block), ``from``, ``to``, ``subject``, ``text`` and ``html``, with
    ``charsets`` (JSON: each field's charset); the message is rebuilt from the
    original header block (MIME headers dropped) and a fresh UTF-8
    multipart/alternative body. In both modes an ``envelope`` (JSON) with an empty
    ``from`` becomes ``Return-Path: <>``: a null sender, treated as automatic mail.
    Raises NewsletterError when the form holds no message.
    """
    charsets_text = form.get("charsets") or "{}"
    if isinstance(charsets_text, bytes):
        charsets_text = charsets_text.decode("utf-8", errors="replace")
    try:
        loaded = json.loads(charsets_text)
    except ValueError:
        loaded = {}
    charsets = {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
    return_path = _envelope_sender(form)

    email = form.get("email")
    if email:
        raw = email if isinstance(email, bytes) else email.encode("utf-8", "surrogateescape")
        if return_path is None:
            return raw
        head, sep, body = (
            raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else (raw.partition(b"\n\n"))
        )
        newline = b"\r\n" if sep == b"\r\n\r\n" else b"\n"
        lines = head.split(newline)
        kept: list[bytes] = []
        skipping = False
        for line in lines:
            if line[:1] in (b" ", b"\t") and skipping:
                continue
            skipping = line.lower().startswith(b"return-path:")
            if not skipping:
                kept.append(line)
        return f"Return-Path: {return_path}".encode() + newline + newline.join(kept) + sep + body

    headers = _field(form, "headers", charsets)
    text = _field(form, "text", charsets)
    html = _field(form, "html", charsets)
    if not headers and not form.get("from") and not text and not html:
        raise NewsletterError(
            "inbound parse: the form holds no message (neither 'email' nor 'headers')"
        )
    fields = [f for f in _header_lines(headers) if not _DROPPED_HEADERS.match(f)]
    present = {f.split(":", 1)[0].strip().lower() for f in fields}
    for name in ("from", "to", "subject"):
        value = _one_line(_field(form, name, charsets))
        if name not in present and value:
            fields.append(f"{name.capitalize()}: {value}")
    if return_path is not None:
        fields.insert(0, f"Return-Path: {return_path}")
    head = "".join(f + "\r\n" for f in fields).encode("utf-8", "surrogateescape")
    mime = b"MIME-Version: 1.0\r\n"
    if text and html:
        # derived from the content, so a retried POST rebuilds the very same bytes
        digest = hashlib.sha256(head + text.encode() + html.encode()).hexdigest()[:24]
        boundary = f"=_inbound_parse_{digest}"
        body = (
            f'Content-Type: multipart/alternative; boundary="{boundary}"\r\n\r\n'.encode()
            + f"--{boundary}\r\n".encode()
            + _b64_part("text/plain", text)
            + f"--{boundary}\r\n".encode()
            + _b64_part("text/html", html)
            + f"--{boundary}--\r\n".encode()
        )
    elif html:
        body = _b64_part("text/html", html)
    else:
        body = _b64_part("text/plain", text)
    return head + mime + body
