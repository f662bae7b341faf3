"""Rendering: an Issue -> inline-styled HTML and its plaintext twin, once per issue.

Pure functions of (issue, settings, templates). Personal parts are left as placeholders
(:data:`PLACEHOLDER_UNSUBSCRIBE`) that message.py fills per recipient, so an issue is
rendered and inlined once however many people receive it.
"""

from __future__ import annotations

import functools
import logging
import mimetypes
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jinja2
from markupsafe import Markup

from newsletter.compose.linebreak import display_width, wrap_text
from newsletter.compose.markup import LinkRefs, parse_inline, plain_text, to_html, to_text
from newsletter.errors import IssueFileError, Problem
from newsletter.i18n import choose_language, gettext_for, make_environment
from newsletter.lazyimport import deferring

if TYPE_CHECKING:
    from newsletter.compose.models import Issue
    from newsletter.config import Settings

PLACEHOLDER_UNSUBSCRIBE = "%%unsubscribe_url%%"
TEXT_WIDTH = 78


@dataclass(frozen=True, slots=True)
class InlineImage:
    cid: str  # Content-ID without angle brackets
    filename: str
    data: bytes
    maintype: str
    subtype: str


@dataclass(frozen=True, slots=True)
class RenderedIssue:
    slug: str
    subject: str
    preheader: str
    series: str
    html: str
    text: str
    images: tuple[InlineImage, ...]
    view_url: str | None = None


# Templates --------------------------------------------------------------------------
@functools.cache
def _environment(templates_dir: Path, language: str) -> jinja2.Environment:
    env = make_environment(
        jinja2.FileSystemLoader(str(templates_dir)),
        language,
        autoescape=lambda name: bool(name and name.endswith(".html.j2")),
        keep_trailing_newline=True,
    )
    env.filters["width"] = display_width  # underlines as wide as a CJK heading
    return env


def load_template(templates_dir: Path, name: str, language: str = "en") -> jinja2.Template:
    """``name`` from ``templates_dir``, its fixed strings in ``language``."""
    try:
        return _environment(templates_dir.resolve(), language).get_template(name)
    except jinja2.TemplateSyntaxError as exc:
        raise IssueFileError(
            [Problem(str(templates_dir / name), exc.lineno, "", f"template syntax: {exc.message}")]
        ) from None
    except jinja2.TemplateNotFound:
        raise IssueFileError(
            [Problem(str(templates_dir / name), None, "", "template not found")]
        ) from None


def read_stylesheet(templates_dir: Path) -> str:
    """The mail stylesheet ``email.css`` beside the templates ("" when there is none)."""
    css_file = templates_dir / "email.css"
    return css_file.read_text(encoding="utf-8") if css_file.exists() else ""


# premailer --------------------------------------------------------------------------
@functools.cache
def _quiet_cssutils() -> None:
    """cssutils logs a warning per unknown property (mso-*, -webkit-*): silence it once."""
    import cssutils

    cssutils.log.setLevel(logging.CRITICAL)


@functools.cache
def _premailer() -> Any:  # premailer has no type hints
    """premailer, imported without requests, urllib.request and encutils (they fetch remote
    stylesheets, which ``allow_network=False`` never does; :mod:`newsletter.lazyimport`)."""
    with deferring("requests", "urllib.request", "encutils"):
        import premailer
    return premailer


def inline_css(html: str) -> str:
    """Inline every CSS rule into style attributes; keep @media rules (with !important)."""
    premailer = _premailer()
    _quiet_cssutils()
    transformer = premailer.Premailer(
        html,
        allow_network=False,
        strip_important=False,
        keep_style_tags=False,
        remove_classes=False,
        disable_validation=True,
        cssutils_logging_level=logging.CRITICAL,
        align_floating_images=False,
        disable_leftover_css=False,
    )
    try:
        out: str = transformer.transform(pretty_print=False)
    except Exception as exc:  # premailer raises bare lxml/cssutils errors
        raise IssueFileError(
            [Problem("templates/email.html.j2", None, "", f"CSS inlining failed: {exc}")]
        ) from exc
    return out


# Plaintext helpers ------------------------------------------------------------------
def wrap(text: str, *, indent: str = "", first: str | None = None, width: int = TEXT_WIDTH) -> str:
    """Wrap at ``width`` display columns without breaking URLs or words (kinsoku for CJK)."""
    return "\n".join(
        wrap_text(text, width, first=indent if first is None else first, indent=indent)
    )


def _text_with_refs(markdown: str, refs: LinkRefs, *, first: str = "", indent: str = "") -> str:
    body, used = to_text(parse_inline(markdown), refs)
    out = wrap(body, first=first, indent=indent)
    if used:
        out += "\n" + "\n".join(f"{indent}[{n}] {refs.urls[n - 1]}" for n in used)
    return out


# Rendering --------------------------------------------------------------------------
LINK_STYLE = ""  # link colours come from the stylesheet via premailer


def _contact_markdown(text: str, settings: Settings, issue: Issue) -> str:
    contact = settings.contact_address
    return text.replace("{contact}", f"[{contact}](mailto:{contact})").replace(
        "{series}", issue.series
    )


def _hero_image(
    issue: Issue, settings: Settings, issue_dir: Path
) -> tuple[str, InlineImage | None]:
    """Where the HTML's <img src> points, and the image to attach as a CID part."""
    assert issue.hero is not None
    src = issue.hero.src
    if src.startswith("https://"):
        return src, None
    path = (issue_dir / src).resolve()
    if settings.assets_url:
        return f"{settings.assets_url}/{Path(src).name}", None
    try:
        data = path.read_bytes()
    except OSError:
        raise IssueFileError(
            [
                Problem(
                    issue.source,
                    issue.line_of("hero", "src"),
                    "hero.src",
                    f"image file not found: {path}",
                )
            ]
        ) from None
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    maintype, subtype = mime.split("/", 1)
    if maintype != "image":
        raise IssueFileError(
            [
                Problem(
                    issue.source,
                    issue.line_of("hero", "src"),
                    "hero.src",
                    f"not an image: {path.name}",
                )
            ]
        )
    domain = settings.sender_domain
    cid = f"{issue.slug}-hero.{subtype}@{domain}"
    return f"cid:{cid}", InlineImage(cid, path.name, data, maintype, subtype)


def view_url_for(slug: str, settings: Settings) -> str | None:
    """The archive page of an issue ("view in browser"), when a public URL is set."""
    return f"{settings.public_url}/archive/{slug}.html" if settings.public_url else None


def render_issue(
    issue: Issue, settings: Settings, *, issue_dir: Path | None = None
) -> RenderedIssue:
    """Render an issue's HTML (CSS inlined) and plaintext, with personal placeholders."""
    base = (
        issue_dir
        if issue_dir is not None
        else (Path(issue.source).parent if issue.source else settings.issues_dir)
    )
    templates = settings.templates_dir
    language = choose_language(issue.language, settings.language)
    _ = gettext_for(language)
    subject = issue.subject_in(language)
    view_url = view_url_for(issue.slug, settings)
    about_md = _contact_markdown(issue.footer.about, settings, issue)
    subscribe_md = _contact_markdown(issue.footer.subscribe, settings, issue)

    images: list[InlineImage] = []
    hero_ctx: dict[str, Any] | None = None
    hero_text: dict[str, str] | None = None
    if issue.hero is not None:
        src, image = _hero_image(issue, settings, base)
        if image is not None:
            images.append(image)
        credit = issue.hero.credit
        hero_ctx = {
            "src": src,
            "alt": issue.hero.alt,
            "width": issue.hero.width,
            "height": issue.hero.height,
            "credit_html": to_html(parse_inline(credit)) if credit else "",
        }

    stories_html = [
        {
            "anchor": f"story-{i + 1}",
            "headline": story.headline,
            "detail_html": to_html(parse_inline(story.detail)),
        }
        for i, story in enumerate(issue.stories)
    ]
    css = read_stylesheet(templates)
    common = {
        "subject": subject,
        "series": issue.series,
        "volume": issue.volume,
        "date_text": issue.date_in(language),
        "preheader": issue.effective_preheader,
        "view_url": view_url,
        "unsubscribe_url": Markup(PLACEHOLDER_UNSUBSCRIBE),
    }
    html = load_template(templates, "email.html.j2", language).render(
        **common,
        css=Markup(css),
        hero=hero_ctx,
        stories=stories_html,
        about_html=to_html(parse_inline(about_md)),
        subscribe_html=to_html(parse_inline(subscribe_md)),
    )
    html = inline_css(html)

    # Plaintext: its own template; links become numbered references under each paragraph.
    refs = LinkRefs()
    if issue.hero is not None:
        credit_text = _text_with_refs(issue.hero.credit, refs) if issue.hero.credit else ""
        hero_text = {
            "image_line": wrap(_("[Image: %(alt)s]") % {"alt": issue.hero.alt or _("issue image")}),
            "credit_text": credit_text,
        }
    stories_text = [
        {
            "headline_text": wrap(story.headline, first="- ", indent="  "),
            "detail_text": _text_with_refs(story.detail, refs, first="- ", indent="  "),
        }
        for story in issue.stories
    ]
    text = load_template(templates, "email.txt.j2", language).render(
        **common,
        hero=hero_text,
        stories=stories_text,
        about_text=_text_with_refs(about_md, refs),
        subscribe_text=_text_with_refs(subscribe_md, refs),
    )
    text = re.sub(r"\n{4,}", "\n\n\n", text).strip() + "\n"
    return RenderedIssue(
        slug=issue.slug,
        subject=subject,
        preheader=issue.effective_preheader,
        series=issue.series,
        html=html,
        text=text,
        images=tuple(images),
        view_url=view_url,
    )


def html_for_files(rendered: RenderedIssue) -> str:
    """The HTML with ``cid:`` image references pointing at files beside it (build/preview)."""
    html = rendered.html
    for image in rendered.images:
        html = html.replace(f"cid:{image.cid}", image.filename)
    return html


def headline_texts(issue: Issue) -> list[str]:
    return [story.headline for story in issue.stories]


def detail_leads(issue: Issue) -> list[str]:
    """The bold lead of every detail, for tests and previews."""
    from newsletter.compose.markup import Strong

    leads = []
    for story in issue.stories:
        strong = [n for n in story.detail_nodes() if isinstance(n, Strong)]
        leads.append(plain_text(strong[0].children) if strong else "")
    return leads
