"""The web pages: Jinja2 templates in ``templates/web/``, rendered to HTML responses.

A newsletter home may override any page with its own ``templates/web/<name>``; the
package's templates fill in the rest. Same conventions as the email: autoescape for
``*.html.j2``, ``StrictUndefined``. Every page links relative to where the app is
mounted (:func:`base_path`); the answers the handlers share (a notice, "something went
wrong on our side") are here too.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

import jinja2
from starlette.requests import Request
from starlette.responses import HTMLResponse

from newsletter.config import PACKAGE_TEMPLATES

if TYPE_CHECKING:
    from newsletter.config import Settings

WEB_DIR: Final = "web"
#: Static files served at /static/<name>, looked up like the templates.
STATIC_FILES: Final = {"web.css": "text/css; charset=utf-8", "favicon.svg": "image/svg+xml"}


def _search_path(settings: Settings) -> list[Path]:
    folders = [settings.home / "templates" / WEB_DIR, PACKAGE_TEMPLATES / WEB_DIR]
    unique: list[Path] = []
    for folder in folders:
        if folder.resolve() not in [u.resolve() for u in unique]:
            unique.append(folder)
    return unique


def base_path(request: Request) -> str:
    """Where the app is mounted (the ASGI ``root_path``): ``""`` at the server's root."""
    return str(request.scope.get("root_path", "")).rstrip("/")


@dataclass(frozen=True, slots=True)
class Site:
    """What every page shows: the newsletter's name and its contact address."""

    name: str
    contact: str

    @property
    def mailto_unsubscribe(self) -> str:
        return f"mailto:{self.contact}?subject=unsubscribe"

    @property
    def mailto_subscribe(self) -> str:
        return f"mailto:{self.contact}?subject=subscribe"


class Pages:
    """Renders ``templates/web/*.html.j2`` and serves the few static files."""

    def __init__(self, settings: Settings) -> None:
        self.folders = _search_path(settings)
        self.env = jinja2.Environment(
            loader=jinja2.FileSystemLoader([str(f) for f in self.folders]),
            autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self.site = Site(
            name=settings.from_name or "The newsletter", contact=settings.contact_address
        )
        self.static: dict[str, bytes] = {}
        for name in STATIC_FILES:
            for folder in self.folders:
                if (folder / name).is_file():
                    self.static[name] = (folder / name).read_bytes()
                    break

    def render(self, template: str, **context: Any) -> str:
        return self.env.get_template(template).render(site=self.site, **context)

    def response(
        self,
        template: str,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        **context: Any,
    ) -> HTMLResponse:
        return HTMLResponse(
            self.render(template, **context), status_code=status_code, headers=headers
        )

    def page(
        self, request: Request, template: str, status_code: int = 200, **context: Any
    ) -> HTMLResponse:
        """``template`` as the answer to ``request`` (its links under :func:`base_path`)."""
        return self.response(template, status_code=status_code, base=base_path(request), **context)

    def notice(
        self,
        request: Request,
        title: str,
        *paragraphs: str,
        status_code: int = 200,
        link: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        """A page with a heading, paragraphs and an optional ``(href, text)`` link."""
        return self.response(
            "notice.html.j2",
            status_code=status_code,
            headers=headers,
            base=base_path(request),
            title=title,
            paragraphs=list(paragraphs),
            link=link,
        )

    def trouble(self, request: Request, what: str) -> HTMLResponse:
        """A 503 that says nothing was changed: "We could not ``what`` just now"."""
        return self.notice(
            request,
            "Something went wrong on our side",
            f"We could not {what} just now, and nothing was changed. Please try again in a "
            f"few minutes, or write to {self.site.contact}.",
            status_code=503,
            headers={"Retry-After": "120"},
        )
