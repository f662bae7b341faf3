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
    settings: Settings, builder: BuilderLike, *, concurrency: int | None = None
) -> Transport:
    """The transport ``settings.transport`` names, configured from settings."""
    workers = concurrency or settings.concurrency
    if settings.transport == "smtp":
        from newsletter.delivery.transports.smtp import SmtpTransport

        password = settings.smtp_password.get_secret_value() if settings.smtp_password else None
        return SmtpTransport(
            builder,
            host=settings.smtp_host,
            port=settings.smtp_port,
            security=settings.smtp_security,
            username=settings.smtp_username,
            password=password,
            timeout=settings.smtp_timeout,
            concurrency=workers,
        )
    if settings.transport == "sendgrid":
        from newsletter.delivery.transports.sendgrid import SendGridTransport
        from newsletter.errors import ConfigError

        key = settings.sendgrid_api_key.get_secret_value() if settings.sendgrid_api_key else ""
        if not key:
            raise ConfigError(
                "SENDGRID_API_KEY is not set: NEWSLETTER_TRANSPORT=sendgrid needs it",
                hint="set it in .env, or use NEWSLETTER_TRANSPORT=outbox to write files",
            )
        return SendGridTransport(
            builder,
            api_key=key,
            host=settings.sendgrid_api_host,
            timeout=settings.sendgrid_timeout,
            concurrency=workers,
            max_rate_limit_wait=settings.sendgrid_rate_limit_wait,
        )
    from newsletter.delivery.transports.outbox import OutboxTransport

    return OutboxTransport(builder, settings.outbox_dir / builder.rendered.slug)
