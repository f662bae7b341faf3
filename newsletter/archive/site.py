"""The static web archive: every issue as a page, an index, and an Atom feed.

Stages, each a function: :func:`load_archive_issues` reads every ``issues/vol-*.yaml``
(collecting every problem, never skipping silently), :func:`render_site` turns the
loaded issues into ``{relative path: bytes}`` (pure: no clock, no I/O, stable order, so
two builds are byte-identical), and :func:`write_site` writes only what changed,
atomically, so unchanged files keep their mtimes. :func:`build_archive` runs all three.

The site, in :func:`archive_dir` (``build/archive/``) unless told otherwise::

    index.html               every issue, newest first: volume, date, headlines
    vol-2.19.html            one page per issue: the email's "view in browser" target
    feed.xml                 Atom feed (RFC 4287), one full-content entry per issue
    archive.css              the one stylesheet (no fonts, scripts or other requests)
    assets/vol-2.19/<file>   local hero images (https images are linked, not fetched)

Every link between the files is relative, so the folder works from any web server, at
any subpath, or opened from disk. ``newsletter serve`` mounts it at ``/archive``, which
is where :func:`newsletter.render.view_url_for` points the email's "view in browser".
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import jinja2
from markupsafe import Markup

from newsletter.compose.issuefile import list_issue_files, load_issue
from newsletter.compose.markup import Emphasis, Link, Node, Strong, is_placeholder_url, parse_inline
from newsletter.compose.markup import to_html as markup_to_html
from newsletter.compose.render import view_url_for
from newsletter.config import PACKAGE_TEMPLATES
from newsletter.errors import IssueFileError, NewsletterError, Problem
from newsletter.files import write_atomic

if TYPE_CHECKING:
    from newsletter.compose.models import Issue
    from newsletter.config import Settings

STYLESHEET = "archive.css"
FEED = "feed.xml"
INDEX = "index.html"
Status = Literal["written", "unchanged", "removed", "kept"]
# characters XML 1.0 forbids (YAML's "\x01" escapes could smuggle them in)
_XML_INVALID = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


def archive_dir(settings: Settings) -> Path:
    """Where ``newsletter archive`` writes the site by default, and what ``newsletter serve``
    mounts at ``/archive``: ``build/archive/`` under the newsletter's home."""
    return settings.build_dir / "archive"


# Results ----------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class ArchivedIssue:
    """A valid issue ready for the site, with its hero image's bytes if it is a file."""

    issue: Issue
    path: Path
    hero_asset: str | None = None  # site-relative path, e.g. assets/vol-2.19/hero.png
    hero_data: bytes | None = None

    @property
    def slug(self) -> str:
        return self.issue.slug


@dataclass(frozen=True, slots=True)
class SkippedIssue:
    """An issue file left out by ``--skip-invalid``, with every problem it has."""

    path: Path
    problems: tuple[Problem, ...]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one file of the site (``path`` is relative to the site folder)."""

    path: str
    status: Status


@dataclass
class ArchiveResult:
    out_dir: Path
    issues: list[ArchivedIssue] = field(default_factory=list)
    skipped: list[SkippedIssue] = field(default_factory=list)
    files: list[FileOutcome] = field(default_factory=list)

    def paths(self, status: Status) -> list[str]:
        return [f.path for f in self.files if f.status == status]

    @property
    def written(self) -> list[str]:
        return self.paths("written")

    @property
    def unchanged(self) -> list[str]:
        return self.paths("unchanged")

    @property
    def removed(self) -> list[str]:
        return self.paths("removed")


# Loading ----------------------------------------------------------------------------
def _problem(issue: Issue, path: Path, field_: tuple[str, ...], message: str) -> Problem:
    return Problem(str(path), issue.line_of(*field_), ".".join(field_), message)


def _load_one(path: Path) -> ArchivedIssue:
    """Load an issue for the archive; raise IssueFileError with every problem."""
    issue = load_issue(path)
    problems: list[Problem] = []  # (load_issue already refuses a volume/file-name mismatch)
    hero_asset: str | None = None
    hero_data: bytes | None = None
    if issue.hero is not None and not issue.hero.src.startswith("https://"):
        image = path.parent / issue.hero.src
        mime = mimetypes.guess_type(image.name)[0] or ""
        try:
            hero_data = image.read_bytes()
        except OSError:
            problems.append(
                _problem(issue, path, ("hero", "src"), f"image file not found: {image}")
            )
        else:
            if not mime.startswith("image/"):
                problems.append(
                    _problem(issue, path, ("hero", "src"), f"not an image: {image.name}")
                )
            hero_asset = f"assets/{issue.slug}/{image.name}"
    if problems:
        raise IssueFileError(problems)
    return ArchivedIssue(issue, path, hero_asset, hero_data)


def load_archive_issues(
    settings: Settings, *, skip_invalid: bool = False
) -> tuple[list[ArchivedIssue], list[SkippedIssue]]:
    """Every issue file, oldest first. Invalid files raise one IssueFileError naming every
    problem in every file, unless ``skip_invalid``: then they are returned as skipped."""
    files = list_issue_files(settings.issues_dir)
    loaded: list[ArchivedIssue] = []
    skipped: list[SkippedIssue] = []
    for path in files:
        try:
            loaded.append(_load_one(path))
        except IssueFileError as exc:
            skipped.append(SkippedIssue(path, tuple(exc.problems)))
    if skipped and not skip_invalid:
        raise IssueFileError(
            [p for s in skipped for p in s.problems],
            hint="fix the issue file, or run `newsletter archive --skip-invalid` "
            "to build the archive without it",
        )
    if not loaded:
        where = f"{settings.issues_dir}/"
        if skipped:
            raise NewsletterError(f"{where}: every issue file has errors; nothing to archive")
        raise NewsletterError(f"{where}: no issue files (vol-X.Y.yaml) to archive")
    return loaded, skipped


# Rendering (pure) -------------------------------------------------------------------
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


def _environment(templates_dir: Path) -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(templates_dir)),
        autoescape=lambda name: bool(name and name.endswith((".html.j2", ".xml.j2"))),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def templates_for(settings: Settings) -> Path:
    """``templates/archive/`` in the home if it has one, else the package's."""
    local = settings.templates_dir / "archive"
    return local if (local / "issue.html.j2").exists() else PACKAGE_TEMPLATES / "archive"


def _rfc3339(item: ArchivedIssue) -> str:
    return f"{item.issue.date.isoformat()}T00:00:00Z"


def _label(item: ArchivedIssue) -> str:
    return f"Vol {item.issue.volume}"


def _issue_context(
    item: ArchivedIssue, settings: Settings, *, base: str = "", in_feed: bool = False
) -> dict[str, Any]:
    """What the issue body needs. ``base`` prefixes every site link (``''``, or the
    archive's absolute URL in the feed); in the feed, anchors name the page too."""
    issue = item.issue
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
        "date_text": issue.date_text,
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


def _feed_base(settings: Settings) -> str:
    return f"{settings.public_url}/archive/" if settings.public_url else ""


def _tag(settings: Settings, date_iso: str, specific: str) -> str:
    """An RFC 4151 tag URI: stable for as long as the sender domain and date stay."""
    return f"tag:{settings.sender_domain},{date_iso}:{specific}"


def render_site(
    issues: list[ArchivedIssue], settings: Settings, templates_dir: Path | None = None
) -> dict[str, bytes]:
    """The whole site as ``{relative path: bytes}``, from issues in oldest-first order."""
    env = _environment(templates_dir or templates_for(settings))
    newest = issues[-1].issue
    feed_title = newest.series
    common = {"feed_href": FEED, "stylesheet": STYLESHEET, "feed_title": f"{feed_title} (Atom)"}
    site: dict[str, bytes] = {}

    page_template = env.get_template("issue.html.j2")
    for i, item in enumerate(issues):
        prev = issues[i - 1] if i > 0 else None
        nxt = issues[i + 1] if i + 1 < len(issues) else None
        html = page_template.render(
            **common,
            **_issue_context(item, settings),
            title=item.issue.effective_subject,
            description=item.issue.effective_preheader,
            canonical=view_url_for(item.slug, settings),
            prev={"href": f"{prev.slug}.html", "label": _label(prev)} if prev else None,
            next={"href": f"{nxt.slug}.html", "label": _label(nxt)} if nxt else None,
        )
        site[f"{item.slug}.html"] = html.encode("utf-8")
        if item.hero_asset is not None and item.hero_data is not None:
            site[item.hero_asset] = item.hero_data

    newest_first = list(reversed(issues))
    index_html = env.get_template("index.html.j2").render(
        **common,
        title=f"{feed_title}: archive",
        series=feed_title,
        canonical=f"{settings.public_url}/archive/" if settings.public_url else None,
        latest={"href": f"{issues[-1].slug}.html", "label": _label(issues[-1])},
        entries=[
            {
                "href": f"{item.slug}.html",
                "label": _label(item),
                "date_text": item.issue.date_text,
                "date_iso": item.issue.date.isoformat(),
                "headlines": [
                    {"href": f"{item.slug}.html#story-{n + 1}", "text": story.headline}
                    for n, story in enumerate(item.issue.stories)
                ],
            }
            for item in newest_first
        ],
        about_html=_markdown(_footer_markdown(newest.footer.about, newest, settings)),
        subscribe_html=_markdown(_footer_markdown(newest.footer.subscribe, newest, settings)),
    )
    site[INDEX] = index_html.encode("utf-8")

    base = _feed_base(settings)
    content_template = env.get_template("content.html.j2")
    entries = []
    for item in newest_first:
        # str, not Markup: the feed template escapes it once (type="html")
        content = str(
            content_template.render(
                **_issue_context(item, settings, base=base, in_feed=True), with_footer=True
            )
        )
        entries.append(
            {
                "id": _tag(settings, item.issue.date.isoformat(), item.slug),
                "title": item.issue.effective_subject,
                "updated": _rfc3339(item),
                "href": f"{base}{item.slug}.html",
                "summary": item.issue.effective_preheader,
                "content": content.strip(),
            }
        )
    feed = env.get_template("feed.xml.j2").render(
        id=_tag(settings, issues[0].issue.date.isoformat(), "archive"),
        title=feed_title,
        subtitle=f"Every issue of {feed_title}, in full",
        updated=max(_rfc3339(item) for item in issues),
        author=settings.from_name or feed_title,
        xml_base=base or "./",
        home_href=base or INDEX,
        self_href=f"{base}{FEED}" if base else None,
        entries=entries,
    )
    site[FEED] = _XML_INVALID.sub("", feed).encode("utf-8")

    css = (templates_dir or templates_for(settings)) / STYLESHEET
    site[STYLESHEET] = css.read_bytes()
    return dict(sorted(site.items()))


# Writing ----------------------------------------------------------------------------
def _owned(relative: str) -> str | None:
    """The issue slug a site file belongs to (pages and their assets), else None."""
    match = re.fullmatch(r"(vol-\d+\.\d+)\.html|assets/(vol-\d+\.\d+)/[^/]+", relative)
    if match is None:
        return None
    return match.group(1) or match.group(2)


def write_site(
    site: dict[str, bytes], out_dir: Path, *, keep_slugs: Iterable[str] = ()
) -> list[FileOutcome]:
    """Write files whose bytes changed (atomically); leave the rest untouched. Pages and
    assets of issues no longer in issues/ are removed, except those in ``keep_slugs``
    (issues skipped as invalid keep their last good page)."""
    outcomes: list[FileOutcome] = []
    for relative, data in site.items():
        target = out_dir / relative
        try:
            same = target.is_file() and target.read_bytes() == data
        except OSError:
            same = False
        if same:
            outcomes.append(FileOutcome(relative, "unchanged"))
        else:
            write_atomic(target, data)
            outcomes.append(FileOutcome(relative, "written"))
    keep = set(keep_slugs)
    if out_dir.is_dir():
        existing = sorted(
            p.relative_to(out_dir).as_posix()
            for p in [*out_dir.glob("vol-*.html"), *out_dir.glob("assets/vol-*/*")]
            if p.is_file()
        )
        for relative in existing:
            slug = _owned(relative)
            if slug is None or relative in site:
                continue
            if slug in keep:
                outcomes.append(FileOutcome(relative, "kept"))
                continue
            (out_dir / relative).unlink()
            outcomes.append(FileOutcome(relative, "removed"))
            folder = (out_dir / relative).parent
            if folder != out_dir and not any(folder.iterdir()):
                folder.rmdir()
    return outcomes


def build_archive(
    settings: Settings, out_dir: Path | None = None, *, skip_invalid: bool = False
) -> ArchiveResult:
    """Build the archive from every issue file into ``out_dir`` (default
    :func:`archive_dir`). An invalid issue file raises IssueFileError naming it, unless
    ``skip_invalid``: then it is left out and listed in :attr:`ArchiveResult.skipped`."""
    out = out_dir if out_dir is not None else archive_dir(settings)
    issues, skipped = load_archive_issues(settings, skip_invalid=skip_invalid)
    try:
        site = render_site(issues, settings)
    except jinja2.TemplateError as exc:
        raise NewsletterError(f"{templates_for(settings)}: archive template: {exc}") from exc
    result = ArchiveResult(out, issues, skipped)
    try:
        result.files = write_site(site, out, keep_slugs=[s.path.stem for s in skipped])
    except OSError as exc:
        raise NewsletterError(f"{out}: cannot write the archive: {exc.strerror}") from exc
    return result
