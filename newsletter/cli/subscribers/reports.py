"""`newsletter subscribers list|show|export|stats|check`: the commands that read the list.

None of them changes the file. ``list`` and ``export`` show valid rows only and count
the rest; ``check`` reports every problem with FILE:LINE and sets the exit code.
"""


import dataclasses
import itertools
import sys
from collections.abc import Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.subscribers.options import FileOption, StatusFilter, open_store, parse_statuses
from newsletter.cli.subscribers.output import (
    plural,
    print_counts,
    say,
    warn,
    warn_problem_rows,
    write_csv,
)
from newsletter.console import console, echo
from newsletter.errors import ExitCode, Problem, SubscriberFileError

if TYPE_CHECKING:
    from newsletter.audience.subscribers import Subscriber, SubscriberRow


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

    def selected() -> Iterator["Subscriber"]:
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


class ExportFormat(StrEnum):
    """What ``export`` writes: the list itself, or another tool's import format."""

    csv = "csv"
    listmonk = "listmonk"
    mailchimp = "mailchimp"


def export(
    ctx: typer.Context,
    status: StatusFilter = None,
    fmt: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="csv: the list as it is; listmonk: email,name,attributes for listmonk's "
            "import; mailchimp: Email Address, First Name, Last Name, Tags, ... for "
            "Mailchimp's import (one --status per file: both tools ask for the status of "
            "a whole import).",
        ),
    ] = ExportFormat.csv,
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

    --format listmonk or mailchimp writes the import format of those tools instead.

    Cells that begin with =, +, -, @, tab or CR get a leading ' so a spreadsheet shows
    them as text instead of running them as formulas.
    """
    from newsletter.audience.subscribers.exporter import export_rows

    store = open_store(ctx, file)
    wanted = parse_statuses(status)
    header = store.header()
    problem_rows = 0

    def valid() -> Iterator[tuple["SubscriberRow", "Subscriber"]]:
        nonlocal problem_rows
        for row in store.iter_rows():
            sub = row.subscriber
            if sub is None:
                problem_rows += 0 if row.blank else 1
            elif wanted is None or sub.status in wanted:
                yield row, sub

    def rows() -> Iterator[Sequence[str]]:
        nonlocal problem_rows
        if header is None:
            return
        if fmt is not ExportFormat.csv:
            yield from export_rows(header, valid(), fmt.value)
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
    from newsletter.audience.subscribers import STATUSES

    store = open_store(ctx, file)
    result = store.stats()
    valid = sum(result.by_status.values())
    echo(f"{store.display}: {plural(result.rows, 'row')}, {valid} valid")
    by_status = [(name, result.by_status.get(name, 0)) for name in STATUSES]
    problems = "with problems"
    print_counts(("status", "count"), [*by_status, (problems, result.problem_rows)],
                 warn_nonzero=problems)  # fmt: skip
    if result.domains:
        print_counts(("domain", "count"), result.domains.most_common(top))


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


def show(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The address to show.")],
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Everything held on them as JSON (a data-access request)."),
    ] = False,
    file: FileOption = None,
) -> None:
    """One reader: their row (every column) and their event history, issue by issue.

    The history comes from the report's event table (sends, deliveries, bounces,
    complaints, unsubscribes, opens and clicks when tracked); reports show only counts.
    --json gives both for a data-access request.
    """
    from newsletter.audience.subscribers import AddressError
    from newsletter.config import load_settings
    from newsletter.reports.collect import collect
    from newsletter.reports.eventstore import EventStore

    store = open_store(ctx, file)
    sub = store.get(email)
    header = store.header()
    if sub is None or header is None:
        raise AddressError(f"{store.display}: {email} is not on the list")
    row = next(r for r in store.iter_rows() if r.line == sub.line)
    columns = {
        name.strip(): value
        for name, value in zip(header.cells, row.cells, strict=False)
        if value.strip()
    }
    settings = load_settings()
    with EventStore.in_state_dir(settings.state_dir) as events:
        collect(settings, events)
        history = events.history(sub.key)
    if as_json:
        data = {"row": columns, "events": [dataclasses.asdict(e) for e in history]}
        import json

        say(json.dumps(data, indent=2, ensure_ascii=False))
        return
    say(f"{sub.email} (line {sub.line} of {store.display})")
    for name, value in columns.items():
        say(f"  {name}: {value}")
    if not history:
        say("no events recorded for this address")
        return
    say(f"{plural(len(history), 'event')}:")
    for event in history:
        detail = f"  ({event.detail})" if event.detail else ""
        issue = event.issue or "(no issue)"
        say(f"  {event.at}  {issue:<12} {event.kind:<17} {event.source}{detail}")
