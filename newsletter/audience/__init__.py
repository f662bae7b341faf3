"""Audience: who gets the digest, and how people join and leave.

Owns the subscriber store (:mod:`.subscribers`: the admins' CSV, read, validated,
locked, written), mail arriving at the contact address (:mod:`.inbound`: sources,
text, classification, records), the signup pipeline (:mod:`.signups`: each inbound
message classified, acted on by :mod:`.actions` and recorded; :mod:`.review`: a
human's decision on what it held back), double opt-in (:mod:`.confirm`: requesting and
activating; :mod:`.confirm_mail`: the confirmation email) and provider events that
suppress readers (:mod:`.events`: the SendGrid Event Webhook's signature, mapping and
ledger).

May import: the shared base, :mod:`newsletter.compose` (confirmation mail is rendered
like an issue) and :mod:`newsletter.delivery` (and sent through a transport).
"""
