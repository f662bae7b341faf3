"""`newsletter status`: what the send journal holds for one issue.

Counts by delivery state, the last run, and every recipient that failed or is uncertain.
It reads only the journal (:func:`~newsletter.cli.send.journal_path`), never the
subscriber file or the transport.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from newsletter.cli.send import JOURNAL_NAME
from newsletter.console import console


def status(
    issue: Annotated[str, typer.Argument(help="Issue name (vol-2.19) or path to its YAML.")],
) -> None:
    """Show what was sent for ISSUE, to how many, and every failure or uncertain recipient."""
    from newsletter.delivery.journal import Journal
    from newsletter.home import read_home, state_dir

    # Only the home folder, not every setting: status reads nothing but the journal.
    path = state_dir(read_home()) / JOURNAL_NAME
    slug = Path(issue).stem if issue.endswith((".yaml", ".yml")) else issue
    if not slug.startswith("vol-"):
        slug = f"vol-{slug}"
    if not path.exists():
        console.print(f"{slug}: not sent yet (no journal at {path})", markup=False)
        return
    with Journal(path) as journal:
        counts = journal.counts(slug)
        total = sum(counts[s] for s in ("pending", "in_flight", "sent", "failed", "uncertain"))
        if total == 0 and counts["skipped"] == 0:
            console.print(f"{slug}: not sent yet", markup=False)
            return
        console.print(f"{slug}: {counts['sent']:,} of {total:,} sent", markup=False)
        labels = (
            ("sent", "sent"),
            ("failed", "failed"),
            ("uncertain", "uncertain"),
            ("pending", "pending"),
            ("in_flight", "in flight"),
            ("skipped", "skipped"),
        )
        for state, label in labels:
            extra = ""
            if state == "failed" and counts["failed"]:
                extra = f"  ({counts['failed_permanent']:,} permanent)"
            console.print(f"  {label:10} {counts[state]:>9,}{extra}", markup=False)
        last = journal.last_run(slug)
        if last is not None:
            transport, started, finished, result = last
            end = f", finished {finished} ({result})" if finished else ", not finished"
            console.print(f"last run: {transport}, started {started}{end}", markup=False)
        for state in ("failed", "uncertain"):
            rows = list(journal.rows(slug, (state,)))
            if not rows:
                continue
            console.print(f"{state}:", markup=False)
            for row in rows:
                perm = " (permanent)" if state == "failed" and row.permanent else ""
                console.print(f"  {row.email}: {row.reason}{perm}", markup=False)


COMMANDS: list[Callable[..., Any]] = [status]
