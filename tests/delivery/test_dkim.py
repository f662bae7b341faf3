"""DKIM signing: keys, canonicalization as dkimpy does it, and signed mail sent through
aiosmtpd that dkimpy verifies against the key published in a DNS server on 127.0.0.1."""

from __future__ import annotations

import base64
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from dkim.canonicalization import Relaxed

from newsletter.compose.message import MessageBuilder
from newsletter.delivery.dkim import DkimSigner, relaxed_body, relaxed_header, split_message
from newsletter.delivery.dkim_keys import generate_key, read_key, write_key
from newsletter.delivery.transports import Status
from newsletter.delivery.transports.smtp import SmtpTransport
from newsletter.errors import ConfigError
from tests.support.dkimkit import DOMAIN, SELECTOR, key_record, verify
from tests.support.dns_server import DnsServer
from tests.support.sendkit import recipients
from tests.support.smtp_server import SmtpServer


@pytest.fixture
def dns() -> Iterator[DnsServer]:
    with DnsServer() as server:
        yield server


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_a_key_file_round_trips_and_is_private(tmp_path: Path, algorithm: str) -> None:
    key = generate_key(algorithm)  # type: ignore[arg-type]
    path = tmp_path / "keys" / "dkim.key"
    write_key(key, path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again = read_key(path)
    assert (again.algorithm, again.public) == (algorithm, key.public)
    assert key.dns_record() == f"v=DKIM1; k={algorithm}; p={key.public}"
    with pytest.raises(ConfigError, match="already there"):
        write_key(generate_key(algorithm), path)  # type: ignore[arg-type]
    assert read_key(path).public == key.public


def test_a_dkimpy_ed25519_seed_file_is_read(tmp_path: Path) -> None:
    key = generate_key("ed25519")
    seed = key.private.private_bytes_raw()  # type: ignore[union-attr]
    path = tmp_path / "dknewkey.key"
    path.write_text(base64.b64encode(seed).decode() + "\n")
    assert read_key(path).public == key.public


def test_bad_key_files_name_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"NEWSLETTER_DKIM_KEY_FILE: .*missing.key: No such file"):
        read_key(tmp_path / "missing.key")
    junk = tmp_path / "junk.key"
    junk.write_text("not a key")
    with pytest.raises(ConfigError, match="not a PEM private key nor an Ed25519 seed"):
        read_key(junk)
    # cryptography will not make a key this weak; OpenSSL (beside postfix) still does
    short = tmp_path / "short.key"
    subprocess.run(
        ["openssl", "genrsa", "-out", str(short), "768"], check=True, capture_output=True
    )
    with pytest.raises(ConfigError, match="768 bits is too short"):
        read_key(short)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"\r\n\r\n",
        b"plain line\r\n",
        b"a  b\t c \r\n\r\n\r\n",
        b" lead\t\r\n  \r\ntrail   \r\n",
    ],
)
def test_relaxed_body_matches_dkimpy(body: bytes) -> None:
    assert relaxed_body(body) == Relaxed.canonicalize_body(body)


def test_relaxed_headers_match_dkimpy(builder: MessageBuilder) -> None:
    fields, _ = split_message(builder.to_bytes(recipients(1)[0]))
    fields.append((b"X-Odd \t", b"  folded\r\n \t value  "))
    ours = [relaxed_header(n, v) for n, v in fields]
    theirs = [n + b":" + v for n, v in Relaxed.canonicalize_headers(fields)]
    assert ours == theirs


@pytest.mark.parametrize("algorithm", ["ed25519", "rsa"])
def test_mail_sent_signed_through_smtp_verifies_with_the_published_key(
    builder: MessageBuilder, dns: DnsServer, algorithm: str
) -> None:
    key = generate_key(algorithm)  # type: ignore[arg-type]
    dns.zone = key_record(key)
    signer = DkimSigner(key, selector=SELECTOR, domain=DOMAIN)
    with SmtpServer() as server:
        t = SmtpTransport(builder, host="127.0.0.1", port=server.port, security="none", sign=signer)
        with t:
            outcomes = t.send(recipients(3))
        assert [o.status for o in outcomes] == [Status.SENT] * 3
        received = [m.data for m in server.handler.messages]
    assert len(received) == 3
    for data in received:
        assert data.startswith(b"DKIM-Signature: v=1; a=")
        assert verify(data, dns.address), data[:800]
    # the signature covers the one-click headers: changing one breaks it
    forged = received[0].replace(b"List-Unsubscribe-Post: List-Unsubscribe=One-Click", b"X-A: b")
    assert forged != received[0]
    assert not verify(forged, dns.address)
    assert ("newsletter._domainkey.example.org", "TXT") in dns.questions


def test_a_different_published_key_fails_verification(
    builder: MessageBuilder, dns: DnsServer
) -> None:
    dns.zone = key_record(generate_key("rsa"))
    signer = DkimSigner(generate_key("rsa"), selector=SELECTOR, domain=DOMAIN)
    signed = signer(builder.to_bytes(recipients(1)[0]))
    assert not verify(signed, dns.address)
