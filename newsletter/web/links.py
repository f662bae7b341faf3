"""The pages behind the signed links in every email: unsubscribe and confirm.

Both work the same way: the signed token in the URL is the only authority (a bad,
expired or wrong-purpose token gets a friendly 400 page); ``GET`` shows a page with a
button and changes nothing (link scanners prefetch); the button's ``POST`` is refused
if a browser says it came from another site.

* ``/u/{token}`` -- "Unsubscribe?"; the button unsubscribes, and the page after it
  offers to resubscribe (which mails a confirmation, never activates). A ``POST`` of
  ``List-Unsubscribe=One-Click`` is RFC 8058 one-click: mail providers send it from
  their own servers, so it skips the cross-site check and answers in plain text.
* ``/confirm/{token}`` -- "Confirm subscription"; the button confirms (pending ->
  active); a link minted before a later change of the row is spent (409). A link used
  already says "you are subscribed" (with a way to leave); an expired one offers a
  button that mails a fresh link (``action=resend``, rate-limited like resubscribing).
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from newsletter.audience.subscribers.addresses import SUPPRESSED, address_key
from newsletter.errors import (
    LockTimeoutError,
    NewsletterError,
    SubscriberFileError,
    TokenError,
)
from newsletter.i18n import N_
from newsletter.tokens import UNSUBSCRIBE_TTL, make_token, read_token
from newsletter.web.formdata import read_form
from newsletter.web.guards import is_cross_site
from newsletter.web.proxy import client_key

if TYPE_CHECKING:
    from newsletter.audience.subscribers.ledger import RowState
    from newsletter.audience.subscribers.store import SubscriberStore
    from newsletter.config import Settings
    from newsletter.web.guards import SlidingWindow
    from newsletter.web.limits import OncePerKey
    from newsletter.web.pages import Pages
    from newsletter.web.pipeline import Pipeline
    from newsletter.web.recorder import UnsubscribeRecorder

log = logging.getLogger("newsletter.web")


@dataclass(slots=True)
class LinkPages:
    """The unsubscribe and confirm handlers and what they use (shared with the app)."""

    settings: Settings
    secret: str
    store: SubscriberStore
    pipeline: Pipeline
    pages: Pages
    address_limiter: SlidingWindow
    requester_limiter: SlidingWindow
    #: replays of a done unsubscribe are answered from memory, never queue on the list
    unsubscribes: OncePerKey[bool]
    #: records the unsubscribes themselves: one thread, in batches (:mod:`.recorder`)
    recorder: UnsubscribeRecorder

    # Helpers ---------------------------------------------------------------------------
    def _own_origins(self, request: Request) -> set[str]:
        origins = {f"{request.url.scheme}://{request.url.netloc}".lower()}
        if self.settings.public_url:
            match = re.match(r"^https?://[^/]+", self.settings.public_url)
            if match:
                origins.add(match.group(0).lower())
        return origins

    def _read(self, token: str, purpose: str) -> str | None:
        try:
            return read_token(self.secret, token, purpose)
        except TokenError:
            return None

    def _bad_link(self, request: Request, purpose: str) -> Response:
        return self.pages.page(request, "bad_link.html.j2", status_code=400, purpose=purpose)

    def _cross_site(self, request: Request) -> Response:
        return self.pages.notice(
            request,
            N_("Request refused"),
            N_(
                "This button only works from this site's own page. Open the link from "
                "your email again and press the button there."
            ),
            status_code=403,
        )

    def _lookup(self, email: str) -> RowState | None:
        """The address's status now: the list's index plus the ledger (no read of the CSV)."""
        state = self.store.status(email)
        return None if state is None or state.status == "problem" else state

    async def _reader_language(self, email: str) -> str | None:
        """The listed reader's own language (their row's ``language``), if any."""
        try:
            sub = await run_in_threadpool(self._lookup, email)
        except NewsletterError:
            return None  # the page still works, in the browser's language
        return sub.language if sub is not None else None

    async def _unsubscribe_once(self, email: str, note: str) -> bool:
        key = address_key(email)
        if self.unsubscribes.remembers(key) and key not in self.store.held([key]):
            # A remembered "done" stands only while the ledger still holds the address
            # (one indexed read): a reader who confirmed again since (by a reply the
            # mailbox job read, in another process) and clicks the old link again must
            # really be unsubscribed again.
            self.unsubscribes.forget(key)
        # durable in the ledger when it returns (one commit, shared with the batch)
        return await self.unsubscribes.run(key, lambda: self.recorder.unsubscribe(email, note))

    # Unsubscribe ---------------------------------------------------------------------
    async def unsubscribe_page(self, request: Request) -> Response:
        email = self._read(request.path_params["token"], "unsubscribe")
        if email is None:
            return self._bad_link(request, "unsubscribe")
        try:
            sub = await run_in_threadpool(self._lookup, email)
        except NewsletterError:
            log.exception("unsubscribe page: reading the list failed")
            return self.pages.trouble(request, N_("look up your subscription"))
        if sub is None:
            return self.pages.page(request, "unsubscribe.html.j2", state="not-listed", email=email)
        state = "already" if sub.status in SUPPRESSED else "ask"
        return self.pages.page(
            request,
            "unsubscribe.html.j2",
            state=state,
            email=sub.email,
            reader_language=sub.language,
        )

    async def unsubscribe(self, request: Request) -> Response:
        token = request.path_params["token"]
        form = await read_form(request)
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
                found = await self._unsubscribe_once(email, "unsubscribed on the web")
            except NewsletterError:
                log.exception("unsubscribe button: writing the list failed")
                return self.pages.trouble(request, N_("record your unsubscribe"))
            state = "done" if found else "not-listed"
            return self.pages.page(
                request,
                "unsubscribe.html.j2",
                state=state,
                email=email,
                reader_language=await self._reader_language(email),
            )
        if action == "resubscribe":
            return await self._resubscribe(request, email)
        return self.pages.notice(
            request,
            N_("Nothing to do"),
            N_("That request was not understood. Open the link from your email again."),
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
            found = await self._unsubscribe_once(email, "one-click unsubscribe (RFC 8058)")
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
        client = client_key(request.client.host) if request.client else "unknown"
        limited = self.address_limiter.hit(address_key(email)) is not None
        if limited or self.requester_limiter.hit(client) is not None:
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
                return self.pages.trouble(request, N_("send a confirmation email"))
            reason = result.reason
        return self.pages.page(request, "resubscribe.html.j2", reason=reason, email=email)

    # Confirm -------------------------------------------------------------------------
    def _read_expired(self, token: str) -> str | None:
        """The address of a correctly signed confirm token that has expired (else None)."""
        try:
            return read_token(self.secret, token, "confirm", now=0.0)
        except TokenError:
            return None

    def _subscribed(self, request: Request, sub: RowState) -> Response:
        """An already-used link: say so, and offer the way out (a fresh unsubscribe link)."""
        leave = make_token(self.secret, "unsubscribe", sub.email, ttl=UNSUBSCRIBE_TTL)
        return self.pages.page(
            request,
            "confirm.html.j2",
            state="subscribed",
            email=sub.email,
            unsubscribe_path=f"/u/{quote(leave)}",
            reader_language=sub.language,
        )

    async def _row(self, email: str) -> RowState | None:
        try:
            return await run_in_threadpool(self._lookup, email)
        except NewsletterError:
            return None  # the page still works without knowing the row

    async def _expired(self, request: Request, token: str) -> Response:
        """An expired link: already subscribed, or an offer to mail a fresh one."""
        email = self._read_expired(token)
        if email is None:
            return self._bad_link(request, "confirm")
        sub = await self._row(email)
        if sub is not None and sub.status == "active":
            return self._subscribed(request, sub)
        return self.pages.page(
            request,
            "confirm.html.j2",
            state="expired",
            email=email,
            status_code=400,
            reader_language=sub.language if sub is not None else None,
        )

    async def confirm_page(self, request: Request) -> Response:
        token = request.path_params["token"]
        email = self._read(token, "confirm")
        if email is None:
            return await self._expired(request, token)
        sub = await self._row(email)
        if sub is not None and sub.status == "active":  # the link was used already
            return self._subscribed(request, sub)
        return self.pages.page(
            request,
            "confirm.html.j2",
            state="ask",
            email=email,
            reader_language=sub.language if sub is not None else None,
        )

    async def confirm(self, request: Request) -> Response:
        token = request.path_params["token"]
        if is_cross_site(request.headers, self._own_origins(request)):
            return self._cross_site(request)
        form = await read_form(request)
        if form.get("action", "") == "resend":  # the expired page's button
            email = self._read_expired(token)
            if email is None:
                return self._bad_link(request, "confirm")
            return await self._resubscribe(request, email)
        if self._read(token, "confirm") is None:
            return await self._expired(request, token)
        try:
            email = await run_in_threadpool(
                self.pipeline.confirm_token, token, self.settings, store=self.store
            )
        except TokenError as exc:
            if getattr(exc, "stale", False):  # minted before an unsubscribe (or other change)
                return self.pages.page(request, "confirm.html.j2", state="stale", status_code=409)
            return self._bad_link(request, "confirm")
        except (LockTimeoutError, SubscriberFileError):
            log.exception("confirm: confirming a subscription failed")
            return self.pages.trouble(request, N_("confirm your subscription"))
        except NewsletterError:
            # removed or unsubscribed since the request: the link is spent, not broken
            return self.pages.page(request, "confirm.html.j2", state="stale", status_code=409)
        self.unsubscribes.forget(address_key(email))  # a later unsubscribe must really run
        return self.pages.page(
            request,
            "confirm.html.j2",
            state="done",
            email=email,
            reader_language=await self._reader_language(email),
        )
