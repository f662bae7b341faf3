"""One SMTP connection: open it (plain, STARTTLS or implicit TLS), log in, and speak the
envelope of a transaction (MAIL, RCPT, DATA) and the message that follows it.

Third-party errors are mapped here, at the boundary: a refused login (535) is
:class:`~newsletter.errors.TransportAuthError`; a server that cannot be reached, will
not talk TLS or does not offer STARTTLS is :class:`~newsletter.errors.TransportError`,
each naming ``host:port``. What the replies mean for a recipient is the transport's
(:mod:`.smtp`).

The login is a password (AUTH PLAIN/LOGIN) or a bearer token from
:class:`~newsletter.oauth.TokenSource` over AUTH XOAUTH2 or OAUTHBEARER (Microsoft 365,
Google Workspace); a refused token is renewed once, then the refusal is the error.
"""

from __future__ import annotations

import contextlib
import smtplib
import ssl
from typing import Final

from newsletter.errors import TransportAuthError, TransportError
from newsletter.oauth import TokenSource, sasl_error, sasl_response
from newsletter.tls import connect_hint

DEFAULT_PORTS: Final = {"none": 25, "starttls": 587, "tls": 465}
#: an SMTP reply: its code and its text
Reply = tuple[int, bytes]


class Dropped(Exception):
    """The connection went away before the message body left: safe to try again."""


def reply_text(code: int, resp: bytes | str) -> str:
    """A reply as one line: ``"550 5.1.1 <x@example.net>: no such user"``."""
    text = resp.decode("utf-8", "replace") if isinstance(resp, bytes) else resp
    return f"{code} {' '.join(text.split())}".strip()


def close_quietly(conn: smtplib.SMTP) -> None:
    """Drop the connection without a word to the server, whatever state it is in."""
    with contextlib.suppress(OSError, smtplib.SMTPException):
        conn.close()


def open_connection(
    host: str,
    port: int,
    *,
    security: str,
    username: str | None,
    password: str | None,
    timeout: float,
    ssl_context: ssl.SSLContext | None,
    local_hostname: str,
    oauth: TokenSource | None = None,
    mechanism: str = "xoauth2",
) -> smtplib.SMTP:
    """Connect, say EHLO, secure the connection as ``security`` says, log in if told to.

    ``ssl_context`` None verifies the server against the system's certificates. With
    ``oauth`` the login is SASL ``mechanism`` with its token for ``username``.
    """
    where = f"{host}:{port}"
    try:
        conn: smtplib.SMTP
        if security == "tls":
            conn = smtplib.SMTP_SSL(
                host,
                port,
                local_hostname=local_hostname,
                timeout=timeout,
                context=ssl_context or ssl.create_default_context(),
            )
        else:
            conn = smtplib.SMTP(host, port, local_hostname=local_hostname, timeout=timeout)
        try:
            conn.ehlo()
            if security == "starttls":
                if not conn.has_extn("starttls"):
                    raise TransportError(
                        f"{where}: the server does not offer STARTTLS",
                        hint="set SMTP_SECURITY=tls for port 465, or none for a local relay",
                    )
                conn.starttls(context=ssl_context or ssl.create_default_context())
                conn.ehlo()
            if oauth is not None:
                login_oauth(conn, host, port, username or "", oauth, mechanism.upper())
            elif username:
                conn.login(username, password or "")
        except BaseException:
            close_quietly(conn)
            raise
    except smtplib.SMTPAuthenticationError as exc:
        raise TransportAuthError(
            f"{where} failed to authenticate user {username!r}: "
            f"{reply_text(exc.smtp_code, exc.smtp_error)}",
            hint="check SMTP_USERNAME and SMTP_PASSWORD",
        ) from exc
    except smtplib.SMTPNotSupportedError as exc:
        raise TransportError(f"{where}: {exc}") from exc
    except (smtplib.SMTPException, OSError) as exc:
        raise TransportError(
            f"{where}: cannot connect ({security}): {exc}",
            hint=connect_hint(exc, "SMTP"),
        ) from exc
    return conn


def login_oauth(
    conn: smtplib.SMTP, host: str, port: int, username: str, oauth: TokenSource, mechanism: str
) -> None:
    """AUTH XOAUTH2 / OAUTHBEARER with the initial response; a refused token renewed once."""
    where = f"{host}:{port}"
    offered = conn.esmtp_features.get("auth", "").upper().split()
    if mechanism not in offered:
        raise TransportAuthError(
            f"{where} does not offer AUTH {mechanism} (it offers {' '.join(offered) or 'none'})",
            hint="set SMTP_OAUTH_MECHANISM to one it offers, or use SMTP_AUTH=password",
        )
    token: str | None = oauth.token()
    refusal = ""
    while token is not None:
        said: list[bytes] = []
        first = sasl_response(mechanism, username, token, host, port).decode()

        def answer(
            challenge: bytes | None = None, first: str = first, said: list[bytes] = said
        ) -> str:
            if challenge is None:
                return first
            said.append(challenge)  # the server's error (JSON); an empty line ends it
            return ""

        try:
            conn.auth(mechanism, answer, initial_response_ok=True)
            return
        except smtplib.SMTPAuthenticationError as exc:
            detail = sasl_error(said[-1]) if said else ""
            refusal = reply_text(exc.smtp_code, exc.smtp_error) + (f" ({detail})" if detail else "")
        token = oauth.renew(token)
    raise TransportAuthError(
        f"{where} refused the {mechanism} login for {username!r} with the access token "
        f"from SMTP_OAUTH_TOKEN_URL: {refusal}",
        hint="check that SMTP_USERNAME is the mailbox the token was granted for and that "
        "SMTP_OAUTH_SCOPES includes sending mail (Microsoft 365: SMTP.Send)",
    )


def send_envelope(
    conn: smtplib.SMTP, envelope_from: str, envelope_to: str
) -> tuple[Reply, Reply, Reply]:
    """MAIL FROM, RCPT TO and DATA: the three replies (0 for a command not sent).

    With PIPELINING (RFC 2920) the three commands go out in one write and their replies
    are read together: one round trip instead of three. Addresses were validated
    upstream, so they are written directly rather than re-parsed by smtplib. Raises
    :class:`Dropped` when the connection is lost on the way.
    """
    mail_cmd = f"MAIL FROM:<{envelope_from}>"
    rcpt_cmd = f"RCPT TO:<{envelope_to}>"
    try:
        if conn.has_extn("pipelining"):
            conn.send(f"{mail_cmd}\r\n{rcpt_cmd}\r\nDATA\r\n".encode("ascii"))
            (mcode, mresp), (rcode, rresp), (dcode, dresp) = (conn.getreply() for _ in "mrd")
            if dcode == 354 and (mcode != 250 or rcode not in (250, 251)):
                # a non-conforming server opened DATA anyway: end it empty
                conn.send(b".\r\n")
                conn.getreply()
                dcode = 503
        else:
            mcode, mresp = conn.docmd(mail_cmd)
            rcode, rresp, dcode, dresp = 0, b"", 0, b""
            if mcode == 250:
                rcode, rresp = conn.docmd(rcpt_cmd)
                if rcode in (250, 251):
                    dcode, dresp = conn.docmd("DATA")
    except (smtplib.SMTPServerDisconnected, OSError) as exc:
        raise Dropped(str(exc) or type(exc).__name__) from exc
    return (mcode, mresp), (rcode, rresp), (dcode, dresp)


def data_payload(message: bytes) -> bytes:
    """The message as it goes after DATA: CRLF-ended, leading dots doubled, then ``.``."""
    if not message.endswith(b"\r\n"):
        message += b"\r\n"
    payload = message.replace(b"\r\n.", b"\r\n..") + b".\r\n"
    if payload.startswith(b"."):
        payload = b"." + payload
    return payload
