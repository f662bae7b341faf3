"""`newsletter subscribers list|export|stats|check`: the commands that read the list.

None of them changes the file. ``list`` and ``export`` show valid rows only and count
the rest; ``check`` reports every problem with FILE:LINE and sets the exit code.
"""

from __future__ import annotations

import itertools
import sys
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.subscribers.options import FileOption, StatusFilter, open_store, parse_statuses
from newsletter.cli.subscribers.output import plural, say, warn, warn_problem_rows, write_csv
from newsletter.console import console
from newsletter.errors import ExitCode, Problem, SubscriberFileError

# The store and rich's tables are imported by the commands that use them (start-up time).
if TYPE_CHECKING:
    from newsletter.audience.subscribers import Subscriber


class Format(StrEnum):
    """How ``list`` prints: a table for reading, CSV for other tools."""

    table = "table"
    csv = "csv"


def list_subscribers(
    ctx: typer.Context,
    status: StatusFilter = None,
    search: Annotated[
        str | None,
        typer.Option(
            "--search", "-q", metavar="TEXT", help="Only rows whose address or name contains TEXT."
        ),
    ] = None,
    fmt: Annotated[
        Format, typer.Option("--format", help="table for reading, csv for other tools.")
    ] = Format.table,
    limit: Annotated[
        int | None, typer.Option("--limit", "-n", min=1, help="Show at most N rows.")
    ] = None,
    file: FileOption = None,
) -> None:
    """List subscribers, filtered by status or text.

    Only valid rows are listed; rows with problems are counted at the end (see
    `newsletter subscribers check`). CSV output is guarded against formula injection.
    """
    from rich.table import Table

    from newsletter.audience.subscribers import FIELDS

    store = open_store(ctx, file)
    wanted = parse_statuses(status)
    needle = search.casefold() if search else None
    problem_rows = 0

    def selected() -> Iterator[Subscriber]:
        nonlocal problem_rows
        shown = 0
        for row in store.iter_rows():
            sub = row.subscriber
            if sub is None:
                problem_rows += 0 if row.blank else 1
                continue
            if wanted is not None and sub.status not in wanted:
                continue
            if needle is not None and needle not in f"{sub.email}\n{sub.name}".casefold():
                continue
            if limit is not None and shown >= limit:
                continue
            shown += 1
            yield sub

    if fmt is Format.csv:
        rows = ([getattr(sub, name) for name in FIELDS] for sub in selected())
        write_csv(sys.stdout, itertools.chain([list(FIELDS)], rows))
        sys.stdout.flush()
        warn_problem_rows(problem_rows, "listed")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("line", "email", "name", "status", "source", "subscribed"):
        table.add_column(column, justify="right" if column == "line" else "left")
    count = 0
    for sub in selected():
        count += 1
        table.add_row(
            str(sub.line), sub.email, sub.name, sub.status, sub.source, sub.subscribed_at[:10]
        )
    if count:
        console.print(table)
    say(f"{plural(count, 'subscriber')} in {store.display}")
    warn_problem_rows(problem_rows, "listed")


def export(
    ctx: typer.Context,
    status: StatusFilter = None,
    out: Annotated[
        Path | None,
        typer.Option(
            "--out",
            "-o",
            metavar="FILE",
            dir_okay=False,
            help="Write here (UTF-8 with BOM, CRLF: what spreadsheets expect) instead of "
            "standard output.",
        ),
    ] = None,
    file: FileOption = None,
) -> None:
    """Export valid rows, all columns, as CSV safe to open in a spreadsheet.

    Cells that begin with =, +, -, @, tab or CR get a leading ' so a spreadsheet shows
    them as text instead of running them as formulas.
    """
    store = open_store(ctx, file)
    wanted = parse_statuses(status)
    header = store.header()
    problem_rows = 0

    def rows() -> Iterator[Sequence[str]]:
        nonlocal problem_rows
        if header is None:
            return
        yield header.cells
        width = len(header.cells)
        for row in store.iter_rows():
            sub = row.subscriber
            if sub is None:
                problem_rows += 0 if row.blank else 1
                continue
            if wanted is None or sub.status in wanted:
                yield list(row.cells) + [""] * (width - len(row.cells))

    if out is None:
        write_csv(sys.stdout, rows())
        sys.stdout.flush()
    else:
        with out.open("w", encoding="utf-8-sig", newline="") as fh:
            count = write_csv(fh, rows(), "\r\n")
        warn(f"exported {plural(count, 'row')} to {out}")
    warn_problem_rows(problem_rows, "exported")


def stats(
    ctx: typer.Context,
    top: Annotated[int, typer.Option("--top", min=1, help="How many domains to show.")] = 10,
    file: FileOption = None,
) -> None:
    """Count subscribers by status, and show the most common domains."""
    from rich.table import Table

    from newsletter.audience.subscribers import STATUSES

    store = open_store(ctx, file)
    result = store.stats()
    valid = sum(result.by_status.values())
    table = Table(box=None, header_style="bold", pad_edge=False)
    table.add_column("status")
    table.add_column("count", justify="right")
    for name in STATUSES:
        table.add_row(name, str(result.by_status.get(name, 0)))
    table.add_row(
        "with problems", str(result.problem_rows), style="yellow" if result.problem_rows else None
    )
    say(f"{store.display}: {plural(result.rows, 'row')}, {valid} valid")
    console.print(table)
    if result.domains:
        domains = Table(box=None, header_style="bold", pad_edge=False)
        domains.add_column("domain")
        domains.add_column("count", justify="right")
        for domain, n in result.domains.most_common(top):
            domains.add_row(domain, str(n))
        console.print(domains)


def check(ctx: typer.Context, file: FileOption = None) -> None:
    """Report every problem in the list with FILE:LINE; exit 1 if there is any.

    Problems: an invalid address, a duplicate (addresses compare ignoring case), an
    unknown status, a date that is not ISO 8601. Rows with problems stay in the file
    and are never sent to.
    """
    store = open_store(ctx, file)
    problems: list[Problem] = []
    rows = 0
    try:
        for row in store.iter_rows():
            rows += 0 if row.blank else 1
            problems.extend(row.problems)
    except SubscriberFileError as exc:
        problems.extend(exc.problems)
        for problem in problems:
            say(str(problem))
        if exc.hint:
            warn(f"hint: {exc.hint}", style="dim")
        raise typer.Exit(int(ExitCode.ERROR)) from None
    for problem in problems:
        say(str(problem))
    errors = sum(1 for p in problems if p.severity == "error")
    if errors:
        warn(f"{plural(errors, 'error')} in {store.display} ({plural(rows, 'row')})", style="red")
        raise typer.Exit(int(ExitCode.ERROR))
    say(f"{store.display}: {plural(rows, 'row')}, no problems")
