"""``GET /reports``: the HTML issue report, behind a token.

A 404 unless NEWSLETTER_REPORT_TOKEN is set. The token is the password of HTTP basic
auth (any user name: a browser asks for it) or an ``Authorization: Bearer`` header;
it is compared in constant time, never taken from the URL (where logs would keep it).
The page is built from the event table on each request, in a worker thread, and sent
under a policy that lets it load nothing (:data:`~newsletter.reports.page.REPORT_CSP`).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response

if TYPE_CHECKING:
    from newsletter.config import Settings


@dataclass(frozen=True, slots=True)
class ReportPage:
    settings: Settings

    def _token(self) -> str | None:
        token = self.settings.report_token
        return token.get_secret_value() if token and token.get_secret_value() else None

    def _authorized(self, request: Request, token: str) -> bool:
        given = request.headers.get("authorization", "")
        scheme, _sep, value = given.partition(" ")
        offered = ""
        if scheme.lower() == "bearer":
            offered = value.strip()
        elif scheme.lower() == "basic":
            try:
                offered = base64.b64decode(value.strip(), validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                offered = ""
        return bool(offered) and hmac.compare_digest(offered.encode(), token.encode())

    def _render(self) -> str:
        from newsletter.reports.collect import collect
        from newsletter.reports.eventstore import EventStore
        from newsletter.reports.page import render_page
        from newsletter.reports.summary import build_reports

        with EventStore.in_state_dir(self.settings.state_dir) as store:
            collect(self.settings, store)
            reports = build_reports(store.tallies(), store.issues())
        return render_page(reports[-20:])

    async def page(self, request: Request) -> Response:
        from newsletter.reports.page import REPORT_CSP

        token = self._token()
        if token is None:
            raise HTTPException(404)
        if not self._authorized(request, token):
            return PlainTextResponse(
                "authorization required\n",
                status_code=401,
                headers={"WWW-Authenticate": 'Basic realm="newsletter reports", charset="UTF-8"'},
            )
        html = await run_in_threadpool(self._render)
        return HTMLResponse(
            html,
            headers={"Content-Security-Policy": REPORT_CSP, "Cache-Control": "no-store"},
        )
