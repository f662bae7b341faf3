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
from newsletter.i18n import (
    LANGUAGES,
    N_,
    choose_language,
    gettext_for,
    make_environment,
    negotiate_language,
)

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


def page_language(request: Request, reader: str | None, default: str) -> str:
    """A reader's own language, else the browser's ``Accept-Language``, else ``default``."""
    return choose_language(
        reader, negotiate_language(request.headers.get("accept-language")), default
    )


class Pages:
    """Renders ``templates/web/*.html.j2`` and serves the few static files."""

    def __init__(self, settings: Settings) -> None:
        self.folders = _search_path(settings)
        self.language = settings.language
        loader = jinja2.FileSystemLoader([str(f) for f in self.folders])
        # one environment per language: their {% trans %} blocks speak it
        self.envs = {
            language: make_environment(
                loader,
                language,
                autoescape=lambda name: bool(name and name.endswith(".html.j2")),
            )
            for language in LANGUAGES
        }
        self.env = self.envs[self.language]
        self.site = Site(
            name=settings.from_name or "The newsletter", contact=settings.contact_address
        )
        self.static: dict[str, bytes] = {}
        for name in STATIC_FILES:
            for folder in self.folders:
                if (folder / name).is_file():
                    self.static[name] = (folder / name).read_bytes()
                    break

    def render(self, template: str, *, language: str | None = None, **context: Any) -> str:
        env = self.envs[choose_language(language, self.language)]
        return env.get_template(template).render(site=self.site, **context)

    def response(
        self,
        template: str,
        *,
        status_code: int = 200,
        headers: dict[str, str] | None = None,
        language: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        html = self.render(template, language=language, **context)
        response = HTMLResponse(html, status_code=status_code, headers=headers)
        response.headers.setdefault("content-language", choose_language(language, self.language))
        response.headers.setdefault("vary", "Accept-Language")
        return response

    def page(
        self,
        request: Request,
        template: str,
        status_code: int = 200,
        *,
        reader_language: str | None = None,
        **context: Any,
    ) -> HTMLResponse:
        """``template`` as the answer to ``request`` (its links under :func:`base_path`),
        in the reader's language, else the one their browser asks for."""
        return self.response(
            template,
            status_code=status_code,
            base=base_path(request),
            language=page_language(request, reader_language, self.language),
            **context,
        )

    def notice(
        self,
        request: Request,
        title: str,
        *paragraphs: str,
        status_code: int = 200,
        link: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> HTMLResponse:
        """A page with a heading, paragraphs and an optional ``(href, text)`` link.

        The texts are catalogue entries (marked with ``N_`` where they are written),
        translated here into the language the browser asks for.
        """
        language = page_language(request, None, self.language)
        _ = gettext_for(language)
        return self.response(
            "notice.html.j2",
            status_code=status_code,
            headers=headers,
            language=language,
            base=base_path(request),
            title=_(title),
            paragraphs=[_(p) for p in paragraphs],
            link=(link[0], _(link[1])) if link else None,
        )

    def trouble(self, request: Request, what: str) -> HTMLResponse:
        """A 503 that says nothing was changed: "We could not ``what`` just now"."""
        _ = gettext_for(page_language(request, None, self.language))
        return self.notice(
            request,
            N_("Something went wrong on our side"),
            _(
                "We could not %(what)s just now, and nothing was changed. Please try again "
                "in a few minutes, or write to %(contact)s."
            )
            % {"what": _(what), "contact": self.site.contact},
            status_code=503,
            headers={"Retry-After": "120"},
        )
