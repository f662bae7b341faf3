"""The archive's Atom feed (RFC 4287): one full-content entry per issue, newest first.

Pure, like the pages: entry ids are RFC 4151 tag URIs from the sender domain and the
issue's date (stable across edits), times come from the issues (no clock), and links
are absolute under ``public_url`` when there is one, else relative with ``xml:base``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Final

from newsletter.archive.pages import INDEX, issue_context
from newsletter.i18n import choose_language, gettext_for

if TYPE_CHECKING:
    import jinja2

    from newsletter.archive.issues import ArchivedIssue
    from newsletter.config import Settings

FEED: Final = "feed.xml"
# characters XML 1.0 forbids (YAML's "\x01" escapes could smuggle them in)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def _rfc3339(item: ArchivedIssue) -> str:
    return f"{item.issue.date.isoformat()}T00:00:00Z"


def _feed_base(settings: Settings) -> str:
    return f"{settings.public_url}/archive/" if settings.public_url else ""


def _tag(settings: Settings, date_iso: str, specific: str) -> str:
    """An RFC 4151 tag URI: stable for as long as the sender domain and date stay."""
    return f"tag:{settings.sender_domain},{date_iso}:{specific}"


def render_feed(issues: list[ArchivedIssue], settings: Settings, env: jinja2.Environment) -> bytes:
    """The feed, from issues in oldest-first order."""
    feed_title = issues[-1].issue.series
    language = choose_language(settings.language)
    _ = gettext_for(language)
    base = _feed_base(settings)
    content_template = env.get_template("content.html.j2")
    entries = []
    for item in reversed(issues):
        # str, not Markup: the feed template escapes it once (type="html")
        content = str(
            content_template.render(
                **issue_context(item, settings, base=base, in_feed=True), with_footer=True
            )
        )
        entries.append(
            {
                "id": _tag(settings, item.issue.date.isoformat(), item.slug),
                "title": item.issue.subject_in(choose_language(item.issue.language, language)),
                "updated": _rfc3339(item),
                "href": f"{base}{item.slug}.html",
                "summary": item.issue.effective_preheader,
                "content": content.strip(),
            }
        )
    feed = env.get_template("feed.xml.j2").render(
        id=_tag(settings, issues[0].issue.date.isoformat(), "archive"),
        title=feed_title,
        subtitle=_("Every issue of %(series)s, in full") % {"series": feed_title},
        updated=max(_rfc3339(item) for item in issues),
        author=settings.from_name or feed_title,
        xml_base=base or "./",
        home_href=base or INDEX,
        self_href=f"{base}{FEED}" if base else None,
        entries=entries,
    )
    return _XML_INVALID.sub("", feed).encode("utf-8")
