"""The confirmation email of the double opt-in: what it says, and mailing it.

:func:`render_confirmation` renders ``templates/confirm.{html,txt}.j2`` (the package's
own for a home made before confirmations) into a
:class:`~newsletter.compose.render.RenderedIssue` with a short, plain subject (a token
there looks like phishing). The signed token rides in the confirmation's Message-ID
(:func:`confirm_message_id`), which every common client's reply carries back in
In-Reply-To/References; the body shows a short reference (``NL-...``,
:func:`newsletter.tokens.confirm_ref`) for a reply that keeps only the quote; and the
token is in the link
(``{NEWSLETTER_PUBLIC_URL}/confirm/{token}``) when a public URL is set. The HTML is
inlined once per series and contact; the address, token and link are filled in per mail.
:func:`send_confirmation` mails it through the configured transport as a transactional
auto-reply (no List-Unsubscribe), threaded under the request it answers.

Whether a confirmation may be mailed at all (status, rate limit) is decided in
:mod:`newsletter.audience.confirm`.
"""

from __future__ import annotations

import functools
import re
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from markupsafe import Markup

from newsletter.audience.inbound.safety import clean_header_text
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.compose.render import (
    RenderedIssue,
    inline_css,
    load_template,
    read_stylesheet,
    wrap,
)
from newsletter.config import PACKAGE_TEMPLATES
from newsletter.delivery.transports import Status, make_transport
from newsletter.errors import TransportError
from newsletter.i18n import choose_language, gettext_for
from newsletter.tokens import confirm_ref

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = [
    "CONFIRM_SLUG",
    "confirm_message_id",
    "confirm_url",
    "render_confirmation",
    "send_confirmation",
]

#: the outbox folder (``outbox/confirm/``) and the rendered message's slug
CONFIRM_SLUG = "confirm"
_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")

_EMAIL_MARK = "%%confirm_email%%"
_TOKEN_MARK = "%%confirm_token%%"
_URL_MARK = "%%confirm_url%%"


def _series(settings: Settings) -> str:
    return settings.from_name or "our newsletter"


def confirm_url(token: str, settings: Settings) -> str | None:
    """``{public_url}/confirm/{token}``, or None without NEWSLETTER_PUBLIC_URL."""
    if not settings.public_url:
        return None
    return f"{settings.public_url}/confirm/{quote(token)}"


def _subject(series: str, language: str) -> str:
    _ = gettext_for(language)
    return _("Confirm your subscription to %(series)s") % {"series": series}


def confirm_message_id(token: str, domain: str) -> str:
    """The confirmation's Message-ID, ``<c.{token}@{domain}>``: a reply quotes it in
    In-Reply-To/References, where the classifier finds the token (token characters are
    all valid in a Message-ID)."""
    return f"<c.{token}@{domain}>"


class _ConfirmBuilder(MessageBuilder):
    """A builder whose Message-ID carries the confirm token (one recipient)."""

    def __init__(self, *args: Any, token: str, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._confirm_id = confirm_message_id(token, self.domain)

    def message_id(self, r: Recipient) -> str:
        return self._confirm_id


def _preheader(series: str, language: str) -> str:
    _ = gettext_for(language)
    return _("One step left: reply to this email to start receiving %(series)s.") % {
        "series": series
    }


def _context(
    series: str, contact: str, email: str, token: str, url: str | None, language: str
) -> dict[str, str | None]:
    """What both templates are given, so the HTML and the text say the same."""
    return {
        "subject": _subject(series, language),
        "preheader": _preheader(series, language),
        "series": series,
        "email": email,
        "token": token,
        "confirm_url": url,
        "contact": contact,
    }


@functools.cache
def _inlined_html(templates: Path, series: str, contact: str, with_url: bool, language: str) -> str:
    """The confirmation HTML with CSS inlined once; personal parts left as marks."""
    url_mark = _URL_MARK if with_url else None
    html = load_template(templates, "confirm.html.j2", language).render(
        **_context(series, contact, _EMAIL_MARK, _TOKEN_MARK, url_mark, language),
        css=Markup(read_stylesheet(templates)),
    )
    return inline_css(html)


def render_confirmation(
    email: str, token: str, settings: Settings, language: str | None = None
) -> RenderedIssue:
    """The confirmation email, rendered from ``templates/confirm.{html,txt}.j2``.

    ``language`` is the reader's (their row, or what their request was written in);
    without one, NEWSLETTER_LANGUAGE.
    """
    language = choose_language(language, settings.language)
    _ = gettext_for(language)
    templates = settings.templates_dir
    if not (templates / "confirm.html.j2").exists():  # a home made before confirmations
        templates = PACKAGE_TEMPLATES
    series = _series(settings)
    url = confirm_url(token, settings)
    # the body shows a short reference, not the token (see tokens.confirm_ref)
    secret = settings.secret_key.get_secret_value() if settings.secret_key else None
    reference = (confirm_ref(secret, token) if secret else None) or token
    html = (
        _inlined_html(
            templates.resolve(), series, settings.contact_address, url is not None, language
        )
        .replace(_EMAIL_MARK, escape(email))
        .replace(_TOKEN_MARK, escape(reference))
        .replace(_URL_MARK, escape(url or ""))
    )
    contact = settings.contact_address
    text = load_template(templates, "confirm.txt.j2", language).render(
        **_context(series, contact, email, reference, url, language),
        title=_("Please confirm your subscription"),
        intro=wrap(
            _("Someone, hopefully you, asked to subscribe %(email)s to %(series)s.")
            % {"email": email, "series": series}
        ),
        reply=wrap(
            _(
                "Reply to this email to confirm. Nothing needs to be written; just keep "
                "the reference below in the reply."
            )
        ),
        ignore=wrap(
            _(
                "If you did not ask for this, ignore this email: you will not be added, "
                "and you will not hear from us again."
            )
        ),
        questions=wrap(_("Questions? Write to %(contact)s.") % {"contact": contact}),
    )
    text = re.sub(r"\n{3,}", "\n\n", text).strip() + "\n"
    return RenderedIssue(
        slug=CONFIRM_SLUG,
        subject=_subject(series, language),
        preheader=_preheader(series, language),
        series=series,
        html=html,
        text=text,
        images=(),
        view_url=None,
    )


def _reply_headers(in_reply_to: str | None) -> dict[str, str]:
    headers = {"Auto-Submitted": "auto-replied", "X-Auto-Response-Suppress": "All"}
    if in_reply_to:
        text = clean_header_text(in_reply_to, limit=520)
        if _MESSAGE_ID.fullmatch(text):
            headers["In-Reply-To"] = text
            headers["References"] = text
    return headers


def send_confirmation(
    email: str,
    name: str,
    token: str,
    settings: Settings,
    in_reply_to: str | None,
    language: str | None = None,
) -> None:
    """Mail ``email`` its confirmation carrying ``token``, in ``language``; ``in_reply_to``
    (a Message-ID, cleaned here) threads it under the request. Raises TransportError if
    not sent."""
    rendered = render_confirmation(email, token, settings, language)
    builder = _ConfirmBuilder(
        rendered, settings, bulk=False, extra_headers=_reply_headers(in_reply_to), token=token
    )
    transport = make_transport(settings, builder, concurrency=1)
    transport.open()
    try:
        outcomes = transport.send([Recipient(email, clean_header_text(name, limit=100))])
    finally:
        transport.close()
    outcome = outcomes[0] if outcomes else None
    if outcome is None or outcome.status is not Status.SENT:
        why = outcome.reason if outcome is not None else "no outcome"
        raise TransportError(
            f"{transport.description}: the confirmation to {email} was not sent: {why}"
        )
