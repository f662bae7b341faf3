"""OAuth 2.0 access tokens for mail logins (XOAUTH2, OAUTHBEARER): fetched, kept, renewed.

Microsoft 365 and Google Workspace no longer take a password over IMAP or SMTP: the
client shows a bearer access token that lives about an hour and comes from the
provider's token endpoint (RFC 6749) in exchange for a long-lived credential:

* ``refresh_token`` flow -- a refresh token a person granted once (delegated access),
  with the app's client id (and secret);
* ``client_credentials`` flow -- the app's own client id and secret (Microsoft 365
  app-only access).

:class:`TokenSource` fetches the token, keeps it in memory (and, if asked, in the state
folder with mode 0600), and renews it :data:`RENEW_BEFORE` seconds before it expires;
one lock, so a pool of SMTP connections fetches it once. A refused credential is one
:class:`~newsletter.errors.TransportAuthError` that names the *setting*; token values
never appear in a message, a repr or a log record.

:func:`sasl_response` builds the client's first message for XOAUTH2 (Google, Microsoft)
and OAUTHBEARER (RFC 7628); :func:`token_source` reads a channel's settings.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import ssl
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from newsletter.errors import ConfigError, TransportAuthError, TransportError

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = [
    "OAuthClient",
    "RedactSecrets",
    "TokenSource",
    "sasl_error",
    "sasl_response",
    "token_source",
]

Flow = Literal["refresh_token", "client_credentials"]
#: renew this long before the provider's expiry (clock skew, a slow login)
RENEW_BEFORE = 300.0
#: a token this young that the server refuses will not be helped by another
FRESH_SECONDS = 60.0
#: when the provider does not say (``expires_in`` is only RECOMMENDED)
DEFAULT_LIFETIME = 3600.0
PREFIXES = {"imap": "NEWSLETTER_IMAP", "smtp": "SMTP"}

log = logging.getLogger("newsletter.oauth")
_LIVE_SECRETS: set[str] = set()
_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")


def redact(text: str) -> str:
    """``text`` with every token and secret a :class:`TokenSource` holds replaced."""
    for secret in sorted(_LIVE_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "[redacted]")
    return text


class RedactSecrets(logging.Filter):
    """A logging filter: no record shows an access token, refresh token or secret."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        return True


log.addFilter(RedactSecrets())


def _remember(*secrets: str | None) -> None:
    _LIVE_SECRETS.update(s for s in secrets if s and len(s) >= 8)


@dataclass(frozen=True)
class OAuthClient:
    """Where and how to get tokens; ``prefix`` names the settings (``SMTP_OAUTH``)."""

    prefix: str
    token_url: str
    client_id: str
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    scopes: tuple[str, ...] = ()
    flow: Flow = "refresh_token"

    def var(self, name: str) -> str:
        return f"{self.prefix}_{name}"

    @property
    def fingerprint(self) -> str:
        """Changes when any setting does, so a cached token is never used for another."""
        parts = [self.token_url, self.client_id, self.client_secret or "", self.flow]
        parts += [self.refresh_token or "", " ".join(self.scopes)]
        return hashlib.sha256("\x00".join(parts).encode()).hexdigest()


@dataclass
class _Token:
    value: str = field(repr=False)
    expires_at: float
    fetched_at: float


class TokenSource:
    """An access token for one client, fetched when needed and renewed before expiry."""

    def __init__(
        self,
        client: OAuthClient,
        *,
        cache_file: Path | None = None,
        timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client
        self.cache_file = cache_file
        self.timeout = timeout
        self.clock = clock
        self.requests = 0  # token requests sent (the tests count them)
        self._refresh_token = client.refresh_token
        self._token: _Token | None = None
        self._lock = threading.Lock()
        _remember(client.client_secret, client.refresh_token)
        self._load_cache()

    def __repr__(self) -> str:
        return f"TokenSource({self.client.prefix}, {self.client.flow}, {self.client.token_url})"

    def token(self) -> str:
        """A token good for at least :data:`RENEW_BEFORE` seconds more (or half its life)."""
        with self._lock:
            current = self._token
            if current is not None:
                margin = min(RENEW_BEFORE, (current.expires_at - current.fetched_at) / 2)
                if self.clock() < current.expires_at - margin:
                    return current.value
            return self._fetch().value

    def renew(self, refused: str) -> str | None:
        """After a server refused ``refused``: a new token, or None when that one was
        fresh from the endpoint (another would be refused the same way)."""
        with self._lock:
            current = self._token
            if current is not None and current.value == refused:
                if self.clock() - current.fetched_at < FRESH_SECONDS:
                    return None
                self._token = None
            if self._token is not None:
                return self._token.value  # another thread renewed it meanwhile
            return self._fetch().value

    # The token endpoint -----------------------------------------------------------
    def _form(self) -> dict[str, str]:
        client = self.client
        form = {"grant_type": client.flow, "client_id": client.client_id}
        if client.client_secret:
            form["client_secret"] = client.client_secret
        if client.flow == "refresh_token" and self._refresh_token:
            form["refresh_token"] = self._refresh_token
        if client.scopes:
            form["scope"] = " ".join(client.scopes)
        return form

    def _fetch(self) -> _Token:
        client = self.client
        url = client.token_url
        host = urllib.parse.urlsplit(url).hostname or ""
        loopback = host in ("127.0.0.1", "localhost", "::1")
        opener = urllib.request.build_opener(
            # a local endpoint is reached directly, whatever proxy the environment names
            urllib.request.ProxyHandler({} if loopback else None),
            urllib.request.HTTPSHandler(context=ssl.create_default_context()),
        )
        request = urllib.request.Request(
            url,
            data=urllib.parse.urlencode(self._form()).encode(),
            headers={"Accept": "application/json", "User-Agent": "newsletter"},
        )
        self.requests += 1
        started = self.clock()
        try:
            with opener.open(request, timeout=self.timeout) as response:
                body = _json(response.read())
        except urllib.error.HTTPError as exc:
            raise self._refused(exc.code, _json(exc.read())) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TransportError(
                f"{client.var('TOKEN_URL')}: cannot reach the token endpoint {url}: {reason}",
                hint="check the URL and the network; nothing was sent",
            ) from None
        value = body.get("access_token")
        if not isinstance(value, str) or not value:
            raise TransportError(
                f"{client.var('TOKEN_URL')}: {url} answered without an access_token",
                hint="is this the provider's OAuth 2.0 token endpoint (…/token)?",
            )
        _remember(value)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated:
            _remember(rotated)
            self._refresh_token = rotated  # providers may rotate it; keep the newest
        try:
            lifetime = float(body.get("expires_in") or DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME
        self._token = _Token(value, started + lifetime, started)
        log.debug("%s: new access token from %s, good for %d s", client.prefix, url, lifetime)
        self._save_cache()
        return self._token

    def _refused(self, status: int, body: dict[str, Any]) -> TransportAuthError:
        client = self.client
        code = _clean(str(body.get("error") or f"HTTP {status}"))
        said = _clean(str(body.get("error_description") or ""))
        reason = f"{code} ({said})" if said else code
        if code == "invalid_grant" and client.flow == "refresh_token":
            where = client.var("REFRESH_TOKEN")
            hint = (
                "the refresh token is expired, revoked or for another client: have the "
                "mailbox owner consent again and set the new refresh token"
            )
        elif code in ("invalid_client", "unauthorized_client", "invalid_grant"):
            where = f"{client.var('CLIENT_ID')} / {client.var('CLIENT_SECRET')}"
            hint = "check the app registration's client id and secret (secrets expire)"
        elif code == "invalid_scope":
            where = client.var("SCOPES")
            hint = (
                "Microsoft 365: https://outlook.office.com/IMAP.AccessAsUser.All (or "
                "SMTP.Send) and offline_access; Google Workspace: https://mail.google.com/"
            )
        else:
            where = client.var("TOKEN_URL")
            hint = "check the token endpoint URL"
        return TransportAuthError(
            f"{where}: refused by the token endpoint {client.token_url}: {reason}", hint=hint
        )

    # The optional cache in the state folder ---------------------------------------
    def _load_cache(self) -> None:
        if self.cache_file is None or not self.cache_file.exists():
            return
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
            if data.get("fingerprint") != self.client.fingerprint:
                return  # written for other settings
            token = _Token(
                str(data["access_token"]), float(data["expires_at"]), float(data["fetched_at"])
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return  # a damaged cache costs one token request, nothing more
        _remember(token.value, data.get("refresh_token"))
        self._token = token
        if isinstance(data.get("refresh_token"), str):
            self._refresh_token = data["refresh_token"]

    def _save_cache(self) -> None:
        if self.cache_file is None or self._token is None:
            return
        data = {
            "fingerprint": self.client.fingerprint,
            "access_token": self._token.value,
            "expires_at": self._token.expires_at,
            "fetched_at": self._token.fetched_at,
            "refresh_token": (
                self._refresh_token if self._refresh_token != self.client.refresh_token else None
            ),
        }
        folder = self.cache_file.parent
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = folder / f".{self.cache_file.name}.{os.getpid()}.tmp"
        # created 0600 from the start: the token is never readable by others, not even briefly
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(data, handle)
            os.replace(tmp, self.cache_file)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise


def _json(raw: bytes) -> dict[str, Any]:
    try:
        value = json.loads(raw.decode("utf-8", "replace"))
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _clean(text: str, limit: int = 200) -> str:
    """Provider text fit for one line of an error message, with no secret in it."""
    text = redact(_CONTROL.sub(" ", text)).strip()
    return text if len(text) <= limit else text[: limit - 1] + "…"


# SASL ---------------------------------------------------------------------------------
def sasl_response(mechanism: str, username: str, token: str, host: str, port: int) -> bytes:
    """The client's first message: XOAUTH2 (Google's, also Microsoft's) or OAUTHBEARER."""
    if mechanism.lower() == "oauthbearer":
        # RFC 7628: a GS2 header whose authzid escapes "," and "=", then key=value pairs
        authzid = username.replace("=", "=3D").replace(",", "=2C")
        text = f"n,a={authzid},\x01host={host}\x01port={port}\x01auth=Bearer {token}\x01\x01"
    else:
        text = f"user={username}\x01auth=Bearer {token}\x01\x01"
    return text.encode("utf-8")


def sasl_error(challenge: bytes) -> str:
    """What a server's error challenge (a JSON object) says: ``status 401, scope mail``."""
    data = _json(challenge)
    parts = [f"{k} {_clean(str(data[k]), 100)}" for k in ("status", "scope") if k in data]
    return ", ".join(parts)


# Settings -----------------------------------------------------------------------------
def token_source(settings: Settings, channel: Literal["imap", "smtp"]) -> TokenSource:
    """The token source ``{NEWSLETTER_IMAP,SMTP}_OAUTH_*`` describe; ConfigError names
    the first missing setting."""
    prefix = f"{PREFIXES[channel]}_OAUTH"
    auth_var = f"{PREFIXES[channel]}_AUTH"

    def get(name: str) -> str | None:
        value = getattr(settings, f"{channel}_oauth_{name}")
        if value is not None and hasattr(value, "get_secret_value"):
            value = value.get_secret_value()
        return value.strip() if isinstance(value, str) and value.strip() else None

    flow: Flow = getattr(settings, f"{channel}_oauth_flow")
    needed = ["token_url", "client_id"]
    needed += ["refresh_token"] if flow == "refresh_token" else ["client_secret", "scopes"]
    for name in needed:
        if get(name) is None:
            raise ConfigError(
                f"{prefix}_{name.upper()} is not set: {auth_var}=oauth2 "
                f"({prefix}_FLOW={flow}) needs it",
                hint="the README's mailbox section shows the settings for Microsoft 365 "
                "and Google Workspace",
            )
    client = OAuthClient(
        prefix=prefix,
        token_url=get("token_url") or "",
        client_id=get("client_id") or "",
        client_secret=get("client_secret"),
        refresh_token=get("refresh_token") if flow == "refresh_token" else None,
        scopes=tuple((get("scopes") or "").split()),
        flow=flow,
    )
    cache = settings.state_dir / "oauth" / f"{channel}.json" if settings.oauth_token_cache else None
    return TokenSource(client, cache_file=cache)
