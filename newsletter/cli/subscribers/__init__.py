"""`newsletter subscribers ...`: a thin shell over :mod:`newsletter.audience.subscribers`.

Every command reads or changes ``subscribers/subscribers.csv`` (or ``--file``) through
:class:`~newsletter.audience.subscribers.SubscriberStore`; library errors propagate to the root
group, which prints them and exits with the class's code.

This package is the sub-app: the group's options and the commands in the order ``--help``
lists them (:data:`COMMANDS`; a run that names one command registers that one alone).
The commands live by what they do to the list: :mod:`.reports` (list, export, stats,
check: read only), :mod:`.changes` (add, remove, import) and :mod:`.sync` (fold the
consent ledger in); what they share is :mod:`.options` and :mod:`.output`. Every
command on the project's list folds the ledger into the file before it reads it and
again when it ends.
"""


import importlib
from collections.abc import Sequence
from typing import Annotated, Any

import typer

from newsletter.cli.subscribers.options import FileOption, GroupOptions

#: each command -> (its module in this package, its function), in the order --help
#: lists them; a run that names one command registers that one alone (start-up time)
COMMANDS: dict[str, tuple[str, str]] = {
    "list": ("reports", "list_subscribers"),
    "show": ("reports", "show"),
    "add": ("changes", "add"),
    "remove": ("changes", "remove"),
    "import": ("changes", "import_subscribers"),
    "export": ("reports", "export"),
    "stats": ("reports", "stats"),
    "check": ("reports", "check"),
    "sync": ("sync", "sync"),
}
_HELP = (
    "Manage the subscriber list, subscribers/subscribers.csv.\n\n"
    "The CSV is yours to edit in a spreadsheet too: these commands keep every row, "
    "column and edit, and write under a lock so they never clobber another writer."
)
#: the group's options that take a value (the command's name is never one of those)
_VALUED = ("--file", "-f", "--lock-timeout")


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


def build_app(only: str | None = None) -> typer.Typer:
    """The sub-app with every command, or with ``only`` that one."""
    made = typer.Typer(help=_HELP, no_args_is_help=True, rich_markup_mode=None)
    made.callback()(subscribers)
    for name, (module, function) in COMMANDS.items():
        if only is None or name == only:
            command = getattr(importlib.import_module(f"{__name__}.{module}"), function)
            made.command(name)(command)
    return made


def command_named(args: Sequence[str]) -> str | None:
    """The command that ``newsletter subscribers ARGS`` runs, when ARGS name a known one
    (None: the group's help, a typo, no command: every command is needed)."""
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in _VALUED:
            skip = True
        elif arg in ("--help", "-h"):
            return None  # the group's help, which lists every command
        elif arg == "--" or not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def __getattr__(name: str) -> Any:
    # ``app`` (every command) is built on first use (PEP 562)
    if name == "app":
        made = globals()["app"] = build_app()
        return made
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
