"""The ASGI app behind ``newsletter serve``: its routes and the state they share.

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

The handlers live by concern: :mod:`.signup` (the form), :mod:`.links` (unsubscribe
and confirm), :mod:`.sendgrid` (the provider endpoints); the static files, the error
pages and the archive mount are here. Every store write runs in a worker thread and
takes the subscriber file's lock.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import Receive, Scope, Send

from newsletter.audience.subscribers.store import SubscriberStore
from newsletter.i18n import N_
from newsletter.web.formdata import MAX_FORM_BODY
from newsletter.web.guards import CsrfGuard, SecurityHeaders, SlidingWindow
from newsletter.web.links import LinkPages
from newsletter.web.pages import STATIC_FILES, Pages, base_path
from newsletter.web.pipeline import Pipeline
from newsletter.web.reports import ReportPage
from newsletter.web.sendgrid import MAX_INBOUND_BODY, MAX_WEBHOOK_BODY, SendGridEndpoints
from newsletter.web.signup import SignupForm

if TYPE_CHECKING:
    from newsletter.config import Settings


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
    signup: SignupForm = field(init=False)
    links: LinkPages = field(init=False)

    def __post_init__(self) -> None:
        self.secret = self.settings.require_secret()
        self.store = SubscriberStore.from_settings(self.settings)
        self.pages = Pages(self.settings)
        self.csrf = CsrfGuard(self.secret)
        self.ip_limiter = SlidingWindow(*self.limits.per_ip)
        self.address_limiter = SlidingWindow(*self.limits.per_address)
        self.signup = SignupForm(
            self.settings,
            self.store,
            self.pipeline,
            self.pages,
            self.csrf,
            self.ip_limiter,
            self.address_limiter,
        )
        self.links = LinkPages(
            self.settings,
            self.secret,
            self.store,
            self.pipeline,
            self.pages,
            self.address_limiter,
        )

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
        return self.pages.notice(
            request,
            N_("Page not found"),
            N_("There is nothing at this address."),
            status_code=404,
            link=(f"{base_path(request)}/subscribe", N_("Subscribe to the digest")),
        )

    async def not_allowed(self, request: Request, exc: Exception) -> Response:
        return PlainTextResponse("Method Not Allowed\n", status_code=405)

    async def server_error(self, request: Request, exc: Exception) -> Response:
        return self.pages.trouble(request, N_("handle that request"))


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
        Route("/", web.signup.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.signup.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.signup.subscribe, methods=["POST"]),
        Route("/u/{token}", web.links.unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", web.links.unsubscribe, methods=["POST"]),
        Route("/confirm/{token}", web.links.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", web.links.confirm, methods=["POST"]),
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
        Route("/reports", ReportPage(settings).page, methods=["GET"]),
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
