"""`newsletter subscribers ...`: a thin shell over :mod:`newsletter.audience.subscribers`.

Every command reads or changes ``subscribers/subscribers.csv`` (or ``--file``) through
:class:`~newsletter.audience.subscribers.SubscriberStore`; library errors propagate to the root
group, which prints them and exits with the class's code.

This package is the sub-app: the group's options and the commands in the order ``--help``
lists them. The commands live by what they do to the list: :mod:`.reports`
(list, export, stats, check: read only), :mod:`.changes` (add, remove,
import) and :mod:`.sync` (fold the consent ledger in); what they share is
:mod:`.options` and :mod:`.output`. Every command on the project's list folds the
ledger into the file before it reads it and again when it ends.
"""


from typing import Annotated

import typer

from newsletter.cli.subscribers import changes, reports, sync
from newsletter.cli.subscribers.options import FileOption, GroupOptions

app = typer.Typer(
    help="Manage the subscriber list, subscribers/subscribers.csv.\n\n"
    "The CSV is yours to edit in a spreadsheet too: these commands keep every row, "
    "column and edit, and write under a lock so they never clobber another writer.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


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
    ctx.obj = GroupOptions(file, lock_timeout)


app.command("list")(reports.list_subscribers)
app.command()(reports.show)
app.command()(changes.add)
app.command()(changes.remove)
app.command("import")(changes.import_subscribers)
app.command()(reports.export)
app.command()(reports.stats)
app.command()(reports.check)
app.command()(sync.sync)
