"""`newsletter subscribers add|remove|import`: the commands that change the list.

Every change goes through :class:`~newsletter.audience.subscribers.SubscriberStore`,
which writes under the list's lock; ``import --dry-run`` reports what would change and
writes nothing.
"""


from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.cli.subscribers.options import FileOption, open_store
from newsletter.cli.subscribers.output import plural, say, warn
from newsletter.errors import ExitCode, NewsletterError

if TYPE_CHECKING:
    from newsletter.audience.subscribers import ImportFile, ImportOutcome


SHOWN_PER_KIND = 20


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
    store = open_store(ctx, file)
    sub = store.add(email, name=name, status=status, source=source, note=note)
    say(f"added {sub.email} ({sub.status}) on line {sub.line} of {store.display}")


def remove(
    ctx: typer.Context,
    email: Annotated[str, typer.Argument(metavar="EMAIL", help="The address to remove.")],
    purge: Annotated[
        bool,
        typer.Option(
            "--purge",
            help="Delete every row holding the address (a data-protection request) "
            "instead of marking it unsubscribed; its rows in the send journal, the report's "
            "events and the webhook ledger go too.",
        ),
    ] = False,
    file: FileOption = None,
) -> None:
    """Unsubscribe an address (the row stays, status unsubscribed), or --purge it."""
    store = open_store(ctx, file)
    if purge:
        lines = store.purge(email)
        if not lines:
            raise NewsletterError(f"{store.display}: {email} is not on the list")
        where = ", ".join(str(n) for n in lines)
        say(
            f"purged {email}: deleted {plural(len(lines), 'row')} (line {where}) from "
            f"{store.display}"
        )
        say(f"forgot {email} in {_forget_elsewhere(email)}")
        warn(
            f"note: the backups in {store.backup_dir} still hold it until they rotate out "
            "(the last 10 writes); delete them too if the request requires it",
            style="dim",
        )
        return
    if not store.remove(email):
        raise NewsletterError(f"{store.display}: {email} is not on the list")
    say(f"unsubscribed {email} in {store.display}")


def _forget_elsewhere(email: str) -> str:
    """Remove the address from the send journal, the report's events and the webhook
    ledger (each only if it exists); say how many rows went from each."""
    from newsletter.audience.events import LEDGER_NAME, EventLedger
    from newsletter.config import load_settings
    from newsletter.delivery.journal import Journal
    from newsletter.home import JOURNAL_NAME
    from newsletter.reports.eventstore import EVENTS_NAME, EventStore

    state = load_settings().state_dir
    key = email.strip().lower()
    counts = []
    if (state / JOURNAL_NAME).exists():
        with Journal(state / JOURNAL_NAME) as journal:
            counts.append(plural(journal.forget(key), "journal row"))
    if (state / EVENTS_NAME).exists():
        with EventStore(state / EVENTS_NAME) as events:
            counts.append(plural(events.purge(key), "report event"))
    if (state / LEDGER_NAME).exists():
        counts.append(plural(EventLedger(state / LEDGER_NAME).purge(key), "webhook event"))
    return ", ".join(counts) if counts else "no journal or event store (none kept yet)"


def _show_outcomes(label: str, outcomes: list["ImportOutcome"], source: str) -> None:
    for outcome in outcomes[:SHOWN_PER_KIND]:
        detail = f": {outcome.detail}" if outcome.detail else ""
        say(f"  {label:<7} {source}:{outcome.line}: {outcome.email}{detail}")
    if len(outcomes) > SHOWN_PER_KIND:
        say(f"  {label:<7} ... and {len(outcomes) - SHOWN_PER_KIND} more")


def _show_reading(read: "ImportFile", shown: str) -> None:
    """Say which format was found and what became of every column."""
    note = f": {read.status_note}" if read.status_note else ""
    say(f"reading {shown} as {read.format}{note}")
    if not read.columns:
        return
    groups: dict[str, list[str]] = {"mapped": []}
    for column in read.columns:
        if column.use in ("kept", "ignored", "unmappable"):
            text = column.header
            if column.use == "kept" and column.detail:
                text += f" (as {column.detail})"
            key = column.use if column.use == "kept" else f"{column.use} ({column.detail})"
            groups.setdefault(key, []).append(text)
        else:
            groups.setdefault("mapped", []).append(f"{column.header} -> {column.use}")
    labels = {"mapped": "mapped", "kept": "kept as extra columns"}
    order = {"mapped": 0, "kept": 1}
    for key, names in sorted(groups.items(), key=lambda kv: order.get(kv[0], 2)):
        if names:
            say(f"  {labels.get(key, key)}: {', '.join(names)}")


def import_subscribers(
    ctx: typer.Context,
    source_file: Annotated[
        Path,
        typer.Argument(
            metavar="FILE",
            exists=True,
            dir_okay=False,
            help="An export from Mailchimp, listmonk, Buttondown, Substack, Google Contacts "
            "or Outlook, a CSV with an email column, or a plain list: one address per line.",
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
        str | None,
        typer.Option(
            "--source",
            help="The source recorded on new rows (default: the tool the export came from, "
            "or import).",
        ),
    ] = None,
    mapping: Annotated[
        list[str] | None,
        typer.Option(
            "--map",
            metavar="COLUMN=FIELD",
            help='Give a column a meaning, e.g. --map "Work email=email"; FIELD is email, '
            "name, first_name, last_name, status, subscribed_at, confirmed_at, tags, note, "
            "or ignore. Repeat for several.",
        ),
    ] = None,
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
    """Merge another tool's export, a CSV or a plain list of addresses into the list.

    The export is recognised by its header (and said which); statuses and consent dates
    are mapped (Mailchimp's unsubscribed export stays unsubscribed, cleaned becomes
    bounced), names and tags kept, every other non-empty column kept as an extra column.
    New addresses are added; listed ones get a differing name, note or status updated.
    Nobody pending (not yet confirmed), unsubscribed, bounced or complained is made
    active without --force.
    Invalid lines are reported with FILE:LINE and not imported (exit 1).
    """
    from newsletter.audience.subscribers import AddressError, read_import
    from newsletter.audience.subscribers.formats import parse_map

    store = open_store(ctx, file)
    try:
        "".encode(encoding)
    except LookupError:
        raise AddressError(f"--encoding: unknown encoding {encoding!r}") from None
    read = read_import(
        source_file,
        encoding=encoding,
        status=status,
        source=source,
        mapping=parse_map(mapping or []),
    )
    problems = read.problems
    report = store.import_entries(read.entries, force=force, dry_run=dry_run)
    shown = str(source_file)
    _show_reading(read, shown)
    _show_outcomes("add", report.added, shown)
    _show_outcomes("update", report.updated, shown)
    _show_outcomes("skip", report.skipped, shown)
    for problem in read.warnings:
        warn(f"  {problem}")
    for problem in problems:
        warn(f"  invalid {problem}")
    counts = (
        f"{len(report.added)} added, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged, {len(report.skipped)} skipped, "
        f"{len(problems)} invalid"
    )
    if dry_run:
        say(f"dry run, nothing written: {counts}")
    else:
        say(f"imported {shown} into {store.display}: {counts}")
    if problems:
        warn(
            f"{plural(len(problems), 'invalid line')} not imported: fix them and re-run",
            style="yellow",
        )
        raise typer.Exit(int(ExitCode.ERROR))
