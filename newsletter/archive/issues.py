"""The issues the archive is built from: every issue file loaded, its hero image read.

:func:`load_archive_issues` reads every ``issues/vol-*.yaml`` and collects every problem
in every file, never skipping one silently: an invalid file fails the build, or with
``skip_invalid`` comes back as a :class:`SkippedIssue` that names its problems.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

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
