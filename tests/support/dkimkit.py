"""DKIM in the tests: a key published in a test's DNS server, and dkimpy's verifier
asking that server (its ``dnsfunc``), so no question leaves 127.0.0.1."""

from __future__ import annotations

from collections.abc import Callable

import dkim

from newsletter.cli.doctor import txt_strings
from newsletter.delivery.dkim_keys import DkimKey
from newsletter.doctor.resolver import DnsClient

SELECTOR = "newsletter"
DOMAIN = "example.org"


def key_record(key: DkimKey, selector: str = SELECTOR, domain: str = DOMAIN) -> str:
    """The zone line publishing ``key``, as `newsletter dkim keygen` prints it."""
    return f"{selector}._domainkey.{domain}. 60 TXT {txt_strings(key.dns_record())}\n"


def dnsfunc(server: str) -> Callable[..., bytes | None]:
    client = DnsClient(server, timeout=2)

    def get_txt(name: bytes | str, timeout: float = 5) -> bytes | None:
        text = name.decode() if isinstance(name, bytes) else name
        answers = client.txt(text.rstrip("."))
        return answers[0].encode() if answers else None

    return get_txt


def verify(message: bytes, server: str) -> bool:
    """dkimpy's verdict on the first signature, with the key from the test's DNS."""
    return bool(dkim.verify(message, dnsfunc=dnsfunc(server)))
