"""newsletter.oauth against a real token endpoint on 127.0.0.1: both flows, renewal before
expiry, rotation, the 0600 cache, refusals that name the setting, and SASL messages."""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsletter.config import load_settings
from newsletter.errors import ConfigError, TransportAuthError, TransportError
from newsletter.oauth import (
    OAuthClient,
    TokenSource,
    redact,
    sasl_error,
    sasl_response,
    token_source,
)
from newsletter.tls import client_tls_context
from tests.conftest import GOLDEN_SETTINGS
from tests.support.dovecot import free_port
from tests.support.oauth_provider import OAuthProvider


@pytest.fixture
def provider() -> Iterator[OAuthProvider]:
    with OAuthProvider() as p:
        p.add_client("app-1", "client-secret-1", "contact@example.org")
        yield p


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def refresh_client(provider: OAuthProvider, refresh_token: str, **kw: object) -> OAuthClient:
    return OAuthClient(
        prefix="NEWSLETTER_IMAP_OAUTH",
        token_url=provider.token_url,
        client_id="app-1",
        client_secret="client-secret-1",
        refresh_token=refresh_token,
        scopes=("mail", "offline_access"),
        **kw,  # type: ignore[arg-type]
    )


def test_refresh_flow_fetches_once_and_renews_before_expiry(provider: OAuthProvider) -> None:
    rt = provider.grant("app-1", "contact@example.org")
    clock = Clock()
    source = TokenSource(refresh_client(provider, rt), clock=clock)
    first = source.token()
    assert provider.introspect(first)["username"] == "contact@example.org"
    assert provider.token_requests == [
        {
            "grant_type": "refresh_token",
            "client_id": "app-1",
            "client_secret": "client-secret-1",
            "refresh_token": rt,
            "scope": "mail offline_access",
        }
    ]
    clock.now += 3600 - 300 - 1  # just inside the renewal margin's edge: kept
    assert source.token() == first
    assert source.requests == 1
    clock.now += 2  # within 5 minutes of expiry: renewed
    second = source.token()
    assert second != first and source.requests == 2


def test_short_lived_tokens_renew_at_half_life(provider: OAuthProvider) -> None:
    provider.lifetime = 120
    clock = Clock()
    source = TokenSource(
        refresh_client(provider, provider.grant("app-1", "a@example.org")), clock=clock
    )
    token = source.token()
    clock.now += 59
    assert source.token() == token
    clock.now += 2
    assert source.token() != token


def test_rotated_refresh_token_is_used_next(provider: OAuthProvider) -> None:
    provider.rotate_refresh_tokens = True
    rt = provider.grant("app-1", "contact@example.org")
    clock = Clock()
    source = TokenSource(refresh_client(provider, rt), clock=clock)
    source.token()
    clock.now += 3600
    source.token()  # the old refresh token is gone at the provider: this needs the new one
    assert provider.token_requests[1]["refresh_token"] != rt
    assert source.requests == 2


def test_client_credentials_flow(provider: OAuthProvider) -> None:
    client = OAuthClient(
        prefix="SMTP_OAUTH",
        token_url=provider.token_url,
        client_id="app-1",
        client_secret="client-secret-1",
        scopes=("https://outlook.office365.com/.default",),
        flow="client_credentials",
    )
    token = TokenSource(client).token()
    assert provider.token_requests[0]["grant_type"] == "client_credentials"
    assert "refresh_token" not in provider.token_requests[0]
    assert provider.introspect(token)["username"] == "contact@example.org"


def test_renew_after_a_refusal(provider: OAuthProvider) -> None:
    clock = Clock()
    source = TokenSource(
        refresh_client(provider, provider.grant("app-1", "a@example.org")), clock=clock
    )
    token = source.token()
    assert source.renew(token) is None  # fresh from the endpoint: another would not help
    clock.now += 120
    renewed = source.renew(token)
    assert renewed is not None and renewed != token
    assert source.renew(token) == renewed  # a second thread's refusal: no extra request
    assert source.requests == 2


def test_wrong_refresh_token_names_the_setting(provider: OAuthProvider) -> None:
    source = TokenSource(refresh_client(provider, "rt-not-a-real-refresh-token"))
    with pytest.raises(TransportAuthError) as caught:
        source.token()
    assert str(caught.value) == (
        f"NEWSLETTER_IMAP_OAUTH_REFRESH_TOKEN: refused by the token endpoint "
        f"{provider.token_url}: invalid_grant (Token has been expired or revoked.)"
    )
    assert "consent again" in (caught.value.hint or "")


def test_wrong_client_secret_names_the_settings(provider: OAuthProvider) -> None:
    rt = provider.grant("app-1", "a@example.org")
    client = OAuthClient(
        prefix="SMTP_OAUTH",
        token_url=provider.token_url,
        client_id="app-1",
        client_secret="not-the-secret",
        refresh_token=rt,
    )
    with pytest.raises(
        TransportAuthError,
        match=r"^SMTP_OAUTH_CLIENT_ID / SMTP_OAUTH_CLIENT_SECRET: "
        r"refused by the token endpoint .*: invalid_client \(unknown client\)$",
    ):
        TokenSource(client).token()


def test_unreachable_token_endpoint_names_the_url_setting() -> None:
    url = f"http://127.0.0.1:{free_port()}/token"
    client = OAuthClient(prefix="SMTP_OAUTH", token_url=url, client_id="x", refresh_token="y" * 10)
    with pytest.raises(
        TransportError, match=rf"^SMTP_OAUTH_TOKEN_URL: cannot reach the token endpoint {url}: "
    ):
        TokenSource(client, timeout=5).token()


def test_disk_cache_is_private_and_bound_to_the_settings(
    provider: OAuthProvider, tmp_path: Path
) -> None:
    rt = provider.grant("app-1", "contact@example.org")
    cache = tmp_path / "state" / "oauth" / "imap.json"
    token = TokenSource(refresh_client(provider, rt), cache_file=cache).token()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o600
    assert stat.S_IMODE(cache.parent.stat().st_mode) == 0o700
    # the next run (a new process, as far as the source knows) asks nobody
    again = TokenSource(refresh_client(provider, rt), cache_file=cache)
    assert again.token() == token and again.requests == 0
    # another refresh token in the settings: the cached token is not used for it
    other = TokenSource(
        refresh_client(provider, provider.grant("app-1", "b@example.org")), cache_file=cache
    )
    assert other.token() != token and other.requests == 1
    # a damaged cache costs one request, nothing more
    cache.write_text("{not json")
    assert TokenSource(refresh_client(provider, rt), cache_file=cache).token()


def test_secrets_stay_out_of_reprs_errors_and_logs(
    provider: OAuthProvider, caplog: pytest.LogCaptureFixture
) -> None:
    rt = provider.grant("app-1", "contact@example.org")
    source = TokenSource(refresh_client(provider, rt))
    with caplog.at_level(logging.DEBUG, logger="newsletter.oauth"):
        token = source.token()
        logging.getLogger("newsletter.oauth").debug("careless: %s %s", token, rt)
    text = caplog.text + repr(source) + repr(source.client)
    assert "new access token" in caplog.text
    for secret in (token, rt, "client-secret-1"):
        assert secret not in text
    assert "careless: [redacted] [redacted]" in caplog.text
    assert redact(f"Bearer {token}") == "Bearer [redacted]"


def test_sasl_messages() -> None:
    assert sasl_response("xoauth2", "contact@example.org", "tok", "imap.example.org", 993) == (
        b"user=contact@example.org\x01auth=Bearer tok\x01\x01"
    )
    assert sasl_response("OAUTHBEARER", "a,b=c@example.org", "tok", "mail.example.org", 587) == (
        b"n,a=a=2Cb=3Dc@example.org,\x01host=mail.example.org\x01port=587"
        b"\x01auth=Bearer tok\x01\x01"
    )
    assert (
        sasl_error(b'{"status":"401","schemes":"bearer","scope":"mail"}')
        == "status 401, scope mail"
    )
    assert sasl_error(b"not json") == ""


def test_settings_name_what_is_missing(home: Path) -> None:
    settings = load_settings(None, **GOLDEN_SETTINGS, imap_auth="oauth2")
    with pytest.raises(
        ConfigError,
        match=r"^NEWSLETTER_IMAP_OAUTH_TOKEN_URL is not set: "
        r"NEWSLETTER_IMAP_AUTH=oauth2 \(NEWSLETTER_IMAP_OAUTH_FLOW=refresh_token\)",
    ):
        token_source(settings, "imap")
    settings = load_settings(
        None,
        **GOLDEN_SETTINGS,
        smtp_auth="oauth2",
        smtp_oauth_flow="client_credentials",
        smtp_oauth_token_url="https://login.microsoftonline.com/tenant/oauth2/v2.0/token",
        smtp_oauth_client_id="app",
        smtp_oauth_client_secret="s3cret-value",
    )
    with pytest.raises(ConfigError, match=r"^SMTP_OAUTH_SCOPES is not set"):
        token_source(settings, "smtp")
    source = token_source(settings.model_copy(update={"smtp_oauth_scopes": "a b"}), "smtp")
    assert source.client.scopes == ("a", "b") and source.cache_file is None
    cached = settings.model_copy(update={"smtp_oauth_scopes": "a", "oauth_token_cache": True})
    assert token_source(cached, "smtp").cache_file == Path(".newsletter/oauth/smtp.json")
    with pytest.raises(ConfigError, match=r"SMTP_OAUTH_TOKEN_URL: not an https URL"):
        load_settings(None, smtp_oauth_token_url="http://login.example.com/token")


def test_ca_file_that_cannot_be_used_names_the_setting(tmp_path: Path) -> None:
    missing = tmp_path / "missing.pem"
    with pytest.raises(ConfigError, match=rf"^NEWSLETTER_IMAP_CA_FILE: cannot use {missing} "):
        client_tls_context(missing, "NEWSLETTER_IMAP_CA_FILE")
    assert client_tls_context(None, "X").check_hostname
