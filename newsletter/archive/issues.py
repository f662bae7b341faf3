"""The issues the archive is built from: the published ones, loaded, hero images read.

Published means public already: the journal says the issue was sent (the caller passes
those slugs; the archive does not read the journal), or its file says ``published: true``
and its date has come. Drafts and future-dated issues never reach the archive or the
feed unless a private preview asks for them (``include_drafts``).

:func:`load_archive_issues` reads every ``issues/vol-*.yaml`` and never skips one
silently: a draft is listed as a :class:`LeftOut`; an invalid draft is a
:class:`SkippedIssue` that names its problems (a half-written draft never breaks the
archive); an invalid *published* file fails the build, or with ``skip_invalid`` is
skipped too and keeps its last good page.
"""

from __future__ import annotations

import datetime as dt
import mimetypes
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from newsletter.compose.issuefile import list_issue_files, load_issue
from newsletter.errors import IssueFileError, NewsletterError, Problem

if TYPE_CHECKING:
    from newsletter.compose.models import Issue
    from newsletter.config import Settings


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
    published: bool = True  # False: a draft with errors, skipped without failing the build


@dataclass(frozen=True, slots=True)
class LeftOut:
    """A valid issue kept out of the archive because it is not published yet."""

    path: Path
    slug: str
    reason: str  # "draft" or "future"


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


def _declares_published(path: Path) -> bool:
    """Whether an issue file that failed to load still says ``published: true``: then it
    is a broken public page, not a draft. Unreadable YAML counts as a draft."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, ValueError, yaml.YAMLError):  # ValueError: a date like 2023-02-30
        return False
    return isinstance(data, dict) and data.get("published") is True


def _state(issue: Issue, sent: Collection[str], today: dt.date) -> str | None:
    """None when the issue is public, else why not: "draft" or "future"."""
    if issue.slug in sent:
        return None  # it reached readers: public whatever its file says now
    if not issue.published:
        return "draft"
    if issue.date > today:
        return "future"
    return None


def load_archive_issues(
    settings: Settings,
    *,
    sent: Collection[str] = (),
    include_drafts: bool = False,
    skip_invalid: bool = False,
    today: dt.date | None = None,
) -> tuple[list[ArchivedIssue], list[SkippedIssue], list[LeftOut]]:
    """The published issues, oldest first, plus what was skipped and left out.

    ``sent`` names the issues the journal says were sent. An invalid file that was sent
    raises one IssueFileError naming every problem, unless ``skip_invalid``; an invalid
    file that was not sent is a draft: skipped and reported, never fatal. With
    ``include_drafts`` every valid issue is in (a private preview)."""
    today = today or dt.date.today()
    loaded: list[ArchivedIssue] = []
    skipped: list[SkippedIssue] = []
    left_out: list[LeftOut] = []
    for path in list_issue_files(settings.issues_dir):
        try:
            item = _load_one(path)
        except IssueFileError as exc:
            published = not include_drafts and (path.stem in sent or _declares_published(path))
            skipped.append(SkippedIssue(path, tuple(exc.problems), published))
            continue
        reason = None if include_drafts else _state(item.issue, sent, today)
        if reason is None:
            loaded.append(item)
        else:
            left_out.append(LeftOut(path, item.slug, reason))
    broken = [s for s in skipped if s.published]
    if broken and not skip_invalid:
        raise IssueFileError(
            [p for s in broken for p in s.problems],
            hint="fix the issue file, or run `newsletter archive --skip-invalid` "
            "to build the archive without it",
        )
    if not loaded:
        where = f"{settings.issues_dir}/"
        if broken:
            raise NewsletterError(f"{where}: every published issue has errors; nothing to archive")
        if left_out or skipped:
            raise NewsletterError(
                f"{where}: nothing published yet ({len(left_out) + len(skipped)} draft(s))",
                hint="an issue is archived once it is sent, or marked `published: true`; "
                "`newsletter archive --include-drafts --out DIR` previews drafts privately",
            )
        raise NewsletterError(f"{where}: no issue files (vol-X.Y.yaml) to archive")
    return loaded, skipped, left_out
