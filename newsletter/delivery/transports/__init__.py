"""Delivery channels behind one interface (:class:`~newsletter.delivery.transports.base.Transport`).

:mod:`.base` holds the interface, the outcomes and what every transport shares (the
retry backoff, a mock for tests). :mod:`.outbox` (the default) writes .eml files and
sends nothing; :mod:`.smtp` talks to a relay over a pool of connections, each opened and
spoken to by :mod:`.smtp_connection`; :mod:`.sendgrid` posts to SendGrid's v3 API.
:func:`make_transport` picks one from settings.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from newsletter.delivery.transports.base import (
    MockTransport,
    Outcome,
    Status,
    Transport,
)

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.delivery.transports.base import BuilderLike, RecipientLike


def __getattr__(name: str) -> Any:
    # the composer's types, imported when asked for (see transports.base)
    if name in ("BuilderLike", "RecipientLike"):
        from newsletter.delivery.transports import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "BuilderLike",
    "MockTransport",
    "Outcome",
    "RecipientLike",
    "Status",
    "Transport",
    "make_transport",
]


def make_transport(
    settings: Settings,
    builder: BuilderLike,
    *,
    concurrency: int | None = None,
    test_copies: bool = False,
) -> Transport:
    """The transport ``settings.transport`` names, configured from settings.
    ``test_copies``: the outbox writes into ``outbox/<issue>/test/``, apart from the
    readers' copies, so a test send is never taken for (or counted as) the real one."""
    workers = concurrency or settings.concurrency
    if settings.transport == "smtp":
        from newsletter.delivery.transports.smtp import SmtpTransport
        from newsletter.oauth import token_source
        from newsletter.tls import client_tls_context

        # start-up: the system's trust store (tens of ms) only for a connection that
        # uses TLS, and the DKIM signer's cryptography only when a key is configured
        ssl_context = None
        if settings.smtp_security != "none" or settings.smtp_ca_file is not None:
            ssl_context = client_tls_context(settings.smtp_ca_file, "SMTP_CA_FILE")
        sign = None
        if settings.dkim_key_file is not None:
            from newsletter.delivery.dkim import signer_from_settings

            sign = signer_from_settings(settings)

        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        oauth = None
        if settings.smtp_auth == "oauth2":
            _require_oauth_settings(settings)
            oauth = token_source(settings, "smtp")
        return SmtpTransport(
            builder,
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            oauth=oauth,
            oauth_mechanism=settings.smtp_oauth_mechanism,
            timeout=settings.smtp_timeout,
            concurrency=workers,
            ssl_context=ssl_context,
            sign=sign,
        )
    if settings.transport == "sendgrid":
        from newsletter.delivery.transports.sendgrid import DEFAULT_CONCURRENCY, SendGridTransport
        from newsletter.errors import ConfigError

        key = settings.sendgrid_api_key.get_secret_value() if settings.sendgrid_api_key else ""
        if not key:
            raise ConfigError(
                "SENDGRID_API_KEY is not set: NEWSLETTER_TRANSPORT=sendgrid needs it",
                hint="set it in .env, or use NEWSLETTER_TRANSPORT=outbox to write files",
            )
        # SendGrid takes many requests at once: its own default unless one was set
        chosen = concurrency or "concurrency" in settings.model_fields_set
        return SendGridTransport(
            builder,
            api_key=key,
            host=settings.sendgrid_api_host,
            timeout=settings.sendgrid_timeout,
            concurrency=workers if chosen else DEFAULT_CONCURRENCY,
            max_rate_limit_wait=settings.sendgrid_rate_limit_wait,
            tracking=settings.sendgrid_tracking,
        )
    from newsletter.delivery.transports.outbox import OutboxTransport

    folder = settings.outbox_dir / builder.rendered.slug
    return OutboxTransport(builder, folder / "test" if test_copies else folder)


def _require_oauth_settings(settings: Settings) -> None:
    """SMTP_AUTH=oauth2 needs the mailbox's name and a secured connection."""
    from newsletter.errors import ConfigError

    if not settings.smtp_username:
        raise ConfigError(
            "SMTP_USERNAME is not set: SMTP_AUTH=oauth2 logs in as that mailbox",
            hint="set it to the address the token was granted for",
        )
    if settings.smtp_security == "none":
        raise ConfigError(
            "SMTP_SECURITY=none: SMTP_AUTH=oauth2 would send the access token in clear",
            hint="use starttls (port 587) or tls (port 465)",
        )
