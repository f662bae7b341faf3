"""The contact mailbox over IMAP (imaplib) as an inbound source.

UID-based: a handled message is MOVEd (or COPY, flag ``\\Deleted``, UID EXPUNGE, only
after the copy succeeded) to the done folder, created if missing; with
:class:`~newsletter.audience.inbound.records.Records`, ``(UIDVALIDITY, UID)`` is recorded
so a restart fetches nothing twice. Never a bare delete.

Security ``tls`` (993) or ``starttls`` checks the certificate chain and the host name
(``NEWSLETTER_IMAP_CA_FILE`` for a private CA). The login is a password or, for Microsoft
365 and Google Workspace, a bearer token (:mod:`newsletter.oauth`) over SASL XOAUTH2 or
OAUTHBEARER; a token the server refuses is renewed once, then the refusal is the error.
"""

from __future__ import annotations

import imaplib
import re
import ssl
from collections.abc import Iterator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from newsletter.audience.inbound.records import Records, message_identity
from newsletter.audience.inbound.sources import InboundItem, InboundSource
from newsletter.errors import ConfigError, NewsletterError, TransportAuthError
from newsletter.oauth import TokenSource, sasl_error, sasl_response, token_source
from newsletter.tls import client_tls_context, connect_hint

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["ImapSource", "Security"]

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
        password: str | None = None,
        oauth: TokenSource | None = None,
        mechanism: str = "xoauth2",
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
        self.oauth = oauth
        self.mechanism = mechanism.upper()
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
        password: str | None = None
        oauth: TokenSource | None = None
        if settings.imap_auth == "oauth2":
            if settings.imap_security == "none":
                raise ConfigError(
                    "NEWSLETTER_IMAP_SECURITY=none: NEWSLETTER_IMAP_AUTH=oauth2 would send "
                    "the access token in clear",
                    hint="use tls (port 993) or starttls",
                )
            oauth = token_source(settings, "imap")
        elif settings.imap_password is None or not settings.imap_password.get_secret_value():
            raise ConfigError("NEWSLETTER_IMAP_PASSWORD is not set: the IMAP login needs it")
        else:
            password = settings.imap_password.get_secret_value()
        return cls(
            host=settings.imap_host,
            port=settings.imap_port,
            security=settings.imap_security,
            username=settings.imap_username,
            password=password,
            oauth=oauth,
            mechanism=settings.imap_oauth_mechanism,
            folder=settings.imap_folder,
            done_folder=settings.imap_done_folder,
            records=records,
            ssl_context=client_tls_context(settings.imap_ca_file, "NEWSLETTER_IMAP_CA_FILE"),
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
                hint=connect_hint(exc, "NEWSLETTER_IMAP"),
            ) from exc
        self.imap = imap
        try:
            if self.oauth is not None:
                self._login_oauth(imap, self.oauth)
            else:
                try:
                    imap.login(self.username, self._password or "")
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

    def _login_oauth(self, imap: imaplib.IMAP4, oauth: TokenSource) -> None:
        """SASL XOAUTH2 / OAUTHBEARER with a bearer token; renewed once if refused."""
        mech = self.mechanism
        if f"AUTH={mech}" not in imap.capabilities:
            raise TransportAuthError(
                f"{self.where} does not offer AUTH={mech} (it offers "
                f"{' '.join(c for c in imap.capabilities if c.startswith('AUTH=')) or 'none'})",
                hint="set NEWSLETTER_IMAP_OAUTH_MECHANISM to one it offers, or use a password",
            )
        token: str | None = oauth.token()
        refusal = ""
        while token is not None:
            said: list[bytes] = []
            first = sasl_response(mech, self.username, token, self.host, self.port)

            def answer(challenge: bytes, first: bytes = first, said: list[bytes] = said) -> bytes:
                # the first "+" asks for the token; a second one carries the server's
                # error (JSON), which the client acknowledges with an empty line
                if said or challenge.strip():
                    said.append(challenge)
                    return b""
                said.append(b"")
                return first

            try:
                imap.authenticate(mech, answer)
                return
            except imaplib.IMAP4.error as exc:
                detail = sasl_error(said[-1]) if said and said[-1] else ""
                refusal = f"{exc} ({detail})" if detail else str(exc)
            token = oauth.renew(token)
        raise TransportAuthError(
            f"{self.where} refused the {mech} login for {self.username} with the access "
            f"token from NEWSLETTER_IMAP_OAUTH_TOKEN_URL: {refusal}",
            hint="check that NEWSLETTER_IMAP_USERNAME is the mailbox the token was granted "
            "for and that NEWSLETTER_IMAP_OAUTH_SCOPES includes IMAP access",
        )

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
