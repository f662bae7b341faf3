"""The "confirm you want to leave" mail: an unsubscribe by mail nobody vouched for.

An unsubscribe request whose From is neither SPF- nor DKIM-aligned by a trusted
verdict (:func:`newsletter.audience.inbound.authentication.aligned_pass`) could come
from anyone who knows a reader's address. It is not applied; instead the reader gets
this mail with a one-click link to the signed unsubscribe page
(``{NEWSLETTER_PUBLIC_URL}/u/{token}``, the same page as every issue's unsubscribe
link). A real reader loses one click; a forger achieves nothing. Without a public URL
there is no link to give, and the request goes to review instead (decided by the caller).
"""

from __future__ import annotations

from html import escape
from typing import TYPE_CHECKING
from urllib.parse import quote

from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.compose.render import RenderedIssue, wrap
from newsletter.delivery.transports import Status, make_transport
from newsletter.errors import TransportError
from newsletter.i18n import choose_language, gettext_for
from newsletter.tokens import UNSUBSCRIBE_TTL, make_token

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = ["LEAVE_SLUG", "leave_url", "render_leave", "send_leave"]

#: the outbox folder (``outbox/leave/``) and the rendered message's slug
LEAVE_SLUG = "leave"


def leave_url(email: str, settings: Settings) -> str | None:
    """The signed unsubscribe page for ``email``, or None without a public URL."""
    if not settings.public_url:
        return None
    token = make_token(settings.require_secret(), "unsubscribe", email, ttl=UNSUBSCRIBE_TTL)
    return f"{settings.public_url}/u/{quote(token)}"


def render_leave(
    email: str, url: str, settings: Settings, language: str | None = None
) -> RenderedIssue:
    """The mail in ``language`` (the reader's row, else what the request was written
    in), else the newsletter's own language."""
    language = choose_language(language, settings.language)
    _ = gettext_for(language)
    series = settings.from_name or _("our newsletter")
    subject = _("Confirm you want to leave %(series)s") % {"series": series}
    intro = _(
        "We received an email asking to unsubscribe %(email)s from %(series)s. We could not "
        "tell that it really came from you, so nothing has changed yet."
    ) % {"email": email, "series": series}
    action = _("If you want to leave, open this link and press the button:")
    ignore = _("If you did not ask, ignore this email: you stay subscribed.")
    button = _("Unsubscribe %(email)s") % {"email": email}
    text = f"{wrap(intro)}\n\n{wrap(action)}\n\n{url}\n\n{wrap(ignore)}\n"
    html = (
        f'<!DOCTYPE html><html lang="{language}"><head><meta charset="utf-8">'
        f"<title>{escape(subject)}</title></head><body>"
        f"<p>{escape(intro)}</p><p>{escape(action)}</p>"
        f'<p><a href="{escape(url)}">{escape(button)}</a></p>'
        f"<p>{escape(ignore)}</p></body></html>"
    )
    return RenderedIssue(
        slug=LEAVE_SLUG,
        subject=subject,
        preheader=_("One click to leave; nothing changes if you ignore this."),
        series=series,
        html=html,
        text=text,
        images=(),
        view_url=None,
    )


def send_leave(email: str, url: str, settings: Settings, language: str | None = None) -> None:
    """Mail ``email`` the link; raises TransportError if it was not sent."""
    builder = MessageBuilder(
        render_leave(email, url, settings, language),
        settings,
        bulk=False,
        extra_headers={"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"},
    )
    transport = make_transport(settings, builder, concurrency=1)
    transport.open()
    try:
        outcomes = transport.send([Recipient(email)])
    finally:
        transport.close()
    outcome = outcomes[0] if outcomes else None
    if outcome is None or outcome.status is not Status.SENT:
        why = outcome.reason if outcome is not None else "no outcome"
        raise TransportError(f"{transport.description}: the mail to {email} was not sent: {why}")
