"""Inbound mail to the contact address: classification and safety helpers.

The pure core lives here (:mod:`~newsletter.audience.inbound.classify`,
:mod:`~newsletter.audience.inbound.safety`); sources (files, IMAP, webhooks) build on it.
"""

from newsletter.audience.inbound.classify import (
    Classification,
    Kind,
    body_text,
    classify_message,
    html_to_text,
    parse_message,
    strip_quoted,
)
from newsletter.audience.inbound.safety import clean_address, clean_header_text, clean_text

__all__ = [
    "Classification",
    "Kind",
    "body_text",
    "classify_message",
    "clean_address",
    "clean_header_text",
    "clean_text",
    "html_to_text",
    "parse_message",
    "strip_quoted",
]
