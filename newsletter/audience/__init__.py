"""Audience: who gets the digest, and how people join and leave.

Owns the subscriber store (:mod:`.subscribers`: the admins' CSV, read, validated,
locked, written), mail arriving at the contact address (:mod:`.inbound`: sources,
text, classification, records), the double opt-in pipeline (:mod:`.signups`,
:mod:`.confirm`) and provider events that suppress readers (:mod:`.events`: the
SendGrid Event Webhook's signature, mapping and ledger).

May import: the shared base, :mod:`newsletter.compose` (confirmation mail is rendered
like an issue) and :mod:`newsletter.delivery` (and sent through a transport).
"""
