"""Inbound mail for the classifier's tests: the corpus, a message builder, and classify().

The corpus is tests/data/inbound: each ``.eml`` has an entry in ``expected.yaml``. Its
confirm-token placeholders are filled by :func:`tests.support.signupkit.load`, here
with a fixed secret and a fixed :data:`NOW` (valid tokens made an hour before).
"""

from __future__ import annotations

from typing import Any

import yaml

from newsletter.audience.inbound import Classification, classify_message, parse_message
from tests.support import signupkit
from tests.support.signupkit import DATA

__all__ = ["CONTACT", "DATA", "EXPECTED", "NOW", "SECRET", "classify", "load", "mail"]

EXPECTED: dict[str, dict[str, Any]] = yaml.safe_load((DATA / "expected.yaml").read_text("utf-8"))
SECRET = "inbound-test-secret-0123456789"
NOW = 1_717_376_000.0  # 2024-06-03 00:53 UTC
CONTACT = "digest@example.org"


def load(name: str) -> bytes:
    """A corpus file, signed with :data:`SECRET`; valid tokens made an hour before NOW."""
    return signupkit.load(name, NOW, secret=SECRET, age=3600)


def classify(raw: bytes, **kwargs: Any) -> Classification:
    options: dict[str, Any] = {
        "contact": CONTACT,
        "secret": SECRET,
        "our_domains": ["example.org"],
        "now": NOW,
    }
    options.update(kwargs)
    return classify_message(parse_message(raw), **options)


def mail(
    body: str, *, subject: str = "Hello", sender: str = "ann@example.com", extra: str = ""
) -> bytes:
    return (
        f"From: Ann <{sender}>\nTo: {CONTACT}\nSubject: {subject}\n"
        f"Message-ID: <t1@example.com>\n{extra}"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n\n" + body
    ).encode("utf-8")
