"""`newsletter status`: what the send journal holds for one issue.

Counts by delivery state, the last run, and every recipient that failed or is uncertain.
It reads only the journal (:func:`~newsletter.cli.send.journal_path`), never the
subscriber file or the transport.
"""


import json
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer

from newsletter.console import echo
from newsletter.home import JOURNAL_NAME


def _schedule_line(state: Path, slug: str) -> tuple[str, dict[str, Any]] | None:
    """The issue's schedule (``state`` is the state folder) as a line and as data."""
    from newsletter.delivery.schedule import SCHEDULE_NAME, Schedules

    path = state / SCHEDULE_NAME
    if not path.exists():
        return None
    with Schedules(path) as book:
        item = book.get(slug)
    if item is None:
        return None
    note = f": {item.note}" if item.note else ""
    data = {
        "send_at": item.send_at.isoformat(), "zone": item.zone, "via": item.via,
        "state": item.state, "note": item.note,
    }  # fmt: skip
    return f"schedule: {item.state} for {item.shown} ({item.via}){note}", data


def _json(slug: str, path: Path, schedule: dict[str, Any] | None) -> str:
    """The journal's view of one issue for scripts: counts, last run, problem rows."""
    from newsletter.delivery.journal import Journal

    data: dict[str, Any] = {
        "issue": slug, "sent_before": False, "counts": {}, "last_run": None,
        "failed": [], "uncertain": [], "schedule": schedule,
    }  # fmt: skip
    if path.exists():
        with Journal(path, create=False) as journal:
            counts = journal.counts(slug)
            if any(counts.values()):
                data["sent_before"] = counts["sent"] + counts["uncertain"] > 0
                data["counts"] = counts
            last = journal.last_run(slug)
            if last is not None:
                keys = ("transport", "started_at", "finished_at", "result")
                data["last_run"] = dict(zip(keys, last, strict=True))
            for state in ("failed", "uncertain"):
                data[state] = [
                    {"email": r.email, "reason": r.reason, "permanent": r.permanent,
                     "attempts": r.attempts, "updated_at": r.updated_at}
                    for r in journal.rows(slug, (state,))
                ]  # fmt: skip
    return json.dumps(data, indent=2, ensure_ascii=False)


def status(
    issue: Annotated[str, typer.Argument(help="Issue name (vol-2.19) or path to its YAML.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the status as JSON, for scripts.")
    ] = False,
) -> None:
    """Show what was sent for ISSUE, to how many, and every failure or uncertain recipient.

    The last run's result is how it ended: ok, partial (some failed or are uncertain),
    failed (nothing was sent), stopped (Ctrl-C), interrupted, or not finished (the
    process died: the next send turns its in-flight recipients into uncertain ones).
    """
    from newsletter.delivery.journal import Journal
    from newsletter.home import read_home, state_dir

    # Only the home folder, not every setting: status reads nothing but its state files.
    folder = state_dir(read_home())
    path = folder / JOURNAL_NAME
    slug = Path(issue).stem if issue.endswith((".yaml", ".yml")) else issue
    if not slug.startswith("vol-"):
        slug = f"vol-{slug}"
    schedule = _schedule_line(folder, slug)
    if as_json:
        data = schedule[1] if schedule else None
        echo(_json(slug, path, data))
        return
    if schedule is not None:
        echo(schedule[0])
    if not path.exists():
        echo(f"{slug}: not sent yet (no journal at {path})")
        return
    with Journal(path) as journal:
        counts = journal.counts(slug)
        total = sum(counts[s] for s in ("pending", "in_flight", "sent", "failed", "uncertain"))
        if total == 0 and counts["skipped"] == 0:
            echo(f"{slug}: not sent yet")
            return
        echo(f"{slug}: {counts['sent']:,} of {total:,} sent")
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
            echo(f"  {label:10} {counts[state]:>9,}{extra}")
        last = journal.last_run(slug)
        if last is not None:
            transport, started, finished, result = last
            end = f", finished {finished} ({result})" if finished else ", not finished"
            echo(f"last run: {transport}, started {started}{end}")
        for state in ("failed", "uncertain"):
            rows = list(journal.rows(slug, (state,)))
            if not rows:
                continue
            echo(f"{state}:")
            for row in rows:
                perm = " (permanent)" if state == "failed" and row.permanent else ""
                echo(f"  {row.email}: {row.reason}{perm}")


COMMANDS: list[Callable[..., Any]] = [status]
