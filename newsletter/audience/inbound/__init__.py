"""Inbound mail to the contact address: where it comes from, what it says, what was done.

The pure core (no I/O):

* :mod:`.classify` -- :func:`classify_message`, the order of the decisions, built on
  :mod:`.text` (the new text the sender wrote), :mod:`.headers` (headers of hostile mail),
  :mod:`.bounces` (delivery reports, read by flufl.bounce), :mod:`.complaints`
  (feedback-loop reports), :mod:`.automatic` (auto-replies, lists, loops),
  :mod:`.situations` (threads, pitches, address changes, wordy auto-replies),
  :mod:`.replies` (confirm tokens in a reply), :mod:`.authentication` (verdicts on the
  From: forged, or vouched for from our own boundary) and :mod:`.intent` (subscribe or
  unsubscribe, and for whom);
* :mod:`.safety` -- values from inbound mail made safe to show, store and reuse.

The edges: :mod:`.sources` (the :class:`~.sources.InboundSource` interface) with
:mod:`.mailfiles` (a folder of .eml files, a Maildir, an mbox) and :mod:`.imap`;
:mod:`.inbound_parse` (a SendGrid Inbound Parse POST as raw bytes); :mod:`.records`
(what happened to every message, and the review queue).
"""

from newsletter.audience.inbound.classify import (
    Classification,
    Kind,
    classify_message,
    parse_message,
)
from newsletter.audience.inbound.safety import clean_address, clean_header_text, clean_text
from newsletter.audience.inbound.text import body_text, html_to_text, strip_quoted

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
