"""The static web archive: every issue as a page, an index, and an Atom feed.

Stages, each a function: :func:`~.issues.load_archive_issues` reads every
``issues/vol-*.yaml`` (collecting every problem, never skipping silently),
:func:`render_site` turns the loaded issues into ``{relative path: bytes}`` (pure: no
clock, no I/O, stable order, so two builds are byte-identical) from the pages
(:mod:`.pages`) and the feed (:mod:`.feed`), and :func:`write_site` writes only what
changed, atomically, so unchanged files keep their mtimes. :func:`build_archive` runs
all three.

The site, in :func:`archive_dir` (``build/archive/``) unless told otherwise::

    index.html               every issue, newest first: volume, date, headlines
    vol-2.19.html            one page per issue: the email's "view in browser" target
    feed.xml                 Atom feed (RFC 4287), one full-content entry per issue
    archive.css              the one stylesheet (no fonts, scripts or other requests)
    assets/vol-2.19/<file>   local hero images (https images are linked, not fetched)

Every link between the files is relative, so the folder works from any web server, at
any subpath, or opened from disk. ``newsletter serve`` mounts it at ``/archive``, which
is where :func:`newsletter.compose.render.view_url_for` points the email's "view in
browser".
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import jinja2

from newsletter.archive.feed import FEED, render_feed
from newsletter.archive.issues import ArchivedIssue, LeftOut, SkippedIssue, load_archive_issues
from newsletter.archive.pages import render_pages
from newsletter.config import PACKAGE_TEMPLATES
from newsletter.errors import NewsletterError
from newsletter.files import write_atomic
from newsletter.i18n import make_environment

if TYPE_CHECKING:
    from newsletter.config import Settings

STYLESHEET = "archive.css"
Status = Literal["written", "unchanged", "removed", "kept"]


def archive_dir(settings: Settings) -> Path:
    """Where ``newsletter archive`` writes the site by default, and what ``newsletter serve``
    mounts at ``/archive``: ``build/archive/`` under the newsletter's home."""
    return settings.build_dir / "archive"


# Results ----------------------------------------------------------------------------
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
    left_out: list[LeftOut] = field(default_factory=list)
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


# Rendering (pure) -------------------------------------------------------------------
@functools.cache
def _environment(templates_dir: Path, language: str) -> jinja2.Environment:
    """The archive's templates, their chrome ("Headlines", "All issues") in ``language``."""
    return make_environment(
        jinja2.FileSystemLoader(str(templates_dir)),
        language,
        autoescape=lambda name: bool(name and name.endswith((".html.j2", ".xml.j2"))),
        keep_trailing_newline=True,
    )


def templates_for(settings: Settings) -> Path:
    """``templates/archive/`` in the home if it has one, else the package's."""
    local = settings.templates_dir / "archive"
    return local if (local / "issue.html.j2").exists() else PACKAGE_TEMPLATES / "archive"


def render_site(
    issues: list[ArchivedIssue], settings: Settings, templates_dir: Path | None = None
) -> dict[str, bytes]:
    """The whole site as ``{relative path: bytes}``, from issues in oldest-first order."""
    folder = templates_dir or templates_for(settings)
    env = _environment(folder, settings.language)
    head = {
        "feed_href": FEED,
        "stylesheet": STYLESHEET,
        "feed_title": f"{issues[-1].issue.series} (Atom)",
    }
    # an issue page speaks its issue's language; the index and the feed the site's
    site = render_pages(
        issues, settings, env, head, env_for=lambda language: _environment(folder, language)
    )
    site[FEED] = render_feed(issues, settings, env)
    site[STYLESHEET] = (folder / STYLESHEET).read_bytes()
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
    settings: Settings,
    out_dir: Path | None = None,
    *,
    sent: Collection[str] = (),
    include_drafts: bool = False,
    skip_invalid: bool = False,
    today: dt.date | None = None,
) -> ArchiveResult:
    """Build the archive of the published issues into ``out_dir`` (default
    :func:`archive_dir`); ``sent`` names the issues the journal says went out. Drafts
    and future-dated issues are left out (and their old pages removed) unless
    ``include_drafts``; see :func:`~.issues.load_archive_issues` for invalid files."""
    out = out_dir if out_dir is not None else archive_dir(settings)
    issues, skipped, left_out = load_archive_issues(
        settings, sent=sent, include_drafts=include_drafts, skip_invalid=skip_invalid, today=today
    )
    try:
        site = render_site(issues, settings)
    except jinja2.TemplateError as exc:
        raise NewsletterError(f"{templates_for(settings)}: archive template: {exc}") from exc
    result = ArchiveResult(out, issues, skipped, left_out)
    # A published issue skipped as invalid keeps its last good page; a draft keeps none.
    keep = [s.path.stem for s in skipped if s.published]
    try:
        result.files = write_site(site, out, keep_slugs=keep)
    except OSError as exc:
        raise NewsletterError(f"{out}: cannot write the archive: {exc.strerror}") from exc
    return result
