"""The ASGI app behind ``newsletter serve``: routes and what each one does.

Routes::

    GET  /, /subscribe        signup form (email, optional name)
    POST /subscribe           CSRF + rate limit + honeypot -> double opt-in, one answer
    GET  /u/{token}           "Unsubscribe?" page with a button (GET changes nothing)
    POST /u/{token}           RFC 8058 one-click (List-Unsubscribe=One-Click) or the
                              page's button (action=unsubscribe / action=resubscribe)
    GET  /confirm/{token}     "Confirm subscription" page with a button
    POST /confirm/{token}     confirm (pending -> active)
    POST /inbound/{secret}    SendGrid Inbound Parse (404 unless the secret matches)
    POST /webhooks/sendgrid   SendGrid Event Webhook (404 unless a key is configured)
    GET  /archive/...         the static archive (``newsletter archive``), if built
    GET  /static/{name}       the pages' stylesheet and icon

Every store write runs in a worker thread and takes the subscriber file's lock.
"""

from __future__ import annotations

import logging
import math
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers.addresses import (
    SUPPRESSED,
    AddressError,
    address_key,
    normalize_address,
)
from newsletter.audience.subscribers.store import SubscriberStore
from newsletter.errors import (
    LockTimeoutError,
    NewsletterError,
    SubscriberFileError,
    TokenError,
)
from newsletter.tokens import read_token
from newsletter.web.guards import (
    CSRF_COOKIE,
    CSRF_FIELD,
    CSRF_WINDOW,
    CsrfGuard,
    SecurityHeaders,
    SlidingWindow,
    is_cross_site,
)
from newsletter.web.pages import STATIC_FILES, Pages
from newsletter.web.pipeline import Pipeline
from newsletter.web.sendgrid import MAX_INBOUND_BODY, MAX_WEBHOOK_BODY, SendGridEndpoints

if TYPE_CHECKING:
    from newsletter.audience.subscribers.rows import Subscriber
    from newsletter.config import Settings

log = logging.getLogger("newsletter.web")

MAX_FORM_BODY: Final = 64 * 1024
HONEYPOT_FIELD: Final = "website"
MAX_NAME: Final = 100
MAX_ADDRESS: Final = 254
ZW_JOINERS: Final = "\u200c\u200d"  # needed by some scripts; other format characters go


@dataclass(frozen=True, slots=True)
class Limits:
    """Rate limits as ``(hits, seconds)``: signup posts per client IP, requests per address."""

    per_ip: tuple[int, float] = (10, 600.0)
    per_address: tuple[int, float] = (3, 3600.0)


@dataclass(slots=True)
class WebApp:
    """The handlers and the state they share (store, limiters, CSRF key, pages)."""

    settings: Settings
    pipeline: Pipeline = field(default_factory=Pipeline)
    limits: Limits = field(default_factory=Limits)
    secret: str = field(init=False)
    store: SubscriberStore = field(init=False)
    pages: Pages = field(init=False)
    csrf: CsrfGuard = field(init=False)
    ip_limiter: SlidingWindow = field(init=False)
    address_limiter: SlidingWindow = field(init=False)

    def __post_init__(self) -> None:
        self.secret = self.settings.require_secret()
        self.store = SubscriberStore.from_settings(self.settings)
        self.pages = Pages(self.settings)
        self.csrf = CsrfGuard(self.secret)
        self.ip_limiter = SlidingWindow(*self.limits.per_ip)
        self.address_limiter = SlidingWindow(*self.limits.per_address)

    # Helpers ---------------------------------------------------------------------------
    def _own_origins(self, request: Request) -> set[str]:
        origins = {f"{request.url.scheme}://{request.url.netloc}".lower()}
        if self.settings.public_url:
            match = re.match(r"^https?://[^/]+", self.settings.public_url)
            if match:
                origins.add(match.group(0).lower())
        return origins

    def _base(self, request: Request) -> str:
        return str(request.scope.get("root_path", "")).rstrip("/")

    def _page(
        self, request: Request, template: str, status_code: int = 200, **ctx: Any
    ) -> Response:
        return self.pages.response(
            template, status_code=status_code, base=self._base(request), **ctx
        )

    def _notice(
        self,
        request: Request,
        title: str,
        *paragraphs: str,
        status_code: int = 200,
        link: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        return self.pages.response(
            "notice.html.j2",
            status_code=status_code,
            headers=headers,
            base=self._base(request),
            title=title,
            paragraphs=list(paragraphs),
            link=link,
        )

    def _read(self, token: str, purpose: str) -> str | None:
        try:
            return read_token(self.secret, token, purpose)
        except TokenError:
            return None

    def _bad_link(self, request: Request, purpose: str) -> Response:
        return self._page(request, "bad_link.html.j2", status_code=400, purpose=purpose)

    def _cross_site(self, request: Request) -> Response:
        return self._notice(
            request,
            "Request refused",
            "This button only works from this site's own page. Open the link from "
            "your email again and press the button there.",
            status_code=403,
        )

    def _trouble(self, request: Request, what: str) -> Response:
        return self._notice(
            request,
            "Something went wrong on our side",
            f"We could not {what} just now, and nothing was changed. Please try again in a "
            f"few minutes, or write to {self.pages.site.contact}.",
            status_code=503,
            headers={"Retry-After": "120"},
        )

    async def _form(
        self, request: Request, *, max_part_size: int = MAX_FORM_BODY
    ) -> dict[str, str]:
        """The posted fields (first value of each); url-encoded, multipart or untyped."""
        content_type = request.headers.get("content-type", "").lower()
        if content_type.startswith("multipart/form-data"):
            form = await request.form(max_part_size=max_part_size)
            fields: dict[str, str] = {}
            for key, value in form.multi_items():
                if isinstance(value, str):
                    fields.setdefault(key, value)
            await form.close()
            return fields
        body = await request.body()
        fields = {}
        for key, value in parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True):
            fields.setdefault(key, value)
        return fields

    def _lookup(self, email: str) -> Subscriber | None:
        if not self.store.path.exists():
            return None
        return self.store.get(email)

    def _unsubscribe(self, email: str, note: str) -> bool:
        return bool(apply_suppressions(self.store, {email: ("unsubscribed", note)}))

    # Signup form ---------------------------------------------------------------------
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
        response = self._page(
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
        response = self._page(request, "subscribe_done.html.j2")
        response.background = background
        return response

    async def subscribe_form(self, request: Request) -> Response:
        nonce = request.cookies.get(CSRF_COOKIE)
        if nonce is None or not self.csrf.valid_nonce(nonce):
            nonce = self.csrf.new_nonce()
        return self._subscribe_page(request, nonce)

    async def subscribe(self, request: Request) -> Response:
        client = request.client.host if request.client else "unknown"
        wait = self.ip_limiter.hit(client)
        if wait is not None:
            return self._notice(
                request,
                "Too many attempts",
                "This connection has sent the signup form too many times. Please wait a "
                "while and try again.",
                status_code=429,
                headers={"Retry-After": str(max(1, math.ceil(wait)))},
                link=(f"{self._base(request)}/subscribe", "Back to the signup form"),
            )
        form = await self._form(request)
        nonce = request.cookies.get(CSRF_COOKIE)
        if not self.csrf.check(nonce, form.get(CSRF_FIELD)):
            return self._notice(
                request,
                "This form has expired",
                "For your security the signup form is only valid for a while, and only "
                "from this site with cookies allowed. Please open a fresh form and try again.",
                status_code=403,
                link=(f"{self._base(request)}/subscribe", "Open a fresh signup form"),
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
                error="Please enter a complete email address, like name@example.org.",
            )
        if self.address_limiter.hit(email.lower()) is not None:
            return self._subscribe_done(request)
        # The work happens after the answer is sent: the reply (and its timing) is the
        # same for a new, pending, active or suppressed address.
        task = BackgroundTask(self._request_in_background, email, name)
        return self._subscribe_done(request, task)

    def _request_in_background(self, email: str, name: str) -> None:
        try:
            result = self.pipeline.request_confirmation(
                email, self.settings, name=name, source="web", store=self.store
            )
            log.info("signup form: confirmation %s", result.reason)
        except Exception:
            log.exception("signup form: requesting a confirmation failed")

    # Unsubscribe ---------------------------------------------------------------------
    async def unsubscribe_page(self, request: Request) -> Response:
        email = self._read(request.path_params["token"], "unsubscribe")
        if email is None:
            return self._bad_link(request, "unsubscribe")
        try:
            sub = await run_in_threadpool(self._lookup, email)
        except NewsletterError:
            log.exception("unsubscribe page: reading the list failed")
            return self._trouble(request, "look up your subscription")
        if sub is None:
            return self._page(request, "unsubscribe.html.j2", state="not-listed", email=email)
        state = "already" if sub.status in SUPPRESSED else "ask"
        return self._page(request, "unsubscribe.html.j2", state=state, email=sub.email)

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await self._form(request)
        if form.get("List-Unsubscribe", "").strip().lower() == "one-click":
            return await self._one_click(token)
        if is_cross_site(request.headers, self._own_origins(request)):
            return self._cross_site(request)
        email = self._read(token, "unsubscribe")
        if email is None:
            return self._bad_link(request, "unsubscribe")
        action = form.get("action", "")
        if action == "unsubscribe":
            try:
                found = await run_in_threadpool(self._unsubscribe, email, "unsubscribed on the web")
            except NewsletterError:
                log.exception("unsubscribe button: writing the list failed")
                return self._trouble(request, "record your unsubscribe")
            state = "done" if found else "not-listed"
            return self._page(request, "unsubscribe.html.j2", state=state, email=email)
        if action == "resubscribe":
            return await self._resubscribe(request, email)
        return self._notice(
            request,
            "Nothing to do",
            "That request was not understood. Open the link from your email again.",
            status_code=400,
        )

    async def _one_click(self, token: str) -> Response:
        """RFC 8058: no cookies, no redirect, no page; a short text answer."""
        email = self._read(token, "unsubscribe")
        if email is None:
            return PlainTextResponse(
                "This unsubscribe link is invalid or has expired; nothing was changed.\n"
                f"Write to {self.pages.site.contact} to be removed.\n",
                status_code=400,
            )
        try:
            found = await run_in_threadpool(
                self._unsubscribe, email, "one-click unsubscribe (RFC 8058)"
            )
        except NewsletterError:
            log.exception("one-click unsubscribe: writing the list failed")
            return PlainTextResponse(
                "Temporarily unable to unsubscribe; please retry.\n",
                status_code=503,
                headers={"Retry-After": "120"},
            )
        text = "You have been unsubscribed.\n" if found else "This address is not on the list.\n"
        return PlainTextResponse(text)

    async def _resubscribe(self, request: Request, email: str) -> Response:
        if self.address_limiter.hit(address_key(email)) is not None:
            reason = "rate-limited"
        else:
            try:
                result = await run_in_threadpool(
                    self.pipeline.request_confirmation,
                    email,
                    self.settings,
                    source="web",
                    store=self.store,
                )
            except NewsletterError:
                log.exception("resubscribe: requesting a confirmation failed")
                return self._trouble(request, "send a confirmation email")
            reason = result.reason
        return self._page(request, "resubscribe.html.j2", reason=reason, email=email)

    # Confirm -------------------------------------------------------------------------
    async def confirm_page(self, request: Request) -> Response:
        email = self._read(request.path_params["token"], "confirm")
        if email is None:
            return self._bad_link(request, "confirm")
        return self._page(request, "confirm.html.j2", state="ask", email=email)

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        if is_cross_site(request.headers, self._own_origins(request)):
            return self._cross_site(request)
        if self._read(token, "confirm") is None:
            return self._bad_link(request, "confirm")
        try:
            email = await run_in_threadpool(
                self.pipeline.confirm_token, token, self.settings, store=self.store
            )
        except TokenError as exc:
            if getattr(exc, "stale", False):  # minted before an unsubscribe (or other change)
                return self._page(request, "confirm.html.j2", state="stale", status_code=409)
            return self._bad_link(request, "confirm")
        except (LockTimeoutError, SubscriberFileError):
            log.exception("confirm: confirming a subscription failed")
            return self._trouble(request, "confirm your subscription")
        except NewsletterError:
            # removed or unsubscribed since the request: the link is spent, not broken
            return self._page(request, "confirm.html.j2", state="stale", status_code=409)
        return self._page(request, "confirm.html.j2", state="done", email=email)

    # Static, errors --------------------------------------------------------------------
    async def static(self, request: Request) -> Response:
        name = request.path_params["name"]
        data = self.pages.static.get(name)
        if data is None:
            raise HTTPException(404)
        return Response(
            data,
            media_type=STATIC_FILES[name],
            headers={"Cache-Control": "public, max-age=3600"},
        )

    async def not_found(self, request: Request, exc: Exception) -> Response:
        return self._notice(
            request,
            "Page not found",
            "There is nothing at this address.",
            status_code=404,
            link=(f"{self._base(request)}/subscribe", "Subscribe to the digest"),
        )

    async def not_allowed(self, request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Method Not Allowed\n", status_code=405)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return self._trouble(request, "handle that request")


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


class ArchiveFiles:
    """The archive folder as static files; a 404 (not an error) while it is not built."""

    def __init__(self, directory: Path) -> None:
        from starlette.staticfiles import StaticFiles

        self.directory = directory
        self.files = StaticFiles(directory=directory, html=True, check_dir=False)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if not self.directory.is_dir():
            raise HTTPException(404)
        await self.files(scope, receive, send)


def _archive_routes(settings: Settings) -> list[BaseRoute]:
    try:
        from newsletter.archive.site import archive_dir
    except ImportError:  # `newsletter archive` not installed: /archive is a 404
        return []
    files = ArchiveFiles(archive_dir(settings).resolve())
    return [Mount("/archive", app=files, name="archive")]


def create_app(
    settings: Settings,
    *,
    pipeline: Pipeline | None = None,
    limits: Limits | None = None,
) -> Starlette:
    """The app; raises ConfigError without NEWSLETTER_SECRET_KEY or with a bad webhook key."""
    # Paths are fixed now: a server outlives any later change of working directory.
    settings = settings.model_copy(update={"home": settings.home.resolve()})
    web = WebApp(settings, pipeline=pipeline or Pipeline(), limits=limits or Limits())
    sendgrid = SendGridEndpoints(settings, web.store, web.pipeline)
    routes: list[BaseRoute] = [
        Route("/", web.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.subscribe, methods=["POST"]),
        Route("/u/{token}", web.unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", web.unsubscribe, methods=["POST"]),
        Route("/confirm/{token}", web.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", web.confirm, methods=["POST"]),
        Route(
            "/inbound/{secret}",
            sendgrid.inbound,
            methods=["POST"],
            max_body_size=MAX_INBOUND_BODY,
        ),
        Route(
            "/webhooks/sendgrid",
            sendgrid.events,
            methods=["POST"],
            max_body_size=MAX_WEBHOOK_BODY,
        ),
        Route("/static/{name}", web.static, methods=["GET"]),
        *_archive_routes(settings),
    ]
    middleware = [Middleware(SecurityHeaders)]
    app = Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={
            404: web.not_found,
            405: web.not_allowed,
            Exception: web.server_error,
        },
        max_body_size=MAX_FORM_BODY,
    )
    app.state.web = web
    return app
