"""A DNS server on 127.0.0.1 with a sending domain's records, good until a test breaks
one, and settings for a direct SMTP send signed with a key published there."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.config import Settings, load_settings
from newsletter.delivery.dkim_keys import DkimKey, generate_key, write_key
from tests.support.dkimkit import key_record
from tests.support.dns_server import DnsServer

RELAY = "mail.example.org"
RELAY_IP = "192.0.2.10"
SPF = 'example.org. 60 TXT "v=spf1 a:mail.example.org include:_spf.example.net ~all"\n'
DMARC = '_dmarc.example.org. 60 TXT "v=DMARC1; p=quarantine; rua=mailto:dmarc@example.org"\n'
#: a domain authenticated with SendGrid (SPF include, the two DKIM CNAMEs)
SENDGRID = (
    'example.org. 60 TXT "v=spf1 include:sendgrid.net ~all"\n'
    'sendgrid.net. 60 TXT "v=spf1 ip4:167.89.0.0/17 ~all"\n'
    "s1._domainkey.example.org. 60 CNAME s1.domainkey.u1.wl1.sendgrid.net.\n"
    's1.domainkey.u1.wl1.sendgrid.net. 60 TXT "v=DKIM1; k=rsa; p=AAAA"\n'
    "s2._domainkey.example.org. 60 CNAME s2.domainkey.u1.wl1.sendgrid.net.\n"
    's2.domainkey.u1.wl1.sendgrid.net. 60 TXT "v=DKIM1; k=rsa; p=BBBB"\n'
)
BASE = (
    '_spf.example.net. 60 TXT "v=spf1 ip4:198.51.100.0/24 -all"\n'
    f"{RELAY}. 60 A {RELAY_IP}\n"
    "10.2.0.192.in-addr.arpa. 60 PTR mail.example.org.\n"
)


@pytest.fixture(scope="module")
def rsa_key() -> DkimKey:
    return generate_key("rsa")


@pytest.fixture(scope="module")
def dns() -> Iterator[DnsServer]:
    """One server per module (stopping one takes a second); each test sets its zone."""
    with DnsServer() as server:
        yield server


def good_zone(key: DkimKey) -> str:
    return SPF + DMARC + BASE + key_record(key)


def smtp_settings(home: Path, dns: DnsServer, key: DkimKey, **overrides: Any) -> Settings:
    """A direct SMTP send from digest@example.org through mail.example.org, DKIM-signed."""
    key_file = home / "dkim.key"
    if not key_file.exists():
        write_key(key, key_file)
    given: dict[str, Any] = {
        "sender": "US-Japan Alliance Digest <digest@example.org>",
        "transport": "smtp",
        "smtp_host": RELAY,
        "public_url": "https://digest.example.org",
        "secret_key": "doctor-test-secret-key-0123456789",
        "dkim_key_file": key_file,
        "dns_server": dns.address,
        "dns_timeout": 2.0,
    }
    given.update(overrides)
    return load_settings(None, home=home, **given)
