"""Delivery: rendered messages reach recipients exactly once.

Owns the send loop (:mod:`.campaign`; :mod:`.pipeline` is its form for transports that
write requests ahead, SendGrid's), the SQLite journal that makes a send idempotent
and resumable (:mod:`.journal`), and the transports behind one interface
(:mod:`.transports`: outbox, SMTP, SendGrid).

May import: the shared base and :mod:`newsletter.compose`. The subscriber list is known
only through the Protocols in :mod:`.transports.base`, never imported.
"""
