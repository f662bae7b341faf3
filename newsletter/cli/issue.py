"""Issue commands: check, build, preview, new."""


from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter.console import console, echo
from newsletter.errors import ExitCode, IssueFileError, Problem

if TYPE_CHECKING:
    from newsletter.compose.build import BuildResult

IssueArg = Annotated[
    str, typer.Argument(help="Issue name such as vol-2.19 (in issues/), or a path.")
]


def _print_problems(problems: list[Problem]) -> None:
    for problem in problems:
        echo(str(problem), err=True, fg="yellow" if problem.severity == "warning" else "red")


def _summarise_warnings(warnings: list[Problem], issue: str) -> None:
    if warnings:
        noun = "warning" if len(warnings) == 1 else "warnings"
        echo(f"{len(warnings)} {noun} (run `newsletter check {issue}` to see them)",
             err=True, fg="yellow")  # fmt: skip


def _build(issue: str, out: Path | None) -> "BuildResult":
    from newsletter.compose.build import build_issue
    from newsletter.compose.issuefile import resolve_issue_path
    from newsletter.config import load_settings

    settings = load_settings()
    return build_issue(resolve_issue_path(issue, settings), settings, out)


def check(
    issue: IssueArg,
    strict: Annotated[bool, typer.Option("--strict", help="Treat warnings as errors.")] = False,
) -> None:
    """Validate and lint an issue: errors (exit 1) and warnings, each with file:line and field."""
    from newsletter.compose.build import check_issue
    from newsletter.compose.issuefile import resolve_issue_path
    from newsletter.config import load_settings

    settings = load_settings()
    path = resolve_issue_path(issue, settings)
    loaded, rendered, warnings = check_issue(path, settings)
    _print_problems(warnings)
    size_kb = len(rendered.html.encode()) / 1024
    summary = (
        f"{path}: {len(loaded.stories)} stories, HTML {size_kb:.1f} KB, "
        f"subject {rendered.subject!r}: 0 errors, {len(warnings)} warnings"
    )
    if strict and warnings:
        echo(f"{summary} (--strict: warnings fail)", err=True, fg="red")
        raise typer.Exit(int(ExitCode.ERROR))
    echo(summary)


def build(
    issue: IssueArg,
    out: Annotated[
        Path | None, typer.Option("--out", help="Output folder (default build/<issue>/).")
    ] = None,
) -> None:
    """Write email.html, email.txt and a complete sample email.eml to a build folder."""
    result = _build(issue, out)
    _summarise_warnings(result.warnings, issue)
    console.print(f"built {result.issue.slug} into {result.out_dir}/", markup=False)
    for file in result.files:
        console.print(f"  {file.name:<24} {file.stat().st_size / 1024:7.1f} KB", markup=False)


def preview(
    issue: IssueArg,
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1 (0 picks a free one).")] = 8019,
    open_file: Annotated[
        bool,
        typer.Option(
            "--open", help="Write the preview page to a file and open it instead of serving."
        ),
    ] = False,
    no_browser: Annotated[
        bool, typer.Option("--no-browser", help="Do not try to open a browser.")
    ] = False,
) -> None:
    """Show the email side by side at desktop (600 px) and phone (375 px) widths."""
    from newsletter.compose.preview import serve_preview, write_preview

    result = _build(issue, None)
    _summarise_warnings(result.warnings, issue)
    page = write_preview(result)
    if open_file:
        console.print(f"preview written to {page}", markup=False)
        if not no_browser:
            import webbrowser

            webbrowser.open(page.resolve().as_uri())
        return
    serve_preview(result.out_dir, port=port, open_browser=not no_browser)


def new(
    volume: Annotated[
        str | None,
        typer.Argument(help="Volume for the new issue, e.g. 2.20 (default: latest + 1)."),
    ] = None,
) -> None:
    """Scaffold the next issue from the latest one: volume + 1, date + 14 days, content emptied."""
    from newsletter.compose.issuefile import list_issue_files, load_issue
    from newsletter.compose.scaffold import scaffold_issue
    from newsletter.config import load_settings

    settings = load_settings()
    files = list_issue_files(settings.issues_dir)
    if not files:
        raise IssueFileError(
            [Problem(str(settings.issues_dir), None, "", "no issue to start from (vol-X.Y.yaml)")]
        )
    previous = load_issue(files[-1])
    if volume is not None:
        volume = volume.removeprefix("vol-")
    slug, text = scaffold_issue(previous, volume=volume)
    target = settings.issues_dir / f"{slug}.yaml"
    if target.exists():
        raise IssueFileError([Problem(str(target), None, "", "already exists; not overwritten")])
    target.write_text(text, encoding="utf-8")
    console.print(
        f"created {target} from {files[-1].name}: fill it in, then run `newsletter check {slug}`",
        markup=False,
    )


COMMANDS: list[Callable[..., Any]] = [check, build, preview, new]
