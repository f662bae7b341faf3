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
commits one row to the consent ledger (unsubscribes: one thread, in batches, see
:mod:`.recorder`); the lifespan runs the one background writer
that folds the ledger into the CSV (:mod:`newsletter.audience.subscribers.background`).

Around Starlette (outside its error handling, so a 500 page gets them too), outermost
first: :class:`~.proxy.ClientAddress` (the real client behind a trusted proxy),
:class:`~.guards.SecurityHeaders`, :class:`~.guards.HostCheck`,
:class:`~.limits.ClientBudget` (page loads per client), :class:`~.limits.BodyGuard`
(bodies that stall: 408). Body sizes are capped while they are read (Starlette's
``max_body_size``, per route family).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Receive, Scope, Send

from newsletter.audience.events import SIGNATURE_HEADER, TIMESTAMP_HEADER, TIMESTAMP_TOLERANCE
from newsletter.audience.subscribers.background import FoldPolicy, FoldWorker
from newsletter.audience.subscribers.store import SubscriberStore
from newsletter.i18n import N_
from newsletter.web.formdata import MAX_FORM_BODY
from newsletter.web.guards import CsrfGuard, HostCheck, SecurityHeaders, SlidingWindow
from newsletter.web.limits import BodyDeadline, BodyGuard, ClientBudget, OncePerKey
from newsletter.web.links import LinkPages
from newsletter.web.pages import STATIC_FILES, Pages, base_path
from newsletter.web.pipeline import Pipeline
from newsletter.web.proxy import ClientAddress, parse_networks
from newsletter.web.recorder import UnsubscribeRecorder
from newsletter.web.reports import ReportPage
from newsletter.web.sendgrid import MAX_INBOUND_BODY, MAX_WEBHOOK_BODY, SendGridEndpoints
from newsletter.web.signup import SignupForm

if TYPE_CHECKING:
    from newsletter.config import Settings


@dataclass(frozen=True, slots=True)
class Limits:
    """What one client may spend. Budgets are ``(hits, seconds)``, each per client address
    (the real one, behind NEWSLETTER_TRUSTED_PROXIES) or per target address."""

    per_ip: tuple[int, float] = (10, 600.0)  # signup form posts per client
    per_address: tuple[int, float] = (3, 3600.0)  # confirmation mails per recipient
    confirmations_per_client: tuple[int, float] = (5, 3600.0)  # ... per requester
    pages_per_client: tuple[int, float] = (120, 60.0)  # page loads per client
    unsubscribe_replay: float = 120.0  # seconds a done unsubscribe answers replays itself
    body_chunk: float = 10.0  # seconds between two pieces of a request body
    form_body: float = 20.0  # seconds for a whole form body
    provider_body: float = 120.0  # ... for a webhook or Inbound Parse body
    webhook_bodies: int = 4  # event webhook bodies read at once (the rest wait, then 503)


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
    requester_limiter: SlidingWindow = field(init=False)
    signup: SignupForm = field(init=False)
    links: LinkPages = field(init=False)

    def __post_init__(self) -> None:
        self.secret = self.settings.require_secret()
        self.store = SubscriberStore.from_settings(self.settings)
        self.pages = Pages(self.settings)
        self.csrf = CsrfGuard(self.secret)
        self.ip_limiter = SlidingWindow(*self.limits.per_ip)
        self.address_limiter = SlidingWindow(*self.limits.per_address)
        self.requester_limiter = SlidingWindow(*self.limits.confirmations_per_client)
        self.signup = SignupForm(
            self.settings,
            self.store,
            self.pipeline,
            self.pages,
            self.csrf,
            self.ip_limiter,
            self.address_limiter,
            self.requester_limiter,
        )
        self.links = LinkPages(
            self.settings,
            self.secret,
            self.store,
            self.pipeline,
            self.pages,
            self.address_limiter,
            self.requester_limiter,
            # only a done unsubscribe answers replays; "not on the list" may change soon
            OncePerKey(self.limits.unsubscribe_replay, remember=bool),
            UnsubscribeRecorder(self.store),
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


class WebhookGate:
    """The Event Webhook before its body is read: a request without a well-formed, fresh
    timestamp and a signature is refused at once (403, nothing buffered), and at most
    ``limits.webhook_bodies`` bodies are read at a time (the rest wait, then 503)."""

    def __init__(self, endpoints: SendGridEndpoints, limits: Limits) -> None:
        self.endpoints = endpoints
        self.slots = asyncio.Semaphore(limits.webhook_bodies)

    @staticmethod
    def _plausible(request: Request) -> bool:
        stamp = (request.headers.get(TIMESTAMP_HEADER) or "").strip()
        if not request.headers.get(SIGNATURE_HEADER) or not stamp.isascii():
            return False
        if not stamp.isdigit() or len(stamp) > 12:
            return False
        return abs(time.time() - int(stamp)) <= TIMESTAMP_TOLERANCE

    async def events(self, request: Request) -> Response:
        if self.endpoints.webhook_key is None:
            raise HTTPException(404)
        if not self._plausible(request):
            return PlainTextResponse("signature verification failed\n", status_code=403)
        try:
            await asyncio.wait_for(self.slots.acquire(), timeout=10)
        except TimeoutError:
            return PlainTextResponse(
                "busy, retry later\n", status_code=503, headers={"Retry-After": "30"}
            )
        try:
            return await self.endpoints.events(request)
        finally:
            self.slots.release()


class WebStarlette(Starlette):
    """Starlette with ``outer`` layers outside its own error handling, so that the 500
    page (and every other answer) passes through them too."""

    def __init__(self, *args: Any, outer: Callable[[ASGIApp], ASGIApp], **kwargs: Any) -> None:
        self._outer = outer
        super().__init__(*args, **kwargs)

    def build_middleware_stack(self) -> ASGIApp:
        return self._outer(super().build_middleware_stack())


def _outer_layers(settings: Settings, limits: Limits) -> Callable[[ASGIApp], ASGIApp]:
    form = BodyDeadline(limits.body_chunk, limits.form_body)
    provider = BodyDeadline(limits.body_chunk, limits.provider_body)
    trusted = parse_networks(settings.trusted_proxies)

    def wrap(app: ASGIApp) -> ASGIApp:
        app = BodyGuard(app, default=form, families={"/inbound/": provider, "/webhooks/": provider})
        app = ClientBudget(app, limit=limits.pages_per_client[0], window=limits.pages_per_client[1])
        app = HostCheck(app, public_url=settings.public_url)
        app = SecurityHeaders(app)
        return ClientAddress(app, trusted=trusted)

    return wrap


def _fold_lifespan(web: WebApp) -> Callable[[Starlette], AbstractAsyncContextManager[None]]:
    """Start-up: the subscriber index is brought up to date before the first request, then
    one background writer folds the consent ledger into the CSV; shutdown: a last fold."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        live = web.store.live
        if live is None:  # pragma: no cover - from_settings always has a ledger
            yield
            return
        settings = web.settings
        worker = FoldWorker(
            live,
            FoldPolicy(
                quiet=settings.fold_quiet_seconds,
                batch=settings.fold_batch,
                max_delay=settings.fold_max_delay,
            ),
        )
        await run_in_threadpool(worker.start)
        web.links.recorder.start()  # its thread and connections ready before the first request
        app.state.fold_worker = worker
        try:
            yield
        finally:
            await run_in_threadpool(web.links.recorder.stop)  # what waits is recorded first
            await run_in_threadpool(worker.stop)

    return lifespan


def create_app(
    settings: Settings,
    *,
    pipeline: Pipeline | None = None,
    limits: Limits | None = None,
) -> Starlette:
    """The app; raises ConfigError without NEWSLETTER_SECRET_KEY or with a bad webhook key."""
    # Paths are fixed now: a server outlives any later change of working directory.
    settings = settings.model_copy(update={"home": settings.home.resolve()})
    limits = limits or Limits()
    web = WebApp(settings, pipeline=pipeline or Pipeline(), limits=limits)
    sendgrid = SendGridEndpoints(settings, web.store, web.pipeline)

    async def inbound(request: Request) -> Response:
        try:
            return await sendgrid.inbound(request)
        finally:  # a message may have confirmed someone: replays are answered afresh
            web.links.unsubscribes.clear()

    routes: list[BaseRoute] = [
        Route("/", web.signup.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.signup.subscribe_form, methods=["GET"]),
        Route("/subscribe", web.signup.subscribe, methods=["POST"]),
        Route("/u/{token}", web.links.unsubscribe_page, methods=["GET"]),
        Route("/u/{token}", web.links.unsubscribe, methods=["POST"]),
        Route("/confirm/{token}", web.links.confirm_page, methods=["GET"]),
        Route("/confirm/{token}", web.links.confirm, methods=["POST"]),
        Route("/inbound/{secret}", inbound, methods=["POST"], max_body_size=MAX_INBOUND_BODY),
        Route(
            "/webhooks/sendgrid",
            WebhookGate(sendgrid, limits).events,
            methods=["POST"],
            max_body_size=MAX_WEBHOOK_BODY,
        ),
        Route("/static/{name}", web.static, methods=["GET"]),
        Route("/reports", ReportPage(settings).page, methods=["GET"]),
        *_archive_routes(settings),
    ]
    app = WebStarlette(
        routes=routes,
        lifespan=_fold_lifespan(web),
        exception_handlers={
            404: web.not_found,
            405: web.not_allowed,
            Exception: web.server_error,
        },
        max_body_size=MAX_FORM_BODY,
        outer=_outer_layers(settings, limits),
    )
    app.state.web = web
    return app
