"""The signup form: ``GET /`` and ``/subscribe`` show it, ``POST /subscribe`` takes it.

A post passes, in order: the per-IP rate limit (429), the CSRF check (403), the
honeypot, the address's syntax (400, the form again). Every well-formed signup then
gets one and the same answer, whoever the address belongs to; the confirmation is
requested after that answer is sent, at most as often as the per-address limit allows.
"""

from __future__ import annotations

import logging
import math
import unicodedata
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from starlette.background import BackgroundTask
from starlette.requests import Request
from starlette.responses import Response

from newsletter.audience.subscribers.addresses import AddressError, normalize_address
from newsletter.i18n import N_
from newsletter.web.formdata import read_form
from newsletter.web.guards import CSRF_COOKIE, CSRF_FIELD, CSRF_WINDOW
from newsletter.web.pages import base_path, page_language
from newsletter.web.proxy import client_key

if TYPE_CHECKING:
    from newsletter.audience.subscribers.store import SubscriberStore
    from newsletter.config import Settings
    from newsletter.web.guards import CsrfGuard, SlidingWindow
    from newsletter.web.pages import Pages
    from newsletter.web.pipeline import Pipeline

log = logging.getLogger("newsletter.web")

HONEYPOT_FIELD: Final = "website"
MAX_NAME: Final = 100
MAX_ADDRESS: Final = 254
ZW_JOINERS: Final = "\u200c\u200d"  # needed by some scripts; other format characters go


@dataclass(slots=True)
class SignupForm:
    """The form's two handlers and what they use (shared with the rest of the app)."""

    settings: Settings
    store: SubscriberStore
    pipeline: Pipeline
    pages: Pages
    csrf: CsrfGuard
    ip_limiter: SlidingWindow
    address_limiter: SlidingWindow
    requester_limiter: SlidingWindow  # confirmation mails per client

    def _subscribe_page(
        self,
        request: Request,
        nonce: str,
        *,
        status_code: int = 200,
        email: str = "",
        name: str = "",
        error: str | None = None,
    ) -> Response:
        response = self.pages.page(
            request,
            "subscribe.html.j2",
            status_code=status_code,
            csrf_field=CSRF_FIELD,
            csrf=self.csrf.token_for(nonce),
            honeypot=HONEYPOT_FIELD,
            email=email,
            name=name,
            error=error,
        )
        response.set_cookie(
            CSRF_COOKIE,
            nonce,
            max_age=2 * CSRF_WINDOW,
            path="/",
            secure=request.url.scheme == "https",
            httponly=True,
            samesite="strict",
        )
        return response

    def _subscribe_done(
        self, request: Request, background: BackgroundTask | None = None
    ) -> Response:
        """The one answer to every well-formed signup, whatever happens next."""
        response = self.pages.page(request, "subscribe_done.html.j2")
        response.background = background
        return response

    async def subscribe_form(self, request: Request) -> Response:
        nonce = request.cookies.get(CSRF_COOKIE)
        if nonce is None or not self.csrf.valid_nonce(nonce):
            nonce = self.csrf.new_nonce()
        return self._subscribe_page(request, nonce)

    async def subscribe(self, request: Request) -> Response:
        client = client_key(request.client.host) if request.client else "unknown"
        wait = self.ip_limiter.hit(client)
        if wait is not None:
            return self.pages.notice(
                request,
                N_("Too many attempts"),
                N_(
                    "This connection has sent the signup form too many times. Please wait a "
                    "while and try again."
                ),
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
                link=(f"{base_path(request)}/subscribe", N_("Back to the signup form")),
            )
        form = await read_form(request)
        nonce = request.cookies.get(CSRF_COOKIE)
        if not self.csrf.check(nonce, form.get(CSRF_FIELD)):
            return self.pages.notice(
                request,
                N_("This form has expired"),
                N_(
                    "For your security the signup form is only valid for a while, and only "
                    "from this site with cookies allowed. Please open a fresh form and try "
                    "again."
                ),
                status_code=403,
                link=(f"{base_path(request)}/subscribe", N_("Open a fresh signup form")),
            )
        assert nonce is not None  # checked above
        if form.get(HONEYPOT_FIELD, "").strip():
            return self._subscribe_done(request)
        typed = form.get("email", "").strip()
        name = clean_name(form.get("name", ""))
        try:
            if not typed or len(typed) > MAX_ADDRESS:
                raise AddressError("empty or too long")
            email = normalize_address(typed)
        except AddressError:
            return self._subscribe_page(
                request,
                nonce,
                status_code=400,
                email=typed[:MAX_ADDRESS],
                name=name,
                error=N_("Please enter a complete email address, like name@example.org."),
            )
        if self.address_limiter.hit(email.lower()) is not None:
            return self._subscribe_done(request)
        if self.requester_limiter.hit(client) is not None:  # one visitor, many colleagues
            return self._subscribe_done(request)
        # The work happens after the answer is sent: the reply (and its timing) is the
        # same for a new, pending, active or suppressed address.
        # a browser that asks for another language than the newsletter's: recorded, and
        # the confirmation is written in it
        language = page_language(request, None, self.settings.language)
        asked = language if language != self.settings.language else None
        task = BackgroundTask(self._request_in_background, email, name, asked)
        return self._subscribe_done(request, task)

    def _request_in_background(self, email: str, name: str, language: str | None) -> None:
        try:
            result = self.pipeline.request_confirmation(
                email,
                self.settings,
                name=name,
                source="web",
                store=self.store,
                language=language,
            )
            log.info("signup form: confirmation %s", result.reason)
        except Exception:
            log.exception("signup form: requesting a confirmation failed")


def clean_name(value: str) -> str:
    """A display name from a form: one line, no control or bidi-override characters, capped."""
    out: list[str] = []
    for ch in value:
        category = unicodedata.category(ch)
        if ch in "\t\r\n" or category in ("Zl", "Zp"):
            out.append(" ")
        elif category in ("Cc", "Cs", "Co", "Cn") or (category == "Cf" and ch not in ZW_JOINERS):
            continue
        else:
            out.append(ch)
    return " ".join("".join(out).split())[:MAX_NAME]
