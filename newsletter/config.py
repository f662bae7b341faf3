"""Settings: built-in defaults, then `.env`, then the environment, then CLI overrides.

Loaded once per command with :func:`load_settings`; every problem is one
:class:`~newsletter.errors.ConfigError` that names the variable. Secrets come only from
`.env` or the environment and are never printed (``SecretStr``).
"""

from __future__ import annotations

import re
from email.utils import parseaddr
from pathlib import Path
from typing import Any, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator

from newsletter.emailsyntax import AddressSyntaxError, normalize_syntax
from newsletter.errors import ConfigError
from newsletter.lazyimport import deferring

with deferring("asyncio"):  # used only by pydantic-settings' own CLI runner
    from pydantic_settings import BaseSettings, SettingsConfigDict
from newsletter.tokens import SECRET_KEY_HINT, secret_key_problem

DEFAULT_FROM = "newsletter@example.org"
#: how the IMAP source and the SMTP transport log in
AuthMethod = Literal["password", "oauth2"]
OAuthMechanism = Literal["xoauth2", "oauthbearer"]
#: refresh_token: delegated (a person consented once); client_credentials: app-only
OAuthFlow = Literal["refresh_token", "client_credentials"]
PACKAGE_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"
_LABEL = r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9])?"
_DNS_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")


def _env(name: str) -> Any:
    return Field(None, validation_alias=AliasChoices(name))


def check_address(value: str) -> str:
    """Validate an address's syntax (no DNS) and return it normalised."""
    try:
        return normalize_syntax(value)
    except AddressSyntaxError as exc:
        raise ValueError(f"not a valid email address {value!r}: {exc}") from None


def split_mailbox(value: str) -> tuple[str, str]:
    """``'Name <a@b>'`` -> ``('Name', 'a@b')`` with the address validated."""
    if any(ch in value for ch in "\r\n"):
        raise ValueError("must not contain a line break")
    name, addr = parseaddr(value)
    if not addr or "@" not in addr:
        raise ValueError(f"not a valid mailbox {value!r} (expected 'Name <user@example.org>')")
    return name.strip(), check_address(addr)


class Settings(BaseSettings):
    """Every setting, by the environment variable that sets it."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        case_sensitive=True,
    )

    # Identity of the newsletter
    sender: str = Field(DEFAULT_FROM, validation_alias=AliasChoices("NEWSLETTER_FROM"))
    reply_to: str | None = _env("NEWSLETTER_REPLY_TO")
    contact: str | None = _env("NEWSLETTER_CONTACT")
    public_url: str | None = _env("NEWSLETTER_PUBLIC_URL")
    assets_url: str | None = _env("NEWSLETTER_ASSETS_URL")
    secret_key: SecretStr | None = _env("NEWSLETTER_SECRET_KEY")
    list_id: str | None = _env("NEWSLETTER_LIST_ID")
    # The language of the newsletter's fixed strings, mails and pages (en, ja); a reader's
    # own `language` column, or an issue's `language:`, wins where there is one.
    language: Literal["en", "ja"] = Field(
        "en", validation_alias=AliasChoices("NEWSLETTER_LANGUAGE")
    )

    # Where things live, relative to the newsletter's home (the current directory)
    home: Path = Field(Path("."), validation_alias=AliasChoices("NEWSLETTER_HOME"))

    # Delivery
    transport: Literal["outbox", "smtp", "sendgrid"] = Field(
        "outbox", validation_alias=AliasChoices("NEWSLETTER_TRANSPORT")
    )
    smtp_host: str = Field("localhost", validation_alias=AliasChoices("SMTP_HOST"))
    smtp_port: int | None = _env("SMTP_PORT")
    smtp_security: Literal["none", "starttls", "tls"] = Field(
        "starttls", validation_alias=AliasChoices("SMTP_SECURITY")
    )
    smtp_username: str | None = _env("SMTP_USERNAME")
    smtp_password: SecretStr | None = _env("SMTP_PASSWORD")
    smtp_timeout: float = Field(30.0, validation_alias=AliasChoices("SMTP_TIMEOUT"))
    # a private CA's certificates (PEM) to trust instead of the system's
    smtp_ca_file: Path | None = _env("SMTP_CA_FILE")
    # password (SMTP_USERNAME/_PASSWORD) or oauth2 (a bearer token from SMTP_OAUTH_*)
    smtp_auth: AuthMethod = Field("password", validation_alias=AliasChoices("SMTP_AUTH"))
    smtp_oauth_mechanism: OAuthMechanism = Field(
        "xoauth2", validation_alias=AliasChoices("SMTP_OAUTH_MECHANISM")
    )
    smtp_oauth_flow: OAuthFlow = Field(
        "refresh_token", validation_alias=AliasChoices("SMTP_OAUTH_FLOW")
    )
    smtp_oauth_token_url: str | None = _env("SMTP_OAUTH_TOKEN_URL")
    smtp_oauth_client_id: str | None = _env("SMTP_OAUTH_CLIENT_ID")
    smtp_oauth_client_secret: SecretStr | None = _env("SMTP_OAUTH_CLIENT_SECRET")
    smtp_oauth_refresh_token: SecretStr | None = _env("SMTP_OAUTH_REFRESH_TOKEN")
    smtp_oauth_scopes: str | None = _env("SMTP_OAUTH_SCOPES")
    sendgrid_api_key: SecretStr | None = _env("SENDGRID_API_KEY")
    sendgrid_api_host: str = Field(
        "https://api.sendgrid.com", validation_alias=AliasChoices("SENDGRID_API_HOST")
    )
    sendgrid_timeout: float = Field(30.0, validation_alias=AliasChoices("SENDGRID_TIMEOUT"))
    # how long one request may wait out 429s in all before the send stops (seconds)
    sendgrid_rate_limit_wait: float = Field(
        600.0, ge=0, validation_alias=AliasChoices("SENDGRID_RATE_LIMIT_WAIT")
    )
    sendgrid_tracking: bool = Field(False, validation_alias=AliasChoices("SENDGRID_TRACKING"))
    concurrency: int = Field(
        4, ge=1, le=64, validation_alias=AliasChoices("NEWSLETTER_CONCURRENCY")
    )

    # DKIM signing of direct SMTP sends, and the DNS `newsletter doctor` asks
    dkim_key_file: Path | None = _env("NEWSLETTER_DKIM_KEY_FILE")
    dkim_selector: str = Field(
        "newsletter", validation_alias=AliasChoices("NEWSLETTER_DKIM_SELECTOR")
    )
    dkim_domain: str | None = _env("NEWSLETTER_DKIM_DOMAIN")
    # the SMTP relay adds its own DKIM signature for our domain (so we need not sign)
    smtp_relay_signs: bool = Field(False, validation_alias=AliasChoices("SMTP_RELAY_SIGNS"))
    # "host" or "host:port" of the resolver to ask; unset: the system's resolvers
    dns_server: str | None = _env("NEWSLETTER_DNS_SERVER")
    dns_timeout: float = Field(5.0, gt=0, validation_alias=AliasChoices("NEWSLETTER_DNS_TIMEOUT"))

    # The contact mailbox (signups and unsubscribes arrive here)
    imap_host: str | None = _env("NEWSLETTER_IMAP_HOST")
    imap_port: int | None = _env("NEWSLETTER_IMAP_PORT")
    imap_security: Literal["none", "starttls", "tls"] = Field(
        "tls", validation_alias=AliasChoices("NEWSLETTER_IMAP_SECURITY")
    )
    imap_username: str | None = _env("NEWSLETTER_IMAP_USERNAME")
    imap_password: SecretStr | None = _env("NEWSLETTER_IMAP_PASSWORD")
    imap_ca_file: Path | None = _env("NEWSLETTER_IMAP_CA_FILE")
    imap_auth: AuthMethod = Field("password", validation_alias=AliasChoices("NEWSLETTER_IMAP_AUTH"))
    imap_oauth_mechanism: OAuthMechanism = Field(
        "xoauth2", validation_alias=AliasChoices("NEWSLETTER_IMAP_OAUTH_MECHANISM")
    )
    imap_oauth_flow: OAuthFlow = Field(
        "refresh_token", validation_alias=AliasChoices("NEWSLETTER_IMAP_OAUTH_FLOW")
    )
    imap_oauth_token_url: str | None = _env("NEWSLETTER_IMAP_OAUTH_TOKEN_URL")
    imap_oauth_client_id: str | None = _env("NEWSLETTER_IMAP_OAUTH_CLIENT_ID")
    imap_oauth_client_secret: SecretStr | None = _env("NEWSLETTER_IMAP_OAUTH_CLIENT_SECRET")
    imap_oauth_refresh_token: SecretStr | None = _env("NEWSLETTER_IMAP_OAUTH_REFRESH_TOKEN")
    imap_oauth_scopes: str | None = _env("NEWSLETTER_IMAP_OAUTH_SCOPES")
    # keep OAuth access tokens in the state folder (mode 0600) between runs
    oauth_token_cache: bool = Field(
        False, validation_alias=AliasChoices("NEWSLETTER_OAUTH_TOKEN_CACHE")
    )
    imap_folder: str = Field("INBOX", validation_alias=AliasChoices("NEWSLETTER_IMAP_FOLDER"))
    imap_done_folder: str = Field(
        "Processed", validation_alias=AliasChoices("NEWSLETTER_IMAP_DONE_FOLDER")
    )
    # confirmation emails per address per 24 hours
    confirm_rate_limit: int = Field(
        3, ge=1, validation_alias=AliasChoices("NEWSLETTER_CONFIRM_RATE_LIMIT")
    )

    # Bounces (VERP) and inbound authentication
    # envelope sender of SMTP sends becomes <local><separator><token>@<domain>; unset: off
    bounce_address: str | None = _env("NEWSLETTER_BOUNCE_ADDRESS")
    bounce_separator: str = Field(
        "+",
        min_length=1,
        max_length=1,
        validation_alias=AliasChoices("NEWSLETTER_BOUNCE_SEPARATOR"),
    )
    # temporary failures on this many distinct issues within the window: bounced
    soft_bounce_limit: int = Field(
        3, ge=1, validation_alias=AliasChoices("NEWSLETTER_SOFT_BOUNCE_LIMIT")
    )
    soft_bounce_days: int = Field(
        60, ge=1, validation_alias=AliasChoices("NEWSLETTER_SOFT_BOUNCE_DAYS")
    )
    # authserv-ids whose Authentication-Results headers we trust (our own receiving side)
    trusted_authserv_ids: str = Field(
        "", validation_alias=AliasChoices("NEWSLETTER_TRUSTED_AUTHSERV_IDS")
    )

    # `newsletter serve`
    serve_host: str = Field("127.0.0.1", validation_alias=AliasChoices("NEWSLETTER_SERVE_HOST"))
    serve_port: int = Field(8000, validation_alias=AliasChoices("NEWSLETTER_SERVE_PORT"))
    # Reverse proxies whose X-Forwarded-For / Forwarded headers name the real client
    # (addresses or CIDRs, comma- or space-separated); nobody's by default
    trusted_proxies: str = Field("", validation_alias=AliasChoices("NEWSLETTER_TRUSTED_PROXIES"))
    # SendGrid Inbound Parse posts to /inbound/<secret> (an unguessable path)
    inbound_secret: SecretStr | None = _env("NEWSLETTER_INBOUND_SECRET")
    # SendGrid Event Webhook verification key (base64 DER of the ECDSA P-256 public key)
    sendgrid_webhook_public_key: str | None = _env("SENDGRID_WEBHOOK_PUBLIC_KEY")
    # `serve` folds the consent ledger into the CSV after this many quiet seconds, once
    # this many changes wait, or at most this many seconds after the first one
    fold_quiet_seconds: float = Field(
        1.0, ge=0, validation_alias=AliasChoices("NEWSLETTER_FOLD_QUIET_SECONDS")
    )
    fold_batch: int = Field(1000, ge=1, validation_alias=AliasChoices("NEWSLETTER_FOLD_BATCH"))
    fold_max_delay: float = Field(
        5.0, ge=0, validation_alias=AliasChoices("NEWSLETTER_FOLD_MAX_DELAY")
    )
    report_token: SecretStr | None = _env("NEWSLETTER_REPORT_TOKEN")

    @field_validator("sender")
    @classmethod
    def _valid_sender(cls, value: str) -> str:
        split_mailbox(value)
        return value.strip()

    @field_validator("reply_to", "contact")
    @classmethod
    def _valid_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_address(value.strip())

    @field_validator("bounce_address")
    @classmethod
    def _valid_bounce_address(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        return check_address(value.strip())

    @field_validator("bounce_separator")
    @classmethod
    def _valid_separator(cls, value: str) -> str:
        if value not in "+-=._":
            raise ValueError(f"must be one of + - = . _ (got {value!r})")
        return value

    @field_validator("smtp_oauth_token_url", "imap_oauth_token_url")
    @classmethod
    def _valid_token_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        # the client secret and refresh token go in the body: never in clear, except
        # to a token endpoint on this machine (a local relay, the tests)
        loopback = re.match(r"^http://(127\.0\.0\.1|localhost|\[::1\])(:\d+)?/", value)
        if not (re.match(r"^https://[^\s/]+", value) or loopback):
            raise ValueError(f"not an https URL: {value!r} (the client secret would go in clear)")
        return value

    @field_validator("public_url", "assets_url", "sendgrid_api_host")
    @classmethod
    def _valid_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not re.match(r"^https?://[^\s/]+", value):
            raise ValueError(f"not an http(s) URL: {value!r}")
        return value

    @field_validator("dkim_key_file", mode="before")
    @classmethod
    def _unset_if_empty(cls, value: Any) -> Any:
        # `NEWSLETTER_DKIM_KEY_FILE=` in .env means "do not sign", not the current folder
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("dkim_selector", "dkim_domain")
    @classmethod
    def _valid_dns_name(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip(".").lower()
        if not _DNS_NAME.fullmatch(value):
            raise ValueError(f"not a DNS name: {value!r}")
        return value

    @field_validator("dkim_selector", mode="after")
    @classmethod
    def _selector_given(cls, value: str | None) -> str:
        if not value:
            raise ValueError("must not be empty (e.g. newsletter)")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _valid_proxies(cls, value: str) -> str:
        import ipaddress

        for item in re.split(r"[\s,]+", value.strip()):
            if item:
                try:
                    ipaddress.ip_network(item, strict=False)
                except ValueError:
                    raise ValueError(f"not an IP address or CIDR network: {item!r}") from None
        return value.strip()

    @field_validator("list_id")
    @classmethod
    def _valid_list_id(cls, value: str | None) -> str | None:
        if value is not None and any(ord(ch) < 32 for ch in value):
            raise ValueError("must not contain control characters")
        return value

    # Derived values -----------------------------------------------------------------
    @property
    def from_name(self) -> str:
        return split_mailbox(self.sender)[0]

    @property
    def from_address(self) -> str:
        return split_mailbox(self.sender)[1]

    @property
    def contact_address(self) -> str:
        return self.contact or self.from_address

    @property
    def reply_to_address(self) -> str:
        return self.reply_to or self.contact_address

    @property
    def sender_domain(self) -> str:
        return self.from_address.rsplit("@", 1)[1]

    @property
    def authserv_ids(self) -> frozenset[str]:
        """The trusted authserv-ids, lowercased."""
        return frozenset(
            part.strip().lower() for part in self.trusted_authserv_ids.split(",") if part.strip()
        )

    @property
    def dkim_signing_domain(self) -> str:
        """The d= of our DKIM signatures: the From domain unless set otherwise."""
        return self.dkim_domain or self.sender_domain

    @property
    def issues_dir(self) -> Path:
        return self.home / "issues"

    @property
    def templates_dir(self) -> Path:
        local = self.home / "templates"
        return local if (local / "email.html.j2").exists() else PACKAGE_TEMPLATES

    @property
    def subscribers_file(self) -> Path:
        return self.home / "subscribers" / "subscribers.csv"

    @property
    def build_dir(self) -> Path:
        return self.home / "build"

    @property
    def outbox_dir(self) -> Path:
        return self.home / "outbox"

    @property
    def state_dir(self) -> Path:
        """Private state: the send journal, inbound records. Not for hand edits."""
        return self.home / ".newsletter"

    def require_secret(self) -> str:
        """NEWSLETTER_SECRET_KEY; refused if missing, short or guessable."""
        if self.secret_key is None or not self.secret_key.get_secret_value():
            raise ConfigError(
                "NEWSLETTER_SECRET_KEY is not set: it signs unsubscribe and confirm links",
                hint=SECRET_KEY_HINT,
            )
        value = self.secret_key.get_secret_value()
        problem = secret_key_problem(value)
        if problem is not None:
            raise ConfigError(f"NEWSLETTER_SECRET_KEY {problem}", hint=SECRET_KEY_HINT)
        return value


def _variable_for(loc: tuple[int | str, ...]) -> str:
    name = str(loc[0]) if loc else "?"
    field = Settings.model_fields.get(name)
    if field is not None and isinstance(field.validation_alias, AliasChoices):
        first = field.validation_alias.choices[0]
        return str(first)
    return name


def load_settings(env_file: str | Path | None = ".env", **overrides: Any) -> Settings:
    """Load settings once; CLI options are passed as ``overrides`` (None means unset)."""
    given = {k: v for k, v in overrides.items() if v is not None}
    try:
        return Settings(_env_file=env_file, **given)  # type: ignore[call-arg]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            msg = str(err["msg"]).removeprefix("Value error, ")
            lines.append(f"{_variable_for(err['loc'])}: {msg}")
        raise ConfigError("invalid setting: " + "; ".join(lines)) from None
