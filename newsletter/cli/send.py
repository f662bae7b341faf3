"""`newsletter send`: deliver an issue, or test copies of it, through a thin shell over
:mod:`newsletter.delivery.campaign` and :mod:`newsletter.delivery.journal`.

Owns the run itself: loading the issue (refusing one with errors), one sender per issue
(a lock file), wiring the campaign, asking before sending, the progress bar, and a
graceful stop on Ctrl-C or SIGTERM. What it prints about the plan and the outcome is
:mod:`.send_report`; `newsletter status` is :mod:`.status`.
"""

from __future__ import annotations

import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter.console import console, err_console
from newsletter.errors import (
    IssueFileError,
    PartialSendError,
    SendRefusedError,
    TransportError,
)

if TYPE_CHECKING:
    from rich.progress import Progress

    from newsletter.compose.message import MessageBuilder
    from newsletter.config import Settings
    from newsletter.delivery.campaign import Campaign, Plan
    from newsletter.delivery.journal import Journal
    from newsletter.delivery.transports.base import Outcome

JOURNAL_NAME = "journal.sqlite3"


def journal_path(settings: Settings) -> Path:
    """The send journal that `send` writes and `status` reads."""
    return settings.state_dir / JOURNAL_NAME


def _progress() -> Progress:
    # rich.progress is imported here, by the commands that show a bar (start-up time)
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

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        _RateColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        console=err_console,
        disable=not err_console.is_terminal,
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


def _load(issue: str, settings: Settings) -> Any:
    from newsletter.compose.issuefile import load_issue, resolve_issue_path
    from newsletter.compose.render import render_issue

    try:
        path = resolve_issue_path(issue, settings)
        loaded = load_issue(path)
    except IssueFileError as exc:
        raise SendRefusedError(
            f"{exc.message}\nrefusing to send {issue}: the issue has errors",
            hint=exc.hint or f"fix them, then run `newsletter check {issue}`",
        ) from None
    return render_issue(loaded, settings)


def send(
    issue: Annotated[str, typer.Argument(help="Issue name (vol-2.19) or path to its YAML.")],
    to: Annotated[
        list[str] | None,
        typer.Option(
            "--to",
            metavar="ADDR",
            help="Send a test copy to just this address (repeatable); subject gets "
            "'[TEST] ', the journal is not touched.",
        ),
    ] = None,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Build every message but hand nothing off.")
    ] = False,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
    limit: Annotated[
        int | None,
        typer.Option("--limit", min=1, help="Hand off at most N recipients in this run."),
    ] = None,
    concurrency: Annotated[
        int | None,
        typer.Option(
            "--concurrency",
            min=1,
            max=64,
            help="SMTP connections, or SendGrid requests in flight [NEWSLETTER_CONCURRENCY].",
        ),
    ] = None,
    resend_uncertain: Annotated[
        bool,
        typer.Option(
            "--resend-uncertain",
            help="Also send to recipients whose earlier hand-off is uncertain "
            "(they may get a second copy).",
        ),
    ] = False,
    retry_failed: Annotated[
        bool,
        typer.Option(
            "--retry-failed",
            help="Also retry recipients that failed permanently (after fixing the cause, "
            "e.g. a misconfigured relay). Subscribers marked bounced stay bounced.",
        ),
    ] = False,
    skip_invalid: Annotated[
        bool,
        typer.Option(
            "--skip-invalid",
            help="Send even though some rows of the subscriber file have problems "
            "(those rows are not sent to; `newsletter subscribers check` lists them).",
        ),
    ] = False,
) -> None:
    """Deliver ISSUE to every active subscriber, exactly once.

    Safe to re-run: recipients already sent are skipped, so after a crash, kill or Ctrl-C
    the same command resumes. The transport comes from NEWSLETTER_TRANSPORT (outbox,
    smtp, sendgrid).
    """
    from filelock import FileLock, Timeout

    from newsletter.cli.send_report import check_invalid, report_nothing_to_send, show_plan
    from newsletter.compose.message import MessageBuilder, Recipient
    from newsletter.config import load_settings
    from newsletter.delivery.transports import make_transport

    settings = load_settings(concurrency=concurrency)
    rendered = _load(issue, settings)
    slug: str = rendered.slug
    command = f"newsletter send {issue}"

    if to:
        _send_test(settings, MessageBuilder(rendered, settings, subject_prefix="[TEST] "), to)
        return

    from newsletter.audience.subscribers import SubscriberStore
    from newsletter.delivery.campaign import Campaign
    from newsletter.delivery.journal import Journal

    builder = MessageBuilder(rendered, settings)
    transport = make_transport(settings, builder)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(settings.state_dir / f"send-{slug}.lock"))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        raise SendRefusedError(
            f"{slug}: another `newsletter send` of this issue is running",
            hint="wait for it to finish; `newsletter status` shows its progress",
        ) from None
    try:
        with Journal(journal_path(settings)) as journal:
            campaign = Campaign(
                issue=slug,
                builder=builder,
                transport=transport,
                journal=journal,
                store=SubscriberStore.from_settings(settings),
                store_path=settings.subscribers_file,
                make_recipient=Recipient,
            )
            plan = campaign.plan(
                resend_uncertain=resend_uncertain and not dry_run,
                retry_failed=retry_failed and not dry_run,
            )
            show_plan(plan, transport.description, builder, dry_run=dry_run)
            check_invalid(plan, settings.subscribers_file, skip=skip_invalid or dry_run)
            if plan.new == 0:
                report_nothing_to_send(plan)
                return
            if dry_run:
                _dry_run(campaign, plan, limit)
                return
            _confirm(plan, yes, limit)
            _run(campaign, journal, plan, limit, command, transport.name)
    finally:
        lock.release()


def _confirm(plan: Plan, yes: bool, limit: int | None) -> None:
    from newsletter.cli.send_report import plural

    if yes:
        return
    count = plan.new if limit is None else min(limit, plan.new)
    if not sys.stdin.isatty():
        raise SendRefusedError(
            f"{plan.issue}: not sending to {plural(count, 'recipient')} without confirmation "
            "(standard input is not a terminal)",
            hint="pass --yes to send without asking",
        )
    if not typer.confirm(f"Send {plan.issue} to {plural(count, 'recipient')}?", default=False):
        raise SendRefusedError(f"{plan.issue}: send cancelled, nothing was sent")


def _dry_run(campaign: Campaign, plan: Plan, limit: int | None) -> None:
    from newsletter.cli.send_report import plural

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


def _run(
    campaign: Campaign, journal: Journal, plan: Plan, limit: int | None, command: str, name: str
) -> None:
    from newsletter.cli.send_report import finish_run

    total = plan.new if limit is None else min(limit, plan.new)
    run_id = journal.begin_run(plan.issue, name)
    result = "interrupted"
    try:
        with campaign.transport, _graceful_stop(campaign.stop, command), _progress() as bar:
            task = bar.add_task("sending", total=total)

            def advance(outcomes: list[Outcome]) -> None:
                bar.advance(task, len(outcomes))

            report = campaign.run(run_id=run_id, limit=limit, progress=advance)
        result = finish_run(report, journal, plan, command)
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


def _send_test(settings: Settings, builder: MessageBuilder, addresses: list[str]) -> None:
    from newsletter.cli.send_report import plural
    from newsletter.compose.message import Recipient
    from newsletter.config import check_address
    from newsletter.delivery.transports import Status, make_transport

    recipients = []
    for addr in addresses:
        try:
            recipients.append(Recipient(check_address(addr.strip())))
        except ValueError as exc:
            raise SendRefusedError(f"--to {addr}: {exc}") from None
    transport = make_transport(settings, builder, concurrency=min(len(recipients), 4))
    console.print(f"test send via {transport.description}", markup=False)
    with transport:
        outcomes = transport.send(recipients)
    bad = 0
    for o in outcomes:
        if o.status is Status.SENT:
            console.print(f"  sent      {o.email} {o.provider_id}".rstrip(), markup=False)
        else:
            bad += 1
            console.print(f"  {o.status.value:9} {o.email}: {o.reason}", markup=False)
    if transport.fatal is not None:
        raise transport.fatal
    if bad == len(outcomes):
        raise TransportError(f"test send: none of {plural(bad, 'copy')} was sent")
    if bad:
        raise PartialSendError(f"test send: {bad} of {len(outcomes)} copies were not sent")


COMMANDS: list[Callable[..., Any]] = [send]
