"""`newsletter doctor`, `newsletter dkim keygen`, and the send asking doctor first:
exact messages and exit codes, DNS from a server on 127.0.0.1."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner, Result

from newsletter.cli.app import app
from newsletter.config import load_settings
from newsletter.delivery.dkim_keys import generate_key, read_key, write_key
from newsletter.web import create_app
from tests.doctor.conftest import good_zone
from tests.support.dkimkit import key_record, verify
from tests.support.dns_server import DnsServer
from tests.support.sendkit import SEND_SETTINGS, write_subscribers
from tests.support.smtp_server import SmtpServer, self_signed
from tests.support.webserver import running


def invoke(args: list[str], monkeypatch: pytest.MonkeyPatch, **env: str) -> Result:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return CliRunner().invoke(app, args)


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


def test_doctor_on_the_shipped_defaults_says_what_a_real_send_needs(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(["doctor"], monkeypatch)
    assert result.exit_code == 1
    assert result.stdout.splitlines() == [
        "transport: outbox (files in outbox/, nothing is sent): no DNS checked for example.org",
        "FAIL transport: a real send needs a relay: SMTP (with DKIM signing) or SendGrid",
        "     fix: NEWSLETTER_TRANSPORT=smtp with SMTP_HOST, SMTP_USERNAME, SMTP_PASSWORD and "
        "NEWSLETTER_DKIM_KEY_FILE (newsletter dkim keygen);",
        "          or NEWSLETTER_TRANSPORT=sendgrid with SENDGRID_API_KEY",
        "FAIL unsubscribe: no NEWSLETTER_PUBLIC_URL: mail carries a mailto List-Unsubscribe "
        "only, and Gmail and Yahoo require https one-click (RFC 8058) of bulk senders",
        "     fix: NEWSLETTER_PUBLIC_URL=https://digest.example.org   (where `newsletter serve` "
        "runs)",
        "FAIL secret: NEWSLETTER_SECRET_KEY is not set: it signs unsubscribe and confirm links",
        "     fix: make one with: python3 -c 'import secrets; print(secrets.token_urlsafe(32))' "
        "and paste the printed text into .env as NEWSLETTER_SECRET_KEY=<that text> (.env is "
        "not run by a shell: $(...) there would become the key itself)",
        "then publish for example.org: one SPF record naming the relay, the DKIM key, a DMARC "
        "record at _dmarc.example.org; and run `newsletter doctor` again",
        "3 checks: 3 failed, 0 warnings",
    ]


def test_doctor_passes_a_good_domain_with_serve_reachable(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dns: DnsServer
) -> None:
    key = generate_key("rsa")
    write_key(key, home / "dkim.key")
    dns.zone = good_zone(key)
    cert, cert_key = self_signed(tmp_path)
    web = load_settings(None, home=home, **SEND_SETTINGS)
    with running(create_app(web), tls=(cert, cert_key)) as url:
        env = {
            "NEWSLETTER_FROM": "digest@example.org",
            "NEWSLETTER_TRANSPORT": "smtp",
            "SMTP_HOST": "mail.example.org",
            "NEWSLETTER_DKIM_KEY_FILE": "dkim.key",
            "NEWSLETTER_PUBLIC_URL": url,
            "NEWSLETTER_SECRET_KEY": "doctor-cli-secret-0123456789-Qw8rT",
            "NEWSLETTER_DNS_SERVER": dns.address,
            "NEWSLETTER_DNS_TIMEOUT": "2",
            "SSL_CERT_FILE": str(cert),  # trust the test's certificate for the HEAD request
        }
        result = invoke(["doctor"], monkeypatch, **env)
        as_json = invoke(["doctor", "--json"], monkeypatch)
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == f"transport: smtp, From digest@example.org, DNS {dns.address}"
    assert [line.split(":")[0] for line in lines[1:-1]] == [
        "ok   spf",
        "ok   dkim",
        "ok   dmarc",
        "ok   alignment",
        "ok   unsubscribe",
        "ok   secret",
        "ok   rdns",
        "ok   serve",
        "ok   list",
    ]
    assert f"ok   serve: HEAD {url}/ answered 200" in lines
    assert lines[-1] == "9 checks: 0 failed, 0 warnings"
    assert as_json.exit_code == 0
    report = json.loads(as_json.stdout)
    assert report["passed"] is True
    assert [f["area"] for f in report["findings"]][:3] == ["spf", "dkim", "dmarc"]


def test_doctor_says_when_serve_is_not_reachable(
    home: Path, monkeypatch: pytest.MonkeyPatch, dns: DnsServer
) -> None:
    key = generate_key("rsa")
    write_key(key, home / "dkim.key")
    dns.zone = good_zone(key)
    env = {
        "NEWSLETTER_FROM": "digest@example.org",
        "NEWSLETTER_TRANSPORT": "smtp",
        "SMTP_HOST": "mail.example.org",
        "NEWSLETTER_DKIM_KEY_FILE": "dkim.key",
        "NEWSLETTER_PUBLIC_URL": "https://127.0.0.1:9",
        "NEWSLETTER_SECRET_KEY": "doctor-cli-secret-0123456789-Qw8rT",
        "NEWSLETTER_DNS_SERVER": dns.address,
        "NEWSLETTER_DNS_TIMEOUT": "2",  # the conftest's 0.2 s is for a server that never answers
    }
    result = invoke(["doctor", "--json"], monkeypatch, **env)
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    [serve] = [f for f in report["findings"] if f["area"] == "serve"]
    assert serve["status"] == "fail"
    assert serve["message"].startswith("https://127.0.0.1:9/ is not reachable (")
    assert serve["fix"] == "run `newsletter serve` behind a TLS proxy at https://127.0.0.1:9"


def test_unreachable_dns_is_one_clear_error(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # the autouse environment points DNS at a port on 127.0.0.1 that never answers
    result = invoke(
        ["doctor"], monkeypatch, NEWSLETTER_TRANSPORT="smtp", SMTP_HOST="mail.example.org"
    )
    assert result.exit_code == 1
    assert result.stdout == ""
    assert re.fullmatch(
        r"error: DNS 127\.0\.0\.1:\d+: no answer within 0\.2 s \(asking A mail\.example\.org\)\n"
        r"hint: check the network, or set NEWSLETTER_DNS_SERVER to a resolver that answers\n",
        result.stderr,
    ), result.stderr


def test_dkim_keygen_writes_the_key_and_prints_the_record(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    result = invoke(["dkim", "keygen", "--algorithm", "ed25519"], monkeypatch)
    assert result.exit_code == 0, result.output
    key = read_key(home / "dkim.key")
    assert result.stdout.splitlines() == [
        "wrote dkim.key (ed25519, readable by you only; keep it out of version control)",
        "publish this DNS record:",
        f'  newsletter._domainkey.example.org. TXT "v=DKIM1; k=ed25519; p={key.public}"',
        "then set NEWSLETTER_DKIM_KEY_FILE=dkim.key and run `newsletter doctor`",
    ]
    again = invoke(["dkim", "keygen"], monkeypatch)
    assert again.exit_code == 3
    assert again.stderr == (
        "error: dkim.key: a key file is already there\n"
        "hint: a published key would stop matching; pass --force to replace it\n"
    )
    rsa = invoke(
        ["dkim", "keygen", "--force", "--out", "keys/rsa.key"],
        monkeypatch,
        NEWSLETTER_DKIM_SELECTOR="nl2026",
        NEWSLETTER_FROM="digest@news.example.org",
    )
    assert rsa.exit_code == 0, rsa.output
    record = read_key(home / "keys" / "rsa.key").dns_record()
    # over 255 characters: split into the strings a zone file takes
    assert f'  nl2026._domainkey.news.example.org. TXT "{record[:255]}" "{record[255:]}"' in (
        rsa.stdout.splitlines()
    )


def test_send_shows_doctors_failures_and_strict_refuses(
    home: Path, monkeypatch: pytest.MonkeyPatch, dns: DnsServer
) -> None:
    key = generate_key("rsa")
    write_key(key, home / "dkim.key")
    write_subscribers(home / "subscribers" / "subscribers.csv", 3)
    # --strict also refuses lint warnings: give the sample's placeholder links real targets
    issue = home / "issues" / "vol-2.19.yaml"
    issue.write_text(issue.read_text().replace("](#)", "](https://example.org/link)"))
    # everything right but DMARC; the relay is this machine
    dns.zone = 'example.org. 60 TXT "v=spf1 ip4:127.0.0.1 -all"\n' + key_record(key)
    with SmtpServer() as server:
        env = {
            "NEWSLETTER_FROM": SEND_SETTINGS["sender"],
            "NEWSLETTER_PUBLIC_URL": SEND_SETTINGS["public_url"],
            "NEWSLETTER_SECRET_KEY": SEND_SETTINGS["secret_key"],
            "NEWSLETTER_TRANSPORT": "smtp",
            "SMTP_HOST": "127.0.0.1",
            "SMTP_PORT": str(server.port),
            "SMTP_SECURITY": "none",
            "NEWSLETTER_DKIM_KEY_FILE": "dkim.key",
            "NEWSLETTER_DNS_SERVER": dns.address,
            "NEWSLETTER_DNS_TIMEOUT": "2",
        }
        refused = invoke(["send", "vol-2.19", "--yes", "--strict"], monkeypatch, **env)
        asked = len(dns.questions)
        sent = invoke(["send", "vol-2.19", "--yes"], monkeypatch)
        received = [m.data for m in server.handler.messages]
    assert refused.exit_code == 4
    assert "doctor: 1 check(s) failed; receivers may reject or junk this send:\n" in (
        refused.stdout
    )
    assert (
        "FAIL dmarc: no DMARC record at _dmarc.example.org: Gmail and Yahoo require one of "
        "bulk senders\n"
        '     fix: _dmarc.example.org. TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.org"\n'
    ) in refused.stdout
    assert refused.stderr == (
        "error: not sending: 1 deliverability check(s) failed (--strict)\n"
        "hint: fix them (`newsletter doctor` shows each with its fix), or send without "
        "--strict\n"
    )
    assert sent.exit_code == 0, sent.output
    assert "FAIL dmarc" in sent.stdout
    assert len(dns.questions) == asked, "the second send used the day's cached answers"
    assert len(received) == 3
    assert all(verify(data, dns.address) for data in received)
