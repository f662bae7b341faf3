"""`newsletter send` and `newsletter status`: thin shells over campaign.py and journal.py."""

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
from filelock import FileLock, Timeout
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

from newsletter.console import console, err_console
from newsletter.errors import (
    IssueFileError,
    PartialSendError,
    SendRefusedError,
    TransportError,
)

if TYPE_CHECKING:
    from newsletter.compose.message import MessageBuilder
    from newsletter.config import Settings
    from newsletter.delivery.campaign import Campaign, Plan, Report
    from newsletter.delivery.journal import Journal
    from newsletter.delivery.transports.base import Outcome

JOURNAL_NAME = "journal.sqlite3"


def journal_path(settings: Settings) -> Path:
    return settings.state_dir / JOURNAL_NAME


class _RateColumn(ProgressColumn):
    def render(self, task: Task) -> Text:
        speed = task.finished_speed or task.speed
        return Text("" if speed is None else f"{speed:,.0f}/s", style="cyan")


def _progress() -> Progress:
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


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _plan_line(plan: Plan) -> str:
    parts = [f"{plan.new:,} new", f"{plan.sent:,} already sent"]
    if plan.uncertain:
        parts.append(f"{plan.uncertain:,} uncertain (not resent; see --resend-uncertain)")
    if plan.failed:
        parts.append(f"{plan.failed:,} failed permanently")
    return ", ".join(parts)


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
            "--concurrency", min=1, max=64, help="SMTP connections [NEWSLETTER_CONCURRENCY]."
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
            _show_plan(plan, transport.description, builder, dry_run=dry_run)
            _check_invalid(plan, settings.subscribers_file, skip=skip_invalid or dry_run)
            if plan.new == 0:
                _nothing_to_send(plan)
                return
            if dry_run:
                _dry_run(campaign, plan, limit)
                return
            _confirm(plan, yes, limit)
            _run(campaign, journal, plan, limit, command, transport.name)
    finally:
        lock.release()


def _check_invalid(plan: Plan, csv_path: Path, *, skip: bool) -> None:
    """Rows that would be recipients but are broken are never skipped silently."""
    if plan.duplicates:
        err_console.print(
            f"note: {_plural(len(plan.duplicates), 'duplicate row')} in {csv_path}: "
            "each address is sent to once",
            style="yellow",
            markup=False,
        )
    if not plan.invalid:
        return
    err_console.print(
        f"{_plural(len(plan.invalid), 'problem')} in {csv_path} on rows that would be "
        "recipients; they are not sent to:",
        style="yellow",
        markup=False,
    )
    for problem in plan.invalid[:10]:
        err_console.print(f"  {problem}", markup=False)
    if len(plan.invalid) > 10:
        err_console.print(f"  ... and {len(plan.invalid) - 10:,} more", markup=False)
    if not skip:
        raise SendRefusedError(
            f"{plan.issue}: the subscriber file has {_plural(len(plan.invalid), 'problem')} "
            "on rows that would be recipients",
            hint="fix them (`newsletter subscribers check`), or pass --skip-invalid to send "
            "to everyone else",
        )


def _show_plan(plan: Plan, where: str, builder: MessageBuilder, *, dry_run: bool) -> None:
    out = console
    if dry_run:
        out.print("dry run: nothing will be handed off", style="yellow")
    out.print(f"issue:      {plan.issue}", markup=False)
    out.print(f"transport:  {where}", markup=False)
    sender = f"{builder.from_name} <{builder.from_address}>"
    out.print(f"from:       {sender}", markup=False)
    out.print(f"subject:    {builder.subject}", markup=False)
    out.print(f"recipients: {_plan_line(plan)}", markup=False)
    if plan.recovered:
        out.print(
            f"{_plural(plan.recovered, 'recipient')} left in flight by an interrupted run "
            "are now uncertain",
            style="yellow",
            markup=False,
        )


def _nothing_to_send(plan: Plan) -> None:
    console.print(
        f"nothing to send: {plan.issue} is already sent to {_plural(plan.sent, 'recipient')}"
    )
    if plan.uncertain or plan.failed:
        raise PartialSendError(
            f"{plan.issue}: {plan.uncertain:,} uncertain, {plan.failed:,} failed permanently",
            hint=f"`newsletter status {plan.issue}` lists them; "
            "--resend-uncertain sends the uncertain ones again",
        )


def _confirm(plan: Plan, yes: bool, limit: int | None) -> None:
    if yes:
        return
    count = plan.new if limit is None else min(limit, plan.new)
    if not sys.stdin.isatty():
        raise SendRefusedError(
            f"{plan.issue}: not sending to {_plural(count, 'recipient')} without confirmation "
            "(standard input is not a terminal)",
            hint="pass --yes to send without asking",
        )
    if not typer.confirm(f"Send {plan.issue} to {_plural(count, 'recipient')}?", default=False):
        raise SendRefusedError(f"{plan.issue}: send cancelled, nothing was sent")


def _dry_run(campaign: Campaign, plan: Plan, limit: int | None) -> None:
    total = plan.new if limit is None else min(limit, plan.new)
    with _progress() as bar:
        task = bar.add_task("building", total=total)
        report = campaign.rehearse(limit=limit, progress=lambda o: bar.advance(task, len(o)))
    rate = report.attempted / report.elapsed if report.elapsed else 0.0
    console.print(
        f"dry run: built {_plural(report.attempted, 'message')} "
        f"({report.bytes / 1e6:,.1f} MB) in {report.elapsed:.1f} s ({rate:,.0f}/s); "
        "nothing was handed off",
        markup=False,
    )


def _run(
    campaign: Campaign, journal: Journal, plan: Plan, limit: int | None, command: str, name: str
) -> None:
    total = plan.new if limit is None else min(limit, plan.new)
    run_id = journal.begin_run(plan.issue, name)
    result = "interrupted"
    try:
        with campaign.transport, _graceful_stop(campaign.stop, command), _progress() as bar:
            task = bar.add_task("sending", total=total)

            def advance(outcomes: list[Outcome]) -> None:
                bar.advance(task, len(outcomes))

            report = campaign.run(run_id=run_id, limit=limit, progress=advance)
        result = _finish(report, journal, plan, command)
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


def _summary(report: Report) -> str:
    rate = report.sent / report.elapsed if report.elapsed else 0.0
    parts = [f"sent {report.sent:,}"]
    for label, n in (
        ("failed", report.failed),
        ("to retry", report.retry),
        ("uncertain", report.uncertain),
        ("not attempted", report.not_attempted),
        ("skipped (no longer active)", report.skipped),
    ):
        if n:
            parts.append(f"{label} {n:,}")
    return f"{report.issue}: " + ", ".join(parts) + f" in {report.elapsed:.1f} s ({rate:,.0f}/s)"


def _finish(report: Report, journal: Journal, plan: Plan, command: str) -> str:
    console.print(_summary(report), markup=False)
    if report.bounced:
        console.print(f"marked {_plural(report.bounced, 'subscriber')} bounced", markup=False)
    for warning in report.warnings:
        err_console.print(f"warning: {warning}", style="yellow", markup=False)
    problems = list(journal.rows(plan.issue, ("failed", "uncertain")))
    for row in problems[:20]:
        console.print(f"  {row.state:9} {row.email}: {row.reason}", markup=False)
    if len(problems) > 20:
        console.print(f"  ... and {len(problems) - 20:,} more", markup=False)
    counts = journal.counts(plan.issue)
    if report.stopped:
        err_console.print(
            f"stopped: {counts['pending']:,} still to send; re-run `{command}` to resume",
            style="yellow",
            markup=False,
        )
        raise typer.Exit(130)
    if report.fatal is not None:
        fatal = report.fatal
        fatal.hint = (fatal.hint + "; " if fatal.hint else "") + (
            f"{counts['pending']:,} not sent yet: re-run `{command}` to resume"
        )
        raise fatal
    left = counts["uncertain"] + counts["failed"]
    if left == 0:
        if counts["pending"]:
            console.print(
                f"{plan.issue}: sent to {_plural(counts['sent'], 'recipient')} so far; "
                f"{counts['pending']:,} still pending: re-run `{command}` to continue",
                markup=False,
            )
            return "ok"
        console.print(
            f"done: {plan.issue} sent to {_plural(counts['sent'], 'recipient')}", markup=False
        )
        return "ok"
    hint = f"`newsletter status {plan.issue}` lists them"
    if counts["failed"] - counts["failed_permanent"]:
        hint += f"; re-run `{command}` to retry temporary failures"
    if counts["uncertain"]:
        hint += "; --resend-uncertain sends uncertain ones again (they may get two copies)"
    if report.sent == 0 and report.attempted:
        raise TransportError(
            f"{plan.issue}: none of the {_plural(report.attempted, 'recipient')} was sent",
            hint=hint,
        )
    raise PartialSendError(
        f"{plan.issue}: {counts['failed']:,} failed, {counts['uncertain']:,} uncertain, "
        f"{counts['sent']:,} sent",
        hint=hint,
    )


def _send_test(settings: Settings, builder: MessageBuilder, addresses: list[str]) -> None:
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
        raise TransportError(f"test send: none of {_plural(bad, 'copy')} was sent")
    if bad:
        raise PartialSendError(f"test send: {bad} of {len(outcomes)} copies were not sent")


def status(
    issue: Annotated[str, typer.Argument(help="Issue name (vol-2.19) or path to its YAML.")],
) -> None:
    """Show what was sent for ISSUE, to how many, and every failure or uncertain recipient."""
    from newsletter.config import load_settings
    from newsletter.delivery.journal import Journal

    settings = load_settings()
    slug = Path(issue).stem if issue.endswith((".yaml", ".yml")) else issue
    if not slug.startswith("vol-"):
        slug = f"vol-{slug}"
    path = journal_path(settings)
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


COMMANDS: list[Callable[..., Any]] = [send, status]
