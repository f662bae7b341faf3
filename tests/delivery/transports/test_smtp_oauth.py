"""SMTP sends that log in with XOAUTH2 / OAUTHBEARER (Microsoft 365, Google Workspace): an
aiosmtpd server over STARTTLS with a certificate from a local CA, checking each token
against the local provider's introspection endpoint."""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from newsletter.compose.message import MessageBuilder
from newsletter.config import load_settings
from newsletter.delivery.transports import Status, make_transport
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.errors import ConfigError, TransportAuthError
from tests.support.localca import LocalCA
from tests.support.oauth_provider import OAuthProvider
from tests.support.sendkit import SEND_SETTINGS, recipients
from tests.support.smtp_oauth import OAuthSmtpServer

MAILBOX = "digest@example.org"


@dataclass
class Relay:
    server: OAuthSmtpServer
    provider: OAuthProvider
    ca: LocalCA
    refresh_token: str

    def settings(self, home: Path, **extra: object) -> dict[str, object]:
        return {
            **SEND_SETTINGS,
            "transport": "smtp",
            "smtp_host": "localhost",
            "smtp_port": self.server.port,
            "smtp_security": "starttls",
            "smtp_ca_file": str(self.ca.cert_file),
            "smtp_username": MAILBOX,
            "smtp_auth": "oauth2",
            "smtp_oauth_token_url": self.provider.token_url,
            "smtp_oauth_client_id": "sender-app",
            "smtp_oauth_client_secret": "sender-secret",
            "smtp_oauth_refresh_token": self.refresh_token,
            "smtp_oauth_scopes": "https://mail.example.test/ offline_access",
            "concurrency": 3,
            "home": home,
            **extra,
        }


def _relay(tmp_path: Path, mechanisms: tuple[str, ...]) -> Iterator[Relay]:
    ca = LocalCA.create(tmp_path / "ca")
    cert, key = ca.issue(tmp_path / "relay", dns=["localhost"])
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    with OAuthProvider() as provider:
        provider.add_client("sender-app", "sender-secret", MAILBOX)
        with OAuthSmtpServer(provider, context, mechanisms=mechanisms) as server:
            yield Relay(server, provider, ca, provider.grant("sender-app", MAILBOX))


@pytest.fixture
def relay(tmp_path: Path) -> Iterator[Relay]:
    yield from _relay(tmp_path, ("XOAUTH2", "OAUTHBEARER"))


def test_a_send_authenticates_with_xoauth2(
    relay: Relay, builder: MessageBuilder, home: Path
) -> None:
    settings = load_settings(None, **relay.settings(home))
    transport = make_transport(settings, builder)
    assert transport.description == (
        f"smtp (localhost:{relay.server.port}, starttls, as {MAILBOX} (XOAUTH2), 3 connections)"
    )
    with transport:
        outcomes = transport.send(recipients(5))
    assert [o.status for o in outcomes] == [Status.SENT] * 5
    assert len(relay.server.handler.messages) == 5
    # three connections, each logged in with the one token fetched for them all
    assert relay.server.handler.logins == [("XOAUTH2", MAILBOX)] * 3
    assert len(relay.provider.token_requests) == 1
    assert len(set(relay.provider.introspections)) == 1


def test_oauthbearer(relay: Relay, builder: MessageBuilder, home: Path) -> None:
    settings = load_settings(
        None, **relay.settings(home, smtp_oauth_mechanism="oauthbearer", concurrency=1)
    )
    with make_transport(settings, builder) as transport:
        assert transport.send(recipients(1))[0].status is Status.SENT
    assert relay.server.handler.logins == [("OAUTHBEARER", MAILBOX)]


def test_a_revoked_token_is_renewed_once(relay: Relay, builder: MessageBuilder) -> None:
    from newsletter.oauth import OAuthClient, TokenSource

    client = OAuthClient(
        prefix="SMTP_OAUTH",
        token_url=relay.provider.token_url,
        client_id="sender-app",
        client_secret="sender-secret",
        refresh_token=relay.refresh_token,
    )
    source = TokenSource(client)
    source.token()
    relay.provider.revoke_all()
    source.clock = lambda: time.time() + 120  # a token from an earlier run, not brand new
    transport = SmtpTransport(
        builder,
        host="localhost",
        port=relay.server.port,
        username=MAILBOX,
        oauth=source,
        concurrency=1,
        ssl_context=ssl.create_default_context(cafile=str(relay.ca.cert_file)),
    )
    with transport:
        assert transport.send(recipients(1))[0].status is Status.SENT
    assert relay.server.handler.refusals == 1 and source.requests == 2


def test_a_token_for_another_mailbox_is_one_clear_error(
    relay: Relay, builder: MessageBuilder, home: Path
) -> None:
    other = relay.provider.grant("sender-app", "someone@example.org")
    settings = load_settings(None, **relay.settings(home, smtp_oauth_refresh_token=other))
    transport = make_transport(settings, builder)
    with pytest.raises(TransportAuthError) as caught:
        transport.open()
    assert str(caught.value) == (
        f"localhost:{relay.server.port} refused the XOAUTH2 login for '{MAILBOX}' with the "
        "access token from SMTP_OAUTH_TOKEN_URL: 535 5.7.8 Username and Password not accepted "
        "(status 401, scope https://mail.example.test/)"
    )
    assert len(relay.provider.token_requests) == 1  # a fresh token: no pointless retry
    assert relay.server.handler.messages == []


def test_wrong_refresh_token_names_the_setting(
    relay: Relay, builder: MessageBuilder, home: Path
) -> None:
    settings = load_settings(
        None, **relay.settings(home, smtp_oauth_refresh_token="rt-bogus-value")
    )
    with pytest.raises(
        TransportAuthError,
        match=r"^SMTP_OAUTH_REFRESH_TOKEN: refused by the "
        r"token endpoint http://127\.0\.0\.1:\d+/oauth2/token: invalid_grant",
    ):
        make_transport(settings, builder).open()
    assert relay.server.handler.logins == []


def test_a_server_without_the_mechanism(
    tmp_path: Path, builder: MessageBuilder, home: Path
) -> None:
    for relay in _relay(tmp_path, ("OAUTHBEARER",)):
        settings = load_settings(None, **relay.settings(home))
        with pytest.raises(
            TransportAuthError,
            match=r"does not offer AUTH XOAUTH2 \(it offers "
            r"OAUTHBEARER\)",
        ):
            make_transport(settings, builder).open()
        assert relay.provider.token_requests == []  # nothing asked before it could be used


def test_settings_oauth2_needs_tls_and_a_username(
    relay: Relay, builder: MessageBuilder, home: Path
) -> None:
    settings = load_settings(None, **relay.settings(home, smtp_security="none"))
    with pytest.raises(ConfigError, match=r"^SMTP_SECURITY=none: SMTP_AUTH=oauth2 would send"):
        make_transport(settings, builder)
    settings = load_settings(None, **relay.settings(home, smtp_username=""))
    with pytest.raises(ConfigError, match=r"^SMTP_USERNAME is not set: SMTP_AUTH=oauth2"):
        make_transport(settings, builder)


def test_cli_test_send_logs_in_with_xoauth2(
    relay: Relay, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from newsletter.cli.app import app

    env = {
        "NEWSLETTER_FROM": SEND_SETTINGS["sender"],
        "NEWSLETTER_CONTACT": SEND_SETTINGS["contact"],
        "NEWSLETTER_PUBLIC_URL": SEND_SETTINGS["public_url"],
        "NEWSLETTER_SECRET_KEY": SEND_SETTINGS["secret_key"],
        "NEWSLETTER_TRANSPORT": "smtp",
        "NEWSLETTER_CONCURRENCY": "1",
        "SMTP_HOST": "localhost",
        "SMTP_PORT": str(relay.server.port),
        "SMTP_SECURITY": "starttls",
        "SMTP_CA_FILE": str(relay.ca.cert_file),
        "SMTP_USERNAME": MAILBOX,
        "SMTP_AUTH": "oauth2",
        "SMTP_OAUTH_TOKEN_URL": relay.provider.token_url,
        "SMTP_OAUTH_CLIENT_ID": "sender-app",
        "SMTP_OAUTH_CLIENT_SECRET": "sender-secret",
        "SMTP_OAUTH_REFRESH_TOKEN": relay.refresh_token,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["send", "vol-2.19", "--to", "editor@example.org"])
    assert result.exit_code == 0, result.output
    (msg,) = relay.server.handler.messages
    assert msg.rcpt_tos == ["editor@example.org"]
    assert relay.server.handler.logins == [("XOAUTH2", MAILBOX)]
    for secret in (relay.refresh_token, "sender-secret", *relay.provider.issued):
        assert secret not in result.output


def test_the_relays_certificate_and_name_are_checked(
    relay: Relay, builder: MessageBuilder, home: Path
) -> None:
    from newsletter.errors import TransportError

    settings = load_settings(None, **relay.settings(home, smtp_ca_file=None))
    with pytest.raises(TransportError, match="unable to get local issuer certificate") as caught:
        make_transport(settings, builder).open()
    assert "set SMTP_CA_FILE" in (caught.value.hint or "")
    settings = load_settings(None, **relay.settings(home, smtp_host="127.0.0.1"))
    with pytest.raises(TransportError, match="IP address mismatch"):
        make_transport(settings, builder).open()
    assert relay.provider.token_requests == []  # no token is fetched for an untrusted server
