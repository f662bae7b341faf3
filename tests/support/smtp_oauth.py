"""An aiosmtpd server that takes AUTH XOAUTH2 and OAUTHBEARER, checked by introspection.

Like Microsoft 365's and Gmail's submission ports: STARTTLS first (with a certificate
from the test's :class:`~tests.support.localca.LocalCA`), then a bearer token that the
server checks against the provider's RFC 7662 introspection endpoint
(:func:`~tests.support.oauth_provider.ask_introspection`); the login name must be the
token's user. A refused token gets the XOAUTH2 error challenge (base64 JSON), the
client's empty answer, then ``535``. Password mechanisms are not offered.
"""

from __future__ import annotations

import asyncio
import json
import re
import ssl
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import MISSING, SMTP, AuthResult

from tests.support.oauth_provider import OAuthProvider, ask_introspection
from tests.support.smtp_server import RecordingHandler, free_port

_XOAUTH2 = re.compile(r"^user=([^\x01]*)\x01auth=Bearer ([^\x01]+)\x01\x01$")
_OAUTHBEARER = re.compile(r"^n,a=([^,]*),(?:\x01[a-z]+=[^\x01]*)*?\x01auth=Bearer ([^\x01]+)\x01")


class OAuthHandler(RecordingHandler):
    """Records mail like :class:`RecordingHandler`; logs in only with a live token."""

    def __init__(self, provider: OAuthProvider) -> None:
        super().__init__()
        self.provider = provider
        self.logins: list[tuple[str, str]] = []  # (mechanism, user) accepted
        self.refusals = 0

    async def _check(self, server: SMTP, args: list[str], pattern: re.Pattern[str]) -> AuthResult:
        blob = await server.challenge_auth("") if len(args) == 1 else _b64(args[1])
        if blob is MISSING or not isinstance(blob, bytes):
            return AuthResult(success=False, handled=True)
        match = pattern.match(blob.decode("utf-8", "replace"))
        user = match.group(1).replace("=2C", ",").replace("=3D", "=") if match else ""
        found = (
            await asyncio.to_thread(ask_introspection, self.provider, match.group(2))
            if match
            else {}
        )
        if found.get("active") is True and found.get("username") == user:
            self.logins.append((args[0], user))
            return AuthResult(success=True, auth_data=user)
        self.refusals += 1
        error = {"status": "401", "schemes": "bearer", "scope": "https://mail.example.test/"}
        await server.challenge_auth(json.dumps(error))  # the client answers with an empty line
        return AuthResult(
            success=False, handled=False, message="535 5.7.8 Username and Password not accepted"
        )

    async def auth_XOAUTH2(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check(server, args, _XOAUTH2)

    async def auth_OAUTHBEARER(self, server: SMTP, args: list[str]) -> AuthResult:
        return await self._check(server, args, _OAUTHBEARER)


def _b64(text: str) -> bytes | None:
    import base64
    import binascii

    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        return None


class OAuthSmtpServer:
    """``with OAuthSmtpServer(provider, tls_context) as srv: srv.port, srv.handler``."""

    def __init__(
        self,
        provider: OAuthProvider,
        tls_context: ssl.SSLContext,
        *,
        mechanisms: tuple[str, ...] = ("XOAUTH2", "OAUTHBEARER"),
    ) -> None:
        self.handler = OAuthHandler(provider)
        self.port = free_port()
        excluded = ["PLAIN", "LOGIN"] + [
            m for m in ("XOAUTH2", "OAUTHBEARER") if m not in mechanisms
        ]
        self.controller = Controller(
            self.handler,
            hostname="127.0.0.1",
            port=self.port,
            server_hostname="localhost",
            tls_context=tls_context,
            require_starttls=True,
            auth_require_tls=True,
            auth_exclude_mechanism=excluded,
            authenticator=_never,  # every mechanism offered checks its own token
        )

    def __enter__(self) -> OAuthSmtpServer:
        self.controller.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.controller.stop()


def _never(*args: Any) -> AuthResult:
    return AuthResult(success=False, handled=False)
