"""The options every `newsletter subscribers` command shares, and the store they name.

The group's own options (``--file``, ``--lock-timeout``) travel to each command in the
Typer context as :class:`GroupOptions`; a command's ``--file`` wins over the group's.
``--status`` filters are checked against the known statuses here, once for all.
"""


from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from newsletter.audience.subscribers import SubscriberStore

#: the statuses for --help, spelled out so registering the commands does not import the
#: store and its address validator (tests/cli/test_startup.py keeps it equal to STATUSES)
STATUS_HELP = "pending, active, unsubscribed, bounced, complained"


@dataclass(frozen=True, slots=True)
class GroupOptions:
    """What ``newsletter subscribers [--file PATH] [--lock-timeout SECONDS]`` was given."""

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
        help=f"Only rows with this status; repeat for several ({STATUS_HELP}).",
    ),
]


def open_store(ctx: typer.Context, file: Path | None) -> "SubscriberStore":
    """The store for the command's ``--file``, else the group's, else the home folder's
    (as :meth:`SubscriberStore.from_settings` places it, without loading every setting)."""
    from newsletter.audience.subscribers import SubscriberStore

    options = ctx.find_object(GroupOptions) or GroupOptions()
    path = file or options.file
    if path is not None:
        return SubscriberStore(path, lock_timeout=options.lock_timeout)
    from newsletter.cli.folding import fold_around
    from newsletter.home import read_home, state_dir, subscribers_file

    home = read_home()
    store = SubscriberStore(
        subscribers_file(home),
        lock_timeout=options.lock_timeout,
        backup_dir=state_dir(home) / "backups",
        state_dir=state_dir(home),
    )
    # the consent ledger's changes into the file before the command reads it, and after
    fold_around(ctx, store)
    return store


def parse_statuses(values: Sequence[str] | None) -> set[str] | None:
    """The statuses a ``--status`` filter asks for (None: every one); unknown ones fail."""
    from newsletter.audience.subscribers import STATUSES, AddressError

    if not values:
        return None
    wanted = {v.strip().lower() for v in values}
    unknown = sorted(wanted - set(STATUSES))
    if unknown:
        raise AddressError(
            f"--status: unknown status {', '.join(unknown)} (expected one of {', '.join(STATUSES)})"
        )
    return wanted
