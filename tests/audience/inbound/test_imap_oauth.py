"""The contact mailbox as Microsoft 365 and Google Workspace serve it: a real Dovecot with a
certificate from a CA made here, implicit TLS and STARTTLS, and its oauth2 passdb asking
a local introspection endpoint about the token our refresh-token flow fetched."""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from newsletter.audience.inbound.imap import ImapSource
from newsletter.audience.inbound.records import Records
from newsletter.audience.signups import process_source
from newsletter.cli.app import app
from newsletter.config import Settings, load_settings
from newsletter.errors import ConfigError, ExitCode, NewsletterError, TransportAuthError
from tests.conftest import GOLDEN_SETTINGS
from tests.support.dovecot import DOVECOT, USER, DovecotServer, start_dovecot
from tests.support.localca import LocalCA
from tests.support.oauth_provider import INTROSPECTION_USER, OAuthProvider
from tests.support.signupkit import SECRET, load, statuses

CLIENT_ID, CLIENT_SECRET = "newsletter-app", "app-client-secret"


@dataclass
class Mailhost:
    dovecot: DovecotServer
    provider: OAuthProvider
    ca: LocalCA
    refresh_token: str


@pytest.fixture(scope="module")
def mailhost(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Mailhost]:
    if not DOVECOT.exists():
        pytest.fail(f"{DOVECOT} not found: run `bash scripts/test.sh` (it installs dovecot-imapd)")
    folder = tmp_path_factory.mktemp("mailhost")
    ca = LocalCA.create(folder / "ca")
    # a name only, no IP address: connecting to 127.0.0.1 must fail the host name check
    cert = ca.issue(folder / "server", dns=["localhost"])
    with OAuthProvider() as provider:
        provider.add_client(CLIENT_ID, CLIENT_SECRET, USER)
        user, password = INTROSPECTION_USER
        url = provider.introspection_url.replace("http://", f"http://{user}:{password}@")
        with start_dovecot(tls=cert, introspection_url=url) as dovecot:
            yield Mailhost(dovecot, provider, ca, provider.grant(CLIENT_ID, USER))


@pytest.fixture(autouse=True)
def _empty_list(home: Path) -> None:
    (home / "subscribers" / "subscribers.csv").unlink(missing_ok=True)


_FOLDERS = iter(range(1, 1000))


def oauth_env(host: Mailhost, security: str = "tls", **extra: str) -> dict[str, str]:
    """The settings a Microsoft 365 or Google Workspace mailbox needs, pointed here."""
    n = next(_FOLDERS)
    port = host.dovecot.imaps_port if security == "tls" else host.dovecot.port
    env = {
        "NEWSLETTER_IMAP_HOST": "localhost",
        "NEWSLETTER_IMAP_PORT": str(port),
        "NEWSLETTER_IMAP_SECURITY": security,
        "NEWSLETTER_IMAP_CA_FILE": str(host.ca.cert_file),
        "NEWSLETTER_IMAP_USERNAME": USER,
        "NEWSLETTER_IMAP_AUTH": "oauth2",
        "NEWSLETTER_IMAP_OAUTH_TOKEN_URL": host.provider.token_url,
        "NEWSLETTER_IMAP_OAUTH_CLIENT_ID": CLIENT_ID,
        "NEWSLETTER_IMAP_OAUTH_CLIENT_SECRET": CLIENT_SECRET,
        "NEWSLETTER_IMAP_OAUTH_REFRESH_TOKEN": host.refresh_token,
        "NEWSLETTER_IMAP_OAUTH_SCOPES": "mail offline_access",
        "NEWSLETTER_IMAP_FOLDER": f"OAuth{n}",
        "NEWSLETTER_IMAP_DONE_FOLDER": f"OAuth{n} Done",
    }
    env.update(extra)
    return env


def settings_from(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    return load_settings(None, **GOLDEN_SETTINGS)


def append(server: DovecotServer, folder: str, *messages: bytes) -> None:
    imap = server.connect()
    try:
        imap.create(f'"{folder}"')
        for raw in messages:
            assert imap.append(f'"{folder}"', None, None, raw)[0] == "OK"
    finally:
        imap.logout()


def count(server: DovecotServer, folder: str) -> int:
    imap = server.connect()
    try:
        typ, data = imap.select(f'"{folder}"', readonly=True)
        assert typ == "OK", data
        return int(data[0] or 0)
    finally:
        imap.logout()


def run(settings: Settings) -> list[str]:
    with Records.from_settings(settings) as records:
        source = ImapSource.from_settings(settings, records=records)
        return [o.action for o in process_source(source, settings, records=records)]


def test_signups_process_reads_the_mailbox_over_tls_with_xoauth2(
    mailhost: Mailhost, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = oauth_env(mailhost, "tls")
    folder = env["NEWSLETTER_IMAP_FOLDER"]
    append(mailhost.dovecot, folder, load("01-plain-please-add-me.eml"), load("22-question.eml"))
    (home / ".env").write_text(
        "NEWSLETTER_FROM=US-Japan Alliance Digest <digest@example.org>\n"
        "NEWSLETTER_CONTACT=digest@example.org\n"
        "NEWSLETTER_PUBLIC_URL=https://digest.example.org\n"
        f"NEWSLETTER_SECRET_KEY={SECRET}\n"
    )
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    before = len(mailhost.provider.token_requests)
    result = CliRunner().invoke(app, ["signups", "process"])
    assert result.exit_code == 0, result.output
    port = mailhost.dovecot.imaps_port
    assert result.output.splitlines()[-2] == (
        f"imap:{USER}@localhost:{port}/{folder}: 2 messages: 1 confirmation sent, 1 review; "
        "1 confirmation email sent; 1 for review"
    )
    assert count(mailhost.dovecot, folder) == 0
    assert count(mailhost.dovecot, env["NEWSLETTER_IMAP_DONE_FOLDER"]) == 2
    assert statuses(load_settings(None, **GOLDEN_SETTINGS)) == {"alice@example.com": "pending"}
    # one token from our refresh-token flow, which Dovecot checked by introspection
    requests = mailhost.provider.token_requests[before:]
    assert [r["grant_type"] for r in requests] == ["refresh_token"]
    assert mailhost.provider.introspections[-1] in mailhost.provider.issued
    assert "method=XOAUTH2, rip=127.0.0.1, lip=127.0.0.1" in mailhost.dovecot.log
    for secret in (mailhost.refresh_token, CLIENT_SECRET, mailhost.provider.introspections[-1]):
        assert secret not in result.output


@pytest.mark.parametrize(
    ("security", "mechanism"),
    [("tls", "oauthbearer"), ("starttls", "xoauth2"), ("starttls", "oauthbearer")],
)
def test_each_tls_mode_and_mechanism(
    mailhost: Mailhost, home: Path, monkeypatch: pytest.MonkeyPatch, security: str, mechanism: str
) -> None:
    env = oauth_env(mailhost, security, NEWSLETTER_IMAP_OAUTH_MECHANISM=mechanism)
    settings = settings_from(env, monkeypatch)
    append(mailhost.dovecot, settings.imap_folder, load("01-plain-please-add-me.eml"))
    assert run(settings) == ["confirmation sent"]
    assert f"method={mechanism.upper()}, rip=127.0.0.1" in mailhost.dovecot.log


@pytest.mark.parametrize("security", ["tls", "starttls"])
def test_certificates_and_host_names_are_checked(
    mailhost: Mailhost, home: Path, monkeypatch: pytest.MonkeyPatch, security: str
) -> None:
    env = oauth_env(mailhost, security)
    del env["NEWSLETTER_IMAP_CA_FILE"]  # the system's CAs do not know the private one
    with pytest.raises(
        NewsletterError,
        match=r"cannot connect to the IMAP server .*"
        r"CERTIFICATE_VERIFY_FAILED.*unable to get local issuer certificate",
    ) as caught:
        run(settings_from(env, monkeypatch))
    assert "set NEWSLETTER_IMAP_CA_FILE" in (caught.value.hint or "")
    # the right CA, but a name the certificate does not carry
    env = oauth_env(mailhost, security, NEWSLETTER_IMAP_HOST="127.0.0.1")
    with pytest.raises(
        NewsletterError,
        match=r"^127\.0\.0\.1:\d+: cannot connect to the IMAP "
        rf"server \({security}\): .*IP address mismatch",
    ):
        run(settings_from(env, monkeypatch))


def test_wrong_refresh_token_is_one_error_naming_the_setting(
    mailhost: Mailhost, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = oauth_env(mailhost, NEWSLETTER_IMAP_OAUTH_REFRESH_TOKEN="rt-revoked-long-ago")
    (home / ".env").write_text(f"NEWSLETTER_SECRET_KEY={SECRET}\n")
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    result = CliRunner().invoke(app, ["signups", "process"])
    assert result.exit_code == ExitCode.FAILED
    assert result.stderr.splitlines()[0] == (
        "error: NEWSLETTER_IMAP_OAUTH_REFRESH_TOKEN: refused by the token endpoint "
        f"{mailhost.provider.token_url}: invalid_grant (Token has been expired or revoked.)"
    )
    assert "Traceback" not in result.output


def test_a_revoked_token_is_renewed_once(
    mailhost: Mailhost, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = settings_from(oauth_env(mailhost, NEWSLETTER_IMAP_FOLDER="INBOX"), monkeypatch)
    source = ImapSource.from_settings(settings)
    assert source.oauth is not None
    source.open()
    source.close()
    mailhost.provider.revoke_all()  # e.g. the admin signed the app out; our cache can't know
    source.oauth.clock = lambda: time.time() + 120  # the cached token is not brand new
    requests = source.oauth.requests
    source.open()  # refused, renewed, accepted
    source.close()
    assert source.oauth.requests == requests + 1


def test_a_token_for_another_mailbox_is_one_clear_error(
    mailhost: Mailhost, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = mailhost.provider.grant(CLIENT_ID, "someone-else")
    env = oauth_env(mailhost, NEWSLETTER_IMAP_OAUTH_REFRESH_TOKEN=other)
    settings = settings_from(env, monkeypatch)
    source = ImapSource.from_settings(settings)
    with pytest.raises(TransportAuthError) as caught:
        source.open()
    port = mailhost.dovecot.imaps_port
    assert str(caught.value) == (
        f"localhost:{port} refused the XOAUTH2 login for {USER} with the access token from "
        "NEWSLETTER_IMAP_OAUTH_TOKEN_URL: [AUTHENTICATIONFAILED] Authentication failed. "
        "(status 401, scope mail)"
    )
    assert source.oauth is not None and source.oauth.requests == 1  # no pointless retry
    assert source.imap is None


def test_oauth2_without_tls_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "NEWSLETTER_IMAP_HOST": "imap.example.org",
        "NEWSLETTER_IMAP_SECURITY": "none",
        "NEWSLETTER_IMAP_USERNAME": USER,
        "NEWSLETTER_IMAP_AUTH": "oauth2",
    }
    with pytest.raises(ConfigError, match=r"^NEWSLETTER_IMAP_SECURITY=none: .* in clear"):
        ImapSource.from_settings(settings_from(env, monkeypatch))
    env["NEWSLETTER_IMAP_SECURITY"] = "tls"
    with pytest.raises(ConfigError, match=r"^NEWSLETTER_IMAP_OAUTH_TOKEN_URL is not set"):
        ImapSource.from_settings(settings_from(env, monkeypatch))
