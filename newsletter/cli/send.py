"""`newsletter send`: deliver an issue, or test copies of it, through a thin shell over
:mod:`newsletter.delivery.campaign` and :mod:`newsletter.delivery.journal`.

Owns the command: loading the issue (refusing one with errors), one sender per issue
(a lock file), wiring the campaign, the gates (:mod:`.send_gates`, :mod:`.send_evidence`),
asking before sending, and publishing the archive page first. Driving the run (progress
bar, graceful stop on Ctrl-C or SIGTERM) is :mod:`.send_run`; what it prints about the
plan and the outcome is :mod:`.send_report`; `newsletter status` is :mod:`.status`.
"""


import datetime as dt
import sys
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter.cli.send_report import (
    check_invalid,
    plural,
    report_nothing_to_send,
    show_plan,
)
from newsletter.console import console
from newsletter.errors import (
    IssueFileError,
    PartialSendError,
    SendRefusedError,
    TransportError,
    UsageError,
)
from newsletter.home import JOURNAL_NAME

if TYPE_CHECKING:
    from newsletter.compose.message import MessageBuilder
    from newsletter.compose.models import Issue
    from newsletter.config import Settings
    from newsletter.delivery.campaign import Plan
    from newsletter.errors import Problem


def journal_path(settings: "Settings") -> Path:
    """The send journal that `send` writes and `status` reads."""
    return settings.state_dir / JOURNAL_NAME


def _load(issue: str, settings: "Settings") -> tuple["Issue", Any, list["Problem"]]:
    """The issue, rendered once, and its lint warnings; errors refuse the send."""
    from newsletter.compose.build import check_issue
    from newsletter.compose.issuefile import resolve_issue_path

    try:
        path = resolve_issue_path(issue, settings)
        return check_issue(path, settings)
    except IssueFileError as exc:
        raise SendRefusedError(
            f"{exc.message}\nrefusing to send {issue}: the issue has errors",
            hint=exc.hint or f"fix them, then run `newsletter check {issue}`",
        ) from None


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
    strict: Annotated[
        bool,
        typer.Option(
            "--strict",
            help="Refuse to send an issue with lint warnings, or while a `newsletter doctor` "
            "check fails (SPF, DKIM, DMARC, one-click unsubscribe; otherwise only shown).",
        ),
    ] = False,
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Send an issue older than one already sent (normally a typo, so refused).",
        ),
    ] = False,
    at: Annotated[
        str | None,
        typer.Option(
            "--at",
            metavar="WHEN",
            help='Schedule the send instead: "YYYY-MM-DD HH:MM" (sent by `newsletter run-due`).',
        ),
    ] = None,
    local_schedule: Annotated[
        bool,
        typer.Option(
            "--local-schedule",
            help="With SendGrid: keep the schedule here for `run-due`, which checks "
            "unsubscribes at send time, instead of handing off now with send_at.",
        ),
    ] = False,
    tz: Annotated[
        str | None,
        typer.Option("--tz", help="Time zone of --at, e.g. America/New_York (default: local)."),
    ] = None,
    seed: Annotated[
        bool, typer.Option("--seed", help="Send to the readers tagged 'seed' first.")
    ] = False,
    canary: Annotated[
        int | None,
        typer.Option(
            "--canary", min=1, metavar="N", help="Send to N random readers first (the same N "
            "for this issue every time).",
        ),
    ] = None,
    hold: Annotated[
        bool, typer.Option("--hold", help="Stop after --seed/--canary; a plain send does the rest.")
    ] = False,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="SendGrid only: a full rehearsal of the API path in SendGrid's sandbox "
            "mode (every request validated, nothing delivered, nothing recorded).",
        ),
    ] = False,
    journal_lost: Annotated[
        bool,
        typer.Option(
            "--journal-lost",
            help="Send although the outbox or archive shows more of this issue went out "
            "than the send journal knows (the journal was lost: readers may get two copies).",
        ),
    ] = False,
) -> None:
    """Deliver ISSUE to every active subscriber, exactly once.

    Safe to re-run: recipients already sent are skipped, so after a crash, kill or Ctrl-C
    the same command resumes. The transport comes from NEWSLETTER_TRANSPORT (outbox,
    smtp, sendgrid).
    """
    # imported here, not at the top: `--help` and the other commands stay quick to start
    from newsletter.cli.send_prefetch import ListReadAhead, closed_on_error
    from newsletter.config import load_settings

    settings = load_settings(concurrency=concurrency)
    when = _when(at, tz, to=bool(to), dry_run=dry_run, limit=limit)
    staged = seed or canary is not None
    if (hold and not staged) or (staged and (when or to or limit)):
        raise UsageError("--hold needs --seed or --canary; those go without --at, --to, --limit")
    # the list read in a forked child meanwhile (send_prefetch), if still current, is used
    read_ahead = None if to else ListReadAhead.start(settings)
    with closed_on_error(read_ahead):  # until the send's own stack takes the child over
        from filelock import FileLock, Timeout

        from newsletter.cli import send_run
        from newsletter.cli.send_evidence import evidence_gate, note_at_first_hand_off
        from newsletter.cli.send_gates import enforce, issue_gates, recipient_gate, show_gates
        from newsletter.cli.send_setup import (
            campaign_statuses,
            publish_page,
            rehearsal_journal,
            sandboxed,
        )
        from newsletter.compose.message import MessageBuilder, Recipient
        from newsletter.delivery.transports import make_transport

        loaded, rendered, warnings = _load(issue, settings)
        slug: str = rendered.slug
        command = f"newsletter send {issue}"

        if to:
            _send_test(settings, MessageBuilder(rendered, settings, subject_prefix="[TEST] "), to)
            return

        from newsletter.audience.subscribers import SubscriberStore
        from newsletter.cli.folding import folded
        from newsletter.delivery.campaign import Campaign
        from newsletter.delivery.journal import Journal

        builder = MessageBuilder(rendered, settings)
        transport = make_transport(settings, builder)
        settings.state_dir.mkdir(parents=True, exist_ok=True)
    rehearsal: Path | None = None  # a sandbox run's throw-away journal
    lock = FileLock(str(settings.state_dir / f"send-{slug}.lock"))
    stack = ExitStack()
    if read_ahead is not None:
        stack.callback(read_ahead.close)
    try:
        lock.acquire(timeout=0)
    except Timeout:
        stack.close()
        raise SendRefusedError(
            f"{slug}: another `newsletter send` of this issue is running",
            hint="wait for it to finish; `newsletter status` shows its progress",
        ) from None
    try:
        # the ledger's changes (web unsubscribes, bounces) into the file first; the send
        # also checks the ledger before every hand-off
        store = stack.enter_context(folded(SubscriberStore.from_settings(settings)))
        where = journal_path(settings)
        if sandbox:
            transport = sandboxed(transport)
            where = rehearsal = rehearsal_journal(settings)
        with Journal(where) as journal:
            campaign = Campaign(
                issue=slug,
                builder=builder,
                transport=transport,
                journal=journal,
                store=store,
                store_path=settings.subscribers_file,
                make_recipient=Recipient,
                presync=read_ahead,
            )
            plan = campaign.plan(
                resend_uncertain=resend_uncertain and not dry_run,
                retry_failed=retry_failed and not dry_run,
            )
            show_plan(plan, transport.description, builder, dry_run=dry_run)
            sent = journal.sent_issues()
            gates = issue_gates(
                loaded, warnings, sent, strict=strict, force=force, today=dt.date.today()
            )
            who = recipient_gate(journal, slug, sent, campaign_statuses(settings))
            lost = None if sandbox else evidence_gate(
                settings, slug, plan.sent + plan.uncertain, journal_lost=journal_lost,
                knows_run=lambda run, at: journal.knows_run(slug, run, at))
            gates += [g for g in (who, lost) if g is not None]
            show_gates(gates)
            if not dry_run:
                enforce(gates, slug)
            check_invalid(plan, settings.subscribers_file, skip=skip_invalid or dry_run)
            if plan.new == 0:
                report_nothing_to_send(plan)
                return
            if dry_run:
                send_run.dry_run(campaign, plan, limit)
                return
            from newsletter.cli.doctor import preflight_send

            if not sandbox:
                preflight_send(settings, strict=strict)
            on_run = None
            if when is not None:
                from newsletter.cli import schedule

                if local_schedule or not schedule.by_sendgrid(transport, when[0]):
                    _confirm(plan, yes, limit, verb=f"Schedule {slug} for {at!r} to")
                    schedule.record_schedule(settings, slug, *when)
                    return
                _confirm(plan, yes, limit, verb=f"Schedule {slug} with SendGrid for {at!r} to")
                on_run = schedule.with_sendgrid(settings, slug, transport, *when)
            else:
                _confirm(plan, yes, limit)
            if not sandbox:
                publish_page(settings, slug, sent)
                journal.before_first_hand_off = note_at_first_hand_off(settings, slug, plan.sent)
            def hand_off(cap: int | None) -> None:
                send_run.run(
                    campaign, journal, plan, cap, command, transport.name, settings, on_run=on_run
                )

            if staged:
                from newsletter.cli import send_stages as st

                stages = [("seed list", st.seed_keys(settings, journal, slug))] if seed else []
                if canary is not None:
                    stages.append((f"canary of {canary:,}", st.canary_keys(journal, slug, canary)))
                if not st.run_stages(stages, journal, hand_off, slug=slug, hold=hold, yes=yes,
                                     interactive=sys.stdin.isatty()):  # fmt: skip
                    return
                plan = campaign.plan()
            hand_off(limit)
            if sandbox:
                console.print(
                    "sandbox: SendGrid validated every request and delivered nothing; "
                    "nothing was recorded",
                    markup=False,
                )
    finally:
        stack.close()
        lock.release()
        if rehearsal is not None:
            import shutil

            shutil.rmtree(rehearsal.parent, ignore_errors=True)


def _when(
    at: str | None, tz: str | None, *, to: bool, dry_run: bool, limit: int | None
) -> tuple[dt.datetime, str] | None:
    """The scheduled time in UTC and its zone, checked before any work is done."""
    if at is None:
        if tz is not None:
            raise UsageError("--tz needs --at")
        return None
    if to or dry_run or limit is not None:
        raise UsageError(
            "--at schedules a whole send: it does not go with --to, --dry-run or --limit"
        )
    from newsletter.delivery.schedule import parse_when, utc_now

    return parse_when(at, tz, now=utc_now())


def _confirm(plan: "Plan", yes: bool, limit: int | None, *, verb: str = "") -> None:
    if yes:
        return
    count = plan.new if limit is None else min(limit, plan.new)
    if not sys.stdin.isatty():
        raise SendRefusedError(
            f"{plan.issue}: not sending to {plural(count, 'recipient')} without confirmation "
            "(standard input is not a terminal)",
            hint="pass --yes to send without asking",
        )
    question = f"{verb or f'Send {plan.issue} to'} {plural(count, 'recipient')}?"
    if not typer.confirm(question, default=False):
        raise SendRefusedError(f"{plan.issue}: send cancelled, nothing was sent")


def _send_test(settings: "Settings", builder: "MessageBuilder", addresses: list[str]) -> None:
    from newsletter.compose.message import Recipient
    from newsletter.config import check_address
    from newsletter.delivery.transports import Status, make_transport

    recipients = []
    for addr in addresses:
        try:
            recipients.append(Recipient(check_address(addr.strip())))
        except ValueError as exc:
            raise SendRefusedError(f"--to {addr}: {exc}") from None
    transport = make_transport(
        settings, builder, concurrency=min(len(recipients), 4), test_copies=True
    )
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
