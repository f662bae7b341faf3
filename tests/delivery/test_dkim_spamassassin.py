"""SpamAssassin's DKIM rules (Mail::DKIM) see a valid signature on our signed mail, with
the key from a DNS server on 127.0.0.1 (``dns_server``); no question leaves the machine.

RSA only: Debian 12's Mail::DKIM (1.20230212) predates its Ed25519 support and reports
"UNSUPPORTED ALGORITHM ED25519-SHA256"; dkimpy verifies Ed25519 in test_dkim.py.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.compose.message import MessageBuilder
from newsletter.delivery.dkim import DkimSigner
from newsletter.delivery.dkim_keys import generate_key
from tests.support.dkimkit import DOMAIN, SELECTOR, key_record
from tests.support.dns_server import DnsServer
from tests.support.sendkit import recipients

SPAMASSASSIN = shutil.which("spamassassin")


def rules_fired(message: bytes, dns: DnsServer, home: Path) -> set[str]:
    if SPAMASSASSIN is None:
        pytest.fail("spamassassin not found: run `bash scripts/test.sh` (it installs it)")
    config = "\n".join(
        [
            f"dns_server {dns.address}",  # every lookup (the DKIM key too) goes to our server
            "dns_available yes",
            "skip_rbl_checks 1",
            "use_razor2 0",
            "use_pyzor 0",
            "use_dcc 0",
            "use_bayes 0",
        ]
    )
    proc = subprocess.run(
        [SPAMASSASSIN, "-t", "--cf", config],
        input=message,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(home)},
    )
    report = proc.stdout.decode("utf-8", "replace")
    assert "Content analysis details" in report, proc.stderr.decode()[-2000:]
    return set(re.findall(r"^\s*-?\d+\.\d+\s+([A-Z0-9_]+)", report, re.M))


def test_spamassassin_sees_a_valid_signature_from_the_authors_domain(
    builder: MessageBuilder, tmp_path: Path
) -> None:
    key = generate_key("rsa")
    message = DkimSigner(key, selector=SELECTOR, domain=DOMAIN)(builder.to_bytes(recipients(1)[0]))
    with DnsServer() as dns:
        dns.zone = key_record(key)
        fired = rules_fired(message, dns, tmp_path)
        asked = dns.questions
    assert {"DKIM_SIGNED", "DKIM_VALID", "DKIM_VALID_AU"} <= fired, fired
    assert "DKIM_INVALID" not in fired
    assert (f"{SELECTOR}._domainkey.{DOMAIN}", "TXT") in asked


def test_spamassassin_flags_a_signature_the_published_key_does_not_match(
    builder: MessageBuilder, tmp_path: Path
) -> None:
    message = DkimSigner(generate_key("rsa"), selector=SELECTOR, domain=DOMAIN)(
        builder.to_bytes(recipients(1)[0])
    )
    with DnsServer() as dns:
        dns.zone = key_record(generate_key("rsa"))
        fired = rules_fired(message, dns, tmp_path)
    assert "DKIM_INVALID" in fired and "DKIM_VALID" not in fired, fired
