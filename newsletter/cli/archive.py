"""`newsletter archive`: build the static web archive (pages, index, Atom feed)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from newsletter.console import console, err_console


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
) -> None:
    """Build the web archive: an index, a page per issue, hero images and an Atom feed.

    Each issue's page is <out>/vol-X.Y.html, the email's "view in browser" target when
    the folder is served at NEWSLETTER_PUBLIC_URL/archive/. Only changed files are
    written; building twice gives identical files.
    """
    from newsletter.archive.site import build_archive
    from newsletter.config import load_settings

    settings = load_settings()
    result = build_archive(settings, out, skip_invalid=skip_invalid)
    for skipped in result.skipped:
        errors = len(skipped.problems)
        noun = "error" if errors == 1 else "errors"
        err_console.print(
            f"skipped {skipped.path} ({errors} {noun}):", style="yellow", markup=False
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
    console.print(summary, markup=False)
    for file in result.files:
        console.print(f"  {file.status:<9} {file.path}", markup=False)


COMMANDS: list[Callable[..., Any]] = [archive]
