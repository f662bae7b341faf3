"""`newsletter archive`: build the static web archive (pages, index, Atom feed)."""


from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter.console import console, err_console
from newsletter.errors import UsageError

if TYPE_CHECKING:
    from newsletter.config import Settings


def sent_issues(settings: "Settings") -> set[str]:
    """The issues the send journal says went out (none when nothing was ever sent)."""
    from newsletter.cli.send import journal_path
    from newsletter.delivery.journal import Journal

    path = journal_path(settings)
    if not Journal.exists(path):
        return set()
    with Journal(path, create=False) as journal:
        return journal.sent_issues()


def archive(
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Output folder (default build/archive/, what `serve` mounts)."),
    ] = None,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Leave out issue files that have errors (each is listed) instead of failing.",
        ),
    ] = False,
    include_drafts: Annotated[
        bool,
        typer.Option(
            "--include-drafts",
            help="Private preview: also drafts and future-dated issues (needs --out).",
        ),
    ] = False,
) -> None:
    """Build the web archive of the published issues: an index, a page per issue, hero
    images and an Atom feed.

    An issue is published once it has been sent (the send journal says so) or its file
    says `published: true` and its date has come; drafts and future-dated issues stay
    out, and a draft with errors is reported, never fatal. Each issue's page is
    <out>/vol-X.Y.html, the email's "view in browser" target when the folder is served
    at NEWSLETTER_PUBLIC_URL/archive/. Only changed files are written; building twice
    gives identical files.
    """
    from newsletter.archive.site import build_archive
    from newsletter.config import load_settings

    settings = load_settings()
    if include_drafts and out is None:
        raise UsageError(
            "--include-drafts needs --out DIR",
            hint="the default folder is what `newsletter serve` publishes; preview drafts "
            "elsewhere, e.g. --out build/preview-archive",
        )
    result = build_archive(
        settings,
        out,
        sent=sent_issues(settings),
        include_drafts=include_drafts,
        skip_invalid=skip_invalid,
    )
    for left in result.left_out:
        why = (
            "draft: not sent, not `published: true`"
            if left.reason == "draft"
            else ("dated in the future")
        )
        err_console.print(f"left out {left.path} ({why})", markup=False)
    for skipped in result.skipped:
        errors = len(skipped.problems)
        noun = "error" if errors == 1 else "errors"
        kind = "" if skipped.published else "draft, "
        err_console.print(
            f"skipped {skipped.path} ({kind}{errors} {noun}):", style="yellow", markup=False
        )
        for problem in skipped.problems:
            err_console.print(f"  {problem}", style="yellow", markup=False)
    count = len(result.issues)
    summary = (
        f"archived {count} {'issue' if count == 1 else 'issues'} into {result.out_dir}/: "
        f"{len(result.written)} written, {len(result.unchanged)} unchanged"
    )
    if result.removed:
        summary += f", {len(result.removed)} removed"
    if result.skipped:
        summary += f", {len(result.skipped)} skipped"
    if result.left_out:
        summary += f", {len(result.left_out)} left out (unpublished)"
    console.print(summary, markup=False)
    for file in result.files:
        console.print(f"  {file.status:<9} {file.path}", markup=False)


COMMANDS: list[Callable[..., Any]] = [archive]
