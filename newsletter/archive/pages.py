"""The archive's HTML: one page per issue and the index, rendered from the templates.

Pure: the loaded issues, the settings and a Jinja2 environment in, ``{relative path:
bytes}`` out. :func:`issue_context` is the issue body both a page and a feed entry show.
On the web a placeholder ``#`` link keeps its words but is not a link.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, Final

from markupsafe import Markup

from newsletter.compose.markup import Emphasis, Link, Node, Strong, is_placeholder_url, parse_inline
from newsletter.compose.markup import to_html as markup_to_html
from newsletter.compose.render import view_url_for
from newsletter.i18n import choose_language, gettext_for

if TYPE_CHECKING:
    import jinja2

    from newsletter.archive.issues import ArchivedIssue
    from newsletter.compose.models import Issue
    from newsletter.config import Settings

INDEX: Final = "index.html"


def _web_html(nodes: Iterable[Node]) -> Markup:
    """Inline Markdown as HTML for the web: a placeholder ``#`` link keeps its words but
    is not a link (on a web page it would only jump to the top)."""
    parts: list[Markup] = []
    for node in nodes:
        if isinstance(node, Link) and is_placeholder_url(node.url):
            parts.append(_web_html(node.children))
        elif isinstance(node, Strong):
            parts.append(Markup("<strong>%s</strong>") % _web_html(node.children))
        elif isinstance(node, Emphasis):
            parts.append(Markup("<em>%s</em>") % _web_html(node.children))
        else:
            parts.append(markup_to_html((node,)))
    return Markup("").join(parts)


def _markdown(text: str) -> Markup:
    return _web_html(parse_inline(text))


def _footer_markdown(text: str, issue: Issue, settings: Settings) -> str:
    contact = settings.contact_address
    return text.replace("{contact}", f"[{contact}](mailto:{contact})").replace(
        "{series}", issue.series
    )


def signup_href(settings: Settings) -> str:
    """Where an archive page's "Subscribe" goes: the signup form when the site is
    served, else a mail to the contact address (static pages cannot carry CSRF)."""
    if settings.public_url:
        return f"{settings.public_url}/subscribe"
    return f"mailto:{settings.contact_address}?subject=subscribe"


def _label(item: ArchivedIssue, language: str) -> str:
    _ = gettext_for(language)
    return _("Vol %(volume)s") % {"volume": item.issue.volume}


def issue_language(item: ArchivedIssue, settings: Settings) -> str:
    """The issue's own ``language:``, else the newsletter's."""
    return choose_language(item.issue.language, settings.language)


def issue_context(
    item: ArchivedIssue, settings: Settings, *, base: str = "", in_feed: bool = False
) -> dict[str, Any]:
    """What the issue body needs. ``base`` prefixes every site link (``''``, or the
    archive's absolute URL in the feed); in the feed, anchors name the page too."""
    issue = item.issue
    language = issue_language(item, settings)
    hero: dict[str, Any] | None = None
    if issue.hero is not None:
        local = item.hero_asset is not None
        hero = {
            "src": f"{base}{item.hero_asset}" if local else None,
            "url": None if local else issue.hero.src,
            "alt": issue.hero.alt,
            "width": issue.hero.width,
            "height": issue.hero.height,
            "credit_html": _markdown(issue.hero.credit) if issue.hero.credit else None,
        }
    return {
        "slug": item.slug,
        "series": issue.series,
        "volume": issue.volume,
        "date_text": issue.date_in(language),
        "date_iso": issue.date.isoformat(),
        "hero": hero,
        "anchor_prefix": f"{base}{item.slug}.html" if in_feed else "",
        "stories": [
            {
                "anchor": f"story-{i + 1}",
                "headline": story.headline,
                "detail_html": _markdown(story.detail),
            }
            for i, story in enumerate(issue.stories)
        ],
        "about_html": _markdown(_footer_markdown(issue.footer.about, issue, settings)),
        "subscribe_html": _markdown(_footer_markdown(issue.footer.subscribe, issue, settings)),
    }


def render_pages(
    issues: list[ArchivedIssue],
    settings: Settings,
    env: jinja2.Environment,
    head: Mapping[str, str],
    *,
    env_for: Callable[[str], jinja2.Environment] | None = None,
) -> dict[str, bytes]:
    """Each issue's page (with its local hero image) and the index, from issues in
    oldest-first order. ``head`` is what every page links to: stylesheet and feed.
    ``env_for(language)`` gives the templates for an issue in another language than
    ``env``'s (its page's chrome follows the issue)."""
    newest = issues[-1].issue
    pages: dict[str, bytes] = {}
    site_language = choose_language(settings.language)

    for i, item in enumerate(issues):
        prev = issues[i - 1] if i > 0 else None
        nxt = issues[i + 1] if i + 1 < len(issues) else None
        language = issue_language(item, settings)
        page_env = env_for(language) if env_for is not None else env
        html = page_env.get_template("issue.html.j2").render(
            **head,
            **issue_context(item, settings),
            title=item.issue.subject_in(language),
            signup_href=signup_href(settings),
            description=item.issue.effective_preheader,
            canonical=view_url_for(item.slug, settings),
            prev={"href": f"{prev.slug}.html", "label": _label(prev, language)} if prev else None,
            next={"href": f"{nxt.slug}.html", "label": _label(nxt, language)} if nxt else None,
        )
        pages[f"{item.slug}.html"] = html.encode("utf-8")
        if item.hero_asset is not None and item.hero_data is not None:
            pages[item.hero_asset] = item.hero_data

    _ = gettext_for(site_language)
    index_html = env.get_template("index.html.j2").render(
        **head,
        title=_("%(series)s: archive") % {"series": newest.series},
        series=newest.series,
        signup_href=signup_href(settings),
        canonical=f"{settings.public_url}/archive/" if settings.public_url else None,
        latest={"href": f"{issues[-1].slug}.html", "label": _label(issues[-1], site_language)},
        entries=[
            {
                "href": f"{item.slug}.html",
                "label": _label(item, site_language),
                "date_text": item.issue.date_in(site_language),
                "date_iso": item.issue.date.isoformat(),
                "headlines": [
                    {"href": f"{item.slug}.html#story-{n + 1}", "text": story.headline}
                    for n, story in enumerate(item.issue.stories)
                ],
            }
            for item in reversed(issues)
        ],
        about_html=_markdown(_footer_markdown(newest.footer.about, newest, settings)),
        subscribe_html=_markdown(_footer_markdown(newest.footer.subscribe, newest, settings)),
    )
    pages[INDEX] = index_html.encode("utf-8")
    return pages
