"""`newsletter subscribers ...`: a thin shell over :mod:`newsletter.subscribers`.

Every command reads or changes ``subscribers/subscribers.csv`` (or ``--file``) through
:class:`~newsletter.audience.subscribers.SubscriberStore`; library errors propagate to the root
group, which prints them and exits with the class's code.
"""

from __future__ import annotations

import csv
import itertools
import sys
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, TextIO

import typer
from rich.table import Table

from newsletter.audience.subscribers import (
    FIELDS,
    STATUSES,
    AddressError,
    ImportOutcome,
    Subscriber,
    SubscriberStore,
    neutralize_cell,
    read_import_file,
)
from newsletter.console import console, err_console
from newsletter.errors import ExitCode, NewsletterError, Problem, SubscriberFileError

app = typer.Typer(
    help="Manage the subscriber list, subscribers/subscribers.csv.\n\n"
    "The CSV is yours to edit in a spreadsheet too: these commands keep every row, "
    "column and edit, and write under a lock so they never clobber another writer.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

SHOWN_PER_KIND = 20


@dataclass(frozen=True, slots=True)
class _Options:
    file: Path | None = None
    lock_timeout: float = 10.0


FileOption = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        metavar="PATH",
        dir_okay=False,
        help="The subscriber CSV (default: subscribers/subscribers.csv in NEWSLETTER_HOME).",
    ),
]
StatusFilter = Annotated[
    list[str] | None,
    typer.Option(
        "--status",
        "-s",
        metavar="STATUS",
        help=f"Only rows with this status; repeat for several ({', '.join(STATUSES)}).",
    ),
]


class Format(StrEnum):
    table = "table"
    csv = "csv"


@app.callback()
def subscribers(
    ctx: typer.Context,
    file: FileOption = None,
    lock_timeout: Annotated[
        float,
        typer.Option(
            "--lock-timeout",
            metavar="SECONDS",
            min=0,
            help="How long a write waits for another writer's lock before giving up.",
        ),
    ] = 10.0,
) -> None:
    """Manage the subscriber list, subscribers/subscribers.csv."""
    ctx.obj = _Options(file, lock_timeout)


def _store(ctx: typer.Context, file: Path | None) -> SubscriberStore:
    options = ctx.find_object(_Options) or _Options()
    path = file or options.file
    if path is not None:
        return SubscriberStore(path, lock_timeout=options.lock_timeout)
    from newsletter.config import load_settings

    settings = load_settings()
    return SubscriberStore.from_settings(settings, lock_timeout=options.lock_timeout)


def _statuses(values: Sequence[str] | None) -> set[str] | None:
    if not values:
        return None
    wanted = {v.strip().lower() for v in values}
    unknown = sorted(wanted - set(STATUSES))
    if unknown:
        raise AddressError(
            f"--status: unknown status {', '.join(unknown)} (expected one of {', '.join(STATUSES)})"
        )
    return wanted


def _say(text: str, *, style: str | None = None) -> None:
    console.print(text, markup=False, emoji=False, style=style)


def _warn(text: str, *, style: str | None = None) -> None:
    err_console.print(text, markup=False, emoji=False, style=style)


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _write_csv(out: TextIO, rows: Iterable[Sequence[str]], newline: str = "\n") -> int:
    """Write rows (the first is the header), neutralised; return how many data rows."""
    writer = csv.writer(out, lineterminator=newline)
    written = 0
    for row in rows:
        writer.writerow([neutralize_cell(cell) for cell in row])
        written += 1
    return max(written - 1, 0)


# list -----------------------------------------------------------------------------------


@app.command("list")
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
    store = _store(ctx, file)
    wanted = _statuses(status)
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
        _write_csv(sys.stdout, itertools.chain([list(FIELDS)], rows))
        sys.stdout.flush()
        if problem_rows:
            _warn(
                f"{_plural(problem_rows, 'row')} with problems not listed: run "
                "`newsletter subscribers check`",
                style="yellow",
            )
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
    _say(f"{_plural(count, 'subscriber')} in {store.display}")
    if problem_rows:
        _warn(
            f"{_plural(problem_rows, 'row')} with problems not listed: run "
            "`newsletter subscribers check`",
            style="yellow",
        )


# add / remove ---------------------------------------------------------------------------


@app.command()
def add(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The address to add.")],
    name: Annotated[str, typer.Option("--name", help="The person's name, any script.")] = "",
    status: Annotated[
        str, typer.Option("--status", help="active (default) or pending (awaits confirmation).")
    ] = "active",
    source: Annotated[str, typer.Option("--source", help="Where the address came from.")] = "cli",
    note: Annotated[str, typer.Option("--note", help="A note for admins.")] = "",
    file: FileOption = None,
) -> None:
    """Add one subscriber (fails if the address is already on the list)."""
    store = _store(ctx, file)
    sub = store.add(email, name=name, status=status, source=source, note=note)
    _say(f"added {sub.email} ({sub.status}) on line {sub.line} of {store.display}")


@app.command()
def remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The address to remove.")],
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Delete every row holding the address (a data-protection request) "
            "instead of marking it unsubscribed.",
        ),
    ] = False,
    file: FileOption = None,
) -> None:
    """Unsubscribe an address (the row stays, status unsubscribed), or --purge it."""
    store = _store(ctx, file)
    if purge:
        lines = store.purge(email)
        if not lines:
            raise NewsletterError(f"{store.display}: {email} is not on the list")
        where = ", ".join(str(n) for n in lines)
        _say(
            f"purged {email}: deleted {_plural(len(lines), 'row')} (line {where}) from "
            f"{store.display}"
        )
        _warn(
            f"note: the backups in {store.backup_dir} still hold it until they rotate out "
            "(the last 10 writes); delete them too if the request requires it",
            style="dim",
        )
        return
    if not store.remove(email):
        raise NewsletterError(f"{store.display}: {email} is not on the list")
    _say(f"unsubscribed {email} in {store.display}")


# import / export ------------------------------------------------------------------------


def _show_outcomes(label: str, outcomes: list[ImportOutcome], source: str) -> None:
    for outcome in outcomes[:SHOWN_PER_KIND]:
        detail = f": {outcome.detail}" if outcome.detail else ""
        _say(f"  {label:<7} {source}:{outcome.line}: {outcome.email}{detail}")
    if len(outcomes) > SHOWN_PER_KIND:
        _say(f"  {label:<7} ... and {len(outcomes) - SHOWN_PER_KIND} more")


@app.command("import")
def import_subscribers(
    ctx: typer.Context,
    source_file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="A CSV with an email column, or a plain list: one address per line.",
        ),
    ],
    status: Annotated[
        str | None,
        typer.Option(
            "--status",
            help="Status for rows that do not give one (new rows default to active; "
            "listed rows keep theirs).",
        ),
    ] = None,
    source: Annotated[
        str, typer.Option("--source", help="The source recorded on new rows.")
    ] = "import",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Allow making pending (unconfirmed), unsubscribed, bounced or complained "
            "rows active.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Show what would change; write nothing.")
    ] = False,
    encoding: Annotated[
        str,
        typer.Option(
            "--encoding", help="The file's encoding, e.g. cp1252 for a legacy Excel export."
        ),
    ] = "utf-8",
    file: FileOption = None,
) -> None:
    """Merge another CSV or a plain list of addresses into the list.

    New addresses are added; listed ones get a differing name, note or status updated.
    Nobody pending (not yet confirmed), unsubscribed, bounced or complained is made
    active without --force.
    Invalid lines are reported with FILE:LINE and not imported (exit 1).
    """
    store = _store(ctx, file)
    try:
        "".encode(encoding)
    except LookupError:
        raise AddressError(f"--encoding: unknown encoding {encoding!r}") from None
    entries, problems = read_import_file(
        source_file, encoding=encoding, status=status, source=source
    )
    report = store.import_entries(entries, force=force, dry_run=dry_run)
    shown = str(source_file)
    _show_outcomes("add", report.added, shown)
    _show_outcomes("update", report.updated, shown)
    _show_outcomes("skip", report.skipped, shown)
    for problem in problems:
        _warn(f"  invalid {problem}")
    counts = (
        f"{len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped, "
        f"{len(problems)} invalid"
    )
    if dry_run:
        _say(f"dry run, nothing written: {counts}")
    else:
        _say(f"imported {shown} into {store.display}: {counts}")
    if problems:
        _warn(
            f"{_plural(len(problems), 'invalid line')} not imported: fix them and re-run",
            style="yellow",
        )
        raise typer.Exit(int(ExitCode.ERROR))


@app.command()
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
    store = _store(ctx, file)
    wanted = _statuses(status)
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
        _write_csv(sys.stdout, rows())
        sys.stdout.flush()
    else:
        with out.open("w", encoding="utf-8-sig", newline="") as fh:
            count = _write_csv(fh, rows(), "\r\n")
        _warn(f"exported {_plural(count, 'row')} to {out}")
    if problem_rows:
        _warn(
            f"{_plural(problem_rows, 'row')} with problems not exported: run "
            "`newsletter subscribers check`",
            style="yellow",
        )


# stats / check --------------------------------------------------------------------------


@app.command()
def stats(
    ctx: typer.Context,
    top: Annotated[int, typer.Option("--top", min=1, help="How many domains to show.")] = 10,
    file: FileOption = None,
) -> None:
    """Count subscribers by status, and show the most common domains."""
    store = _store(ctx, file)
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
    _say(f"{store.display}: {_plural(result.rows, 'row')}, {valid} valid")
    console.print(table)
    if result.domains:
        domains = Table(box=None, header_style="bold", pad_edge=False)
        domains.add_column("domain")
        domains.add_column("count", justify="right")
        for domain, n in result.domains.most_common(top):
            domains.add_row(domain, str(n))
        console.print(domains)


@app.command()
def check(ctx: typer.Context, file: FileOption = None) -> None:
    """Report every problem in the list with FILE:LINE; exit 1 if there is any.

    Problems: an invalid address, a duplicate (addresses compare ignoring case), an
    unknown status, a date that is not ISO 8601. Rows with problems stay in the file
    and are never sent to.
    """
    store = _store(ctx, file)
    problems: list[Problem] = []
    rows = 0
    try:
        for row in store.iter_rows():
            rows += 0 if row.blank else 1
            problems.extend(row.problems)
    except SubscriberFileError as exc:
        problems.extend(exc.problems)
        for problem in problems:
            _say(str(problem))
        if exc.hint:
            _warn(f"hint: {exc.hint}", style="dim")
        raise typer.Exit(int(ExitCode.ERROR)) from None
    for problem in problems:
        _say(str(problem))
    errors = sum(1 for p in problems if p.severity == "error")
    if errors:
        _warn(
            f"{_plural(errors, 'error')} in {store.display} ({_plural(rows, 'row')})", style="red"
        )
        raise typer.Exit(int(ExitCode.ERROR))
    _say(f"{store.display}: {_plural(rows, 'row')}, no problems")
