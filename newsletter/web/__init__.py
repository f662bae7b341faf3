"""The web endpoints behind ``newsletter serve``.

* :mod:`.app` -- :func:`create_app`: the Starlette app, its routes, :class:`WebApp` (the
  state the handlers share, :class:`Limits`), static files, error pages, the archive
  mount.
* :mod:`.signup` -- the signup form (CSRF, rate limits, honeypot, one answer for all).
* :mod:`.links` -- the pages behind the signed links in every email: unsubscribe
  (with RFC 8058 one-click and resubscribe) and confirm.
* :mod:`.sendgrid` -- the provider endpoints: Inbound Parse and the Event Webhook.
* :mod:`.formdata` -- posted forms: as text for the pages, as exact bytes for Inbound
  Parse.
* :mod:`.guards` -- CSRF tokens, rate limits, Fetch Metadata checks, security headers,
  the Host check, log redaction.
* :mod:`.proxy` -- the real client behind NEWSLETTER_TRUSTED_PROXIES.
* :mod:`.limits` -- budgets per client and per address, replays of an unsubscribe,
  body deadlines.
* :mod:`.recorder` -- the unsubscribes, recorded in the ledger by one thread, in batches.
* :mod:`.server` -- uvicorn as ``serve`` runs it (httptools, or h11): request-head
  deadline and size, connections per client and in all, security headers on its own
  answers.
* :mod:`.pages` -- the Jinja2 pages in ``templates/web/`` and the answers the handlers
  share (a notice, "something went wrong on our side").
* :mod:`.pipeline` -- the seam to the signup pipeline (confirm, signups, inbound).

The SendGrid Event Webhook's signature check, event mapping and the write to the list
and its ledger are in :mod:`newsletter.audience.events`; :mod:`.sendgrid` only reads
the request and answers it.

May import: the shared base, :mod:`newsletter.compose`, :mod:`newsletter.delivery`,
:mod:`newsletter.audience` and :mod:`newsletter.archive`; only the CLI imports it.
"""

from __future__ import annotations

from newsletter.web.app import Limits, WebApp, create_app
from newsletter.web.guards import RedactTokens, redact_path
from newsletter.web.pipeline import Pipeline

__all__ = ["Limits", "Pipeline", "RedactTokens", "WebApp", "create_app", "redact_path"]
