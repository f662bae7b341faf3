"""The web endpoints behind ``newsletter serve``.

* :mod:`.app` -- :func:`create_app`: the Starlette app, its routes, the pages' handlers
  (signup form, unsubscribe, confirm), the archive mount.
* :mod:`.sendgrid` -- the provider endpoints: Inbound Parse and the Event Webhook.
* :mod:`.formdata` -- multipart/form-data as exact bytes (for Inbound Parse).
* :mod:`.guards` -- CSRF tokens, rate limits, Fetch Metadata checks, security headers,
  log redaction.
* :mod:`.pages` -- the Jinja2 pages in ``templates/web/``.
* :mod:`.pipeline` -- the seam to the signup pipeline (confirm, signups, inbound).

The SendGrid Event Webhook's signature check and event mapping are pure functions in
:mod:`newsletter.audience.events`.

May import: the shared base, :mod:`newsletter.compose`, :mod:`newsletter.delivery`,
:mod:`newsletter.audience` and :mod:`newsletter.archive`; only the CLI imports it.
"""

from __future__ import annotations

from newsletter.web.app import Limits, WebApp, create_app
from newsletter.web.guards import RedactTokens, redact_path
from newsletter.web.pipeline import Pipeline

__all__ = ["Limits", "Pipeline", "RedactTokens", "WebApp", "create_app", "redact_path"]
