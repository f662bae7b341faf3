"""A small OAuth 2.0 provider on 127.0.0.1: a token endpoint and an introspection endpoint.

Two HTTP servers, as a real identity provider has two roles:

* the **token endpoint** (RFC 6749) that our :mod:`newsletter.oauth` calls: the
  ``refresh_token`` grant (Google Workspace, Microsoft 365 delegated) and the
  ``client_credentials`` grant (Microsoft 365 app-only), client id and secret in the body;
* the **introspection endpoint** (RFC 7662) that Dovecot's oauth2 passdb and the SMTP
  test server ask whether an access token is live and whose it is; it wants HTTP Basic
  credentials (:data:`INTROSPECTION_USER`), as RFC 7662 requires a protected endpoint.

Access tokens are random, live ``lifetime`` seconds, and can be revoked or expired on
cue (:meth:`OAuthProvider.revoke_all`), which a client's cache cannot know about.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

INTROSPECTION_USER = ("mailserver", "introspection-secret")


@dataclass
class Client:
    secret: str
    mailbox: str  # whose mail the client's tokens open (app-only: the mailbox it was granted)


@dataclass
class Grant:
    client_id: str
    username: str
    scope: str


@dataclass
class Issued:
    username: str
    client_id: str
    scope: str
    expires_at: float
    active: bool = True


@dataclass
class OAuthProvider:
    lifetime: int = 3600
    rotate_refresh_tokens: bool = False
    clients: dict[str, Client] = field(default_factory=dict)
    refresh_tokens: dict[str, Grant] = field(default_factory=dict)
    issued: dict[str, Issued] = field(default_factory=dict)
    token_requests: list[dict[str, str]] = field(default_factory=list)
    introspections: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _servers: list[ThreadingHTTPServer] = field(default_factory=list)

    # -- set-up ---------------------------------------------------------------------
    def add_client(self, client_id: str, secret: str, mailbox: str) -> None:
        self.clients[client_id] = Client(secret, mailbox)

    def grant(self, client_id: str, username: str, scope: str = "mail") -> str:
        """A refresh token, as the one-time consent in a browser would hand out."""
        token = "rt-" + secrets.token_urlsafe(24)
        self.refresh_tokens[token] = Grant(client_id, username, scope)
        return token

    def revoke_all(self) -> None:
        """Every access token issued so far stops working (revoked or expired early)."""
        with self.lock:
            for issued in self.issued.values():
                issued.active = False

    def mint(self, username: str, client_id: str = "test", scope: str = "mail") -> str:
        token = "at-" + secrets.token_urlsafe(32)
        with self.lock:
            self.issued[token] = Issued(username, client_id, scope, time.time() + self.lifetime)
        return token

    # -- servers --------------------------------------------------------------------
    @property
    def token_url(self) -> str:
        host, port = self._servers[0].server_address[:2]
        return f"http://{host}:{port}/oauth2/token"

    @property
    def introspection_url(self) -> str:
        host, port = self._servers[1].server_address[:2]
        return f"http://{host}:{port}/oauth2/introspect"

    def __enter__(self) -> OAuthProvider:
        for handler in (_token_handler(self), _introspection_handler(self)):
            server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
            server.daemon_threads = True
            threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
            self._servers.append(server)
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()

    # -- what the endpoints do ------------------------------------------------------
    def token_response(self, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        with self.lock:
            self.token_requests.append(form)
        client = self.clients.get(form.get("client_id", ""))
        if client is None or client.secret != form.get("client_secret"):
            return 401, {"error": "invalid_client", "error_description": "unknown client"}
        grant_type = form.get("grant_type")
        body: dict[str, Any] = {}
        if grant_type == "refresh_token":
            grant = self.refresh_tokens.get(form.get("refresh_token", ""))
            if grant is None or grant.client_id != form["client_id"]:
                return 400, {
                    "error": "invalid_grant",
                    "error_description": "Token has been expired or revoked.",
                }
            if self.rotate_refresh_tokens:
                del self.refresh_tokens[form["refresh_token"]]
                body["refresh_token"] = self.grant(grant.client_id, grant.username, grant.scope)
            username, scope = grant.username, grant.scope
        elif grant_type == "client_credentials":
            if not form.get("scope"):
                return 400, {"error": "invalid_scope", "error_description": "scope is required"}
            username, scope = client.mailbox, form["scope"]
        else:
            return 400, {"error": "unsupported_grant_type"}
        token = self.mint(username, form["client_id"], scope)
        return 200, {
            **body,
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "scope": scope,
        }

    def introspect(self, token: str) -> dict[str, Any]:
        with self.lock:
            self.introspections.append(token)
            issued = self.issued.get(token)
        if issued is None or not issued.active or issued.expires_at <= time.time():
            return {"active": False}
        return {
            "active": True,
            "username": issued.username,
            "client_id": issued.client_id,
            "scope": issued.scope,
            "exp": int(issued.expires_at),
        }


def ask_introspection(provider: OAuthProvider, token: str) -> dict[str, Any]:
    """What a resource server (the SMTP test server) does: POST the token, read JSON."""
    request = urllib.request.Request(
        provider.introspection_url,
        data=urllib.parse.urlencode({"token": token}).encode(),
        headers={"Authorization": _basic(*INTROSPECTION_USER)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        result: dict[str, Any] = json.load(response)
        return result


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class _Handler(BaseHTTPRequestHandler):
    provider: OAuthProvider

    def log_message(self, format: str, *args: Any) -> None:
        pass  # quiet: pytest shows failures, not every request

    def _form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode()
        return dict(urllib.parse.parse_qsl(body, keep_blank_values=True))

    def _reply(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(data)


def _token_handler(provider: OAuthProvider) -> type[_Handler]:
    class TokenHandler(_Handler):
        def do_POST(self) -> None:
            if self.path != "/oauth2/token":
                self._reply(404, {"error": "not_found"})
                return
            self._reply(*provider.token_response(self._form()))

    TokenHandler.provider = provider
    return TokenHandler


def _introspection_handler(provider: OAuthProvider) -> type[_Handler]:
    class IntrospectionHandler(_Handler):
        def do_POST(self) -> None:
            if self.headers.get("Authorization") != _basic(*INTROSPECTION_USER):
                self._reply(401, {"error": "invalid_client"})
                return
            self._reply(200, provider.introspect(self._form().get("token", "")))

    IntrospectionHandler.provider = provider
    return IntrospectionHandler
