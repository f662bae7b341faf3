"""How a real run and a dry run are driven: progress bar, graceful Ctrl-C, the journal's
record of how the run ended."""


import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import TYPE_CHECKING, Any

import typer

from newsletter.cli.send_evidence import note_send
from newsletter.cli.send_report import finish_run, plural, run_result
from newsletter.console import console, err_console

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.delivery.campaign import Campaign, Plan
    from newsletter.delivery.journal import Journal
    from newsletter.delivery.transports.base import Outcome


class _NoBar:
    """The progress bar where there is no terminal to draw it on (rich not even loaded)."""

    def __enter__(self) -> "_NoBar":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def add_task(self, description: str, total: int) -> int:
        return 0

    def advance(self, task: int, advance: float) -> None:
        return None


def _progress() -> Any:
    if not err_console.is_terminal:
        return _NoBar()
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        ProgressColumn,
        Task,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )
    from rich.text import Text

    class _RateColumn(ProgressColumn):
        def render(self, task: Task) -> Text:
            speed = task.finished_speed or task.speed
            return Text("" if speed is None else f"{speed:,.0f}/s", style="cyan")

    # the bar enters its console (`with console:`): the console itself, not the stand-in
    # that makes it on first use (a stand-in has no __enter__: the bar would raise)
    made = getattr(err_console, "_get", None)
    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=made() if callable(made) else err_console,
    )


@contextmanager
def _graceful_stop(stop: Callable[[], None], command: str) -> Iterator[None]:
    """First Ctrl-C (or SIGTERM): stop handing off; a second one interrupts at once."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    hits = 0

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal hits
        hits += 1
        if hits > 1:
            raise KeyboardInterrupt
        err_console.print(
            f"stopping: finishing the hand-off under way (Ctrl-C again to abort); "
            f"re-run `{command}` to resume",
            style="yellow",
            markup=False,
        )
        stop()

    old_int = signal.signal(signal.SIGINT, handler)
    old_term = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def dry_run(campaign: "Campaign", plan: "Plan", limit: int | None) -> None:
    total = plan.new if limit is None else min(limit, plan.new)
    with _progress() as bar:
        task = bar.add_task("building", total=total)
        report = campaign.rehearse(limit=limit, progress=lambda o: bar.advance(task, len(o)))
    rate = report.attempted / report.elapsed if report.elapsed else 0.0
    console.print(
        f"dry run: built {plural(report.attempted, 'message')} "
        f"({report.bytes / 1e6:,.1f} MB) in {report.elapsed:.1f} s ({rate:,.0f}/s); "
        "nothing was handed off",
        markup=False,
    )


def run(
    campaign: "Campaign",
    journal: "Journal",
    plan: "Plan",
    limit: int | None,
    command: str,
    name: str,
    settings: "Settings",
    *,
    on_run: Callable[[int], None] | None = None,
) -> None:
    total = plan.new if limit is None else min(limit, plan.new)
    with journal.checkpoints_held():  # a lost -wal takes the whole run with it
        run_id = journal.begin_run(plan.issue, name)
        if on_run is not None:
            on_run(run_id)  # e.g. record a SendGrid schedule before its first request
        result = "interrupted"  # what a second Ctrl-C leaves; kill -9 leaves it unfinished
        try:
            with campaign.transport, _graceful_stop(campaign.stop, command), _progress() as bar:
                task = bar.add_task("sending", total=total)

                def advance(outcomes: list["Outcome"]) -> None:
                    bar.advance(task, len(outcomes))

                report = campaign.run(run_id=run_id, limit=limit, progress=advance)
            counts = journal.counts(plan.issue)
            result = run_result(report, counts)
            note_send(settings, plan.issue, counts["sent"] + counts["uncertain"])
            finish_run(report, journal, plan, command)
        except KeyboardInterrupt:
            err_console.print(
                f"interrupted: re-run `{command}` to resume; `newsletter status {plan.issue}` "
                "lists recipients whose fate is uncertain",
                style="yellow",
                markup=False,
            )
            raise typer.Exit(130) from None
        finally:
            journal.end_run(run_id, result)
