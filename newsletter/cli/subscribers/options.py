"""The options every `newsletter subscribers` command shares, and the store they name.

The group's own options (``--file``, ``--lock-timeout``) travel to each command in the
Typer context as :class:`GroupOptions`; a command's ``--file`` wins over the group's.
``--status`` filters are checked against the known statuses here, once for all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated

import typer

from newsletter.audience.subscribers import STATUSES, AddressError, SubscriberStore
from newsletter.cli.folding import fold_around


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
        help=f"Only rows with this status; repeat for several ({', '.join(STATUSES)}).",
    ),
]


def open_store(ctx: typer.Context, file: Path | None) -> SubscriberStore:
    """The store for the command's ``--file``, else the group's, else the settings'."""
    options = ctx.find_object(GroupOptions) or GroupOptions()
    path = file or options.file
    if path is not None:
        return SubscriberStore(path, lock_timeout=options.lock_timeout)
    from newsletter.config import load_settings

    settings = load_settings()
    store = SubscriberStore.from_settings(settings, lock_timeout=options.lock_timeout)
    # the ledger's changes into the file before the command reads it, and after
    fold_around(ctx, store)
    return store


def parse_statuses(values: Sequence[str] | None) -> set[str] | None:
    """The statuses a ``--status`` filter asks for (None: every one); unknown ones fail."""
    if not values:
        return None
    wanted = {v.strip().lower() for v in values}
    unknown = sorted(wanted - set(STATUSES))
    if unknown:
        raise AddressError(
            f"--status: unknown status {', '.join(unknown)} (expected one of {', '.join(STATUSES)})"
        )
    return wanted
