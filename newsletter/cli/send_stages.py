"""Staged sends: the seed list (readers tagged ``seed``) and a canary go first.

``send --seed`` hands the issue to the subscribers whose ``tags`` column holds ``seed``
(the team's own inboxes at Gmail, Outlook, Apple Mail); ``send --canary N`` to N readers
chosen at random, the same N for the same issue every time (a hash of issue and
address), so a stopped canary resumes with the same people. Each stage is an ordinary
run of the journal, focused on its readers; ``--hold`` stops after the stages and
prints how to continue, and the rest goes with a plain ``send`` later, never twice
(the journal knows who had it). Without ``--hold`` the rest follows once the stages
went out cleanly, after asking again on a terminal.
"""


import hashlib
import heapq
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from newsletter.cli.send_report import plural
from newsletter.console import console
from newsletter.errors import SendRefusedError

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.delivery.journal import Journal

SEED_TAG = "seed"


def canary_keys(journal: "Journal", slug: str, count: int) -> list[str]:
    """``count`` pending readers, random yet reproducible for this issue."""

    def rank(key: str) -> bytes:
        return hashlib.sha256(f"{slug}\0{key}".encode()).digest()

    return heapq.nsmallest(count, journal.pending_keys(slug), key=rank)


def seed_keys(settings: "Settings", journal: "Journal", slug: str) -> list[str]:
    """Pending readers whose ``tags`` column holds ``seed``; refused when there are none."""
    from newsletter.audience.subscribers import SubscriberStore

    store = SubscriberStore.from_settings(settings)
    header = store.header()
    column = next(
        (i for i, cell in enumerate(header.cells) if cell.strip().lower() == "tags"), None
    ) if header is not None else None  # fmt: skip
    tagged: set[str] = set()
    if column is not None:
        for row in store.iter_rows():
            if row.subscriber is None or column >= len(row.cells):
                continue
            tags = {t.strip().lower() for t in row.cells[column].replace(",", ";").split(";")}
            if SEED_TAG in tags:
                tagged.add(row.subscriber.key)
    keys = [k for k in journal.pending_keys(slug) if k in tagged]
    if not keys:
        raise SendRefusedError(
            f"{slug}: --seed: no pending reader is tagged '{SEED_TAG}'",
            hint="add 'seed' to the tags column of the team's own addresses "
            "(`newsletter subscribers import FILE --map 'Team=tags'` or by hand)",
        )
    return keys


def run_stages(
    stages: list[tuple[str, list[str]]],
    journal: "Journal",
    run: Callable[[int], None],
    *,
    slug: str,
    hold: bool,
    yes: bool,
    interactive: bool,
) -> bool:
    """Send each stage (``run(limit)`` with the journal focused on its readers); True
    when the rest should follow now, False when the send holds here."""
    for label, keys in stages:
        console.print(f"stage: {label}, {plural(len(keys), 'reader')}", markup=False)
        journal.focus(keys)
        try:
            run(len(keys))
        finally:
            journal.focus(None)
    rest = journal.counts(slug)["pending"]
    if not rest:
        return False
    if hold:
        console.print(
            f"held: {plural(rest, 'reader')} still to send; check the stages' copies, then "
            f"run `newsletter send {slug}` to send the rest (nobody gets it twice)",
            markup=False,
            soft_wrap=True,
        )
        return False
    if not yes and interactive and not typer.confirm(
        f"Stages went out. Send {slug} to the remaining {plural(rest, 'reader')}?",
        default=False,
    ):
        console.print(f"held: run `newsletter send {slug}` to send the rest", markup=False)
        return False
    return True
