"""What `newsletter send` tells the user about a campaign, and the error a run ends with.

Before a run: the plan (issue, transport, sender, subject, recipients by journal state),
the rows of the subscriber file that would be recipients but are broken (a refusal
unless --skip-invalid), and "nothing to send". After it: the one-line summary, every
recipient that failed or is uncertain, and the outcome -- done, stopped (exit 130), or
the :class:`~newsletter.errors.NewsletterError` whose code the root group exits with.
"""


from pathlib import Path
from typing import TYPE_CHECKING

import typer

from newsletter.console import console, err_console
from newsletter.errors import PartialSendError, SendRefusedError, TransportError

if TYPE_CHECKING:
    from newsletter.compose.message import MessageBuilder
    from newsletter.delivery.campaign import Plan, Report
    from newsletter.delivery.journal import Journal


def plural(n: int, word: str) -> str:
    """``1 recipient``, ``1,204 recipients``: the count with thousands separators."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


def _plan_line(plan: "Plan") -> str:
    parts = [f"{plan.new:,} new", f"{plan.sent:,} already sent"]
    if plan.uncertain:
        parts.append(f"{plan.uncertain:,} uncertain (not resent; see --resend-uncertain)")
    if plan.failed:
        parts.append(f"{plan.failed:,} failed permanently")
    return ", ".join(parts)


def show_plan(plan: "Plan", where: str, builder: "MessageBuilder", *, dry_run: bool) -> None:
    """Print what a run is about to do: issue, transport, sender, subject, recipients."""
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
            f"{plural(plan.recovered, 'recipient')} left in flight by an interrupted run "
            "are now uncertain",
            style="yellow",
            markup=False,
        )


def check_invalid(plan: "Plan", csv_path: Path, *, skip: bool) -> None:
    """Rows that would be recipients but are broken are never skipped silently."""
    if plan.duplicates:
        err_console.print(
            f"note: {plural(len(plan.duplicates), 'duplicate row')} in {csv_path}: "
            "each address is sent to once",
            style="yellow",
            markup=False,
        )
    if not plan.invalid:
        return
    err_console.print(
        f"{plural(len(plan.invalid), 'problem')} in {csv_path} on rows that would be "
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
            f"{plan.issue}: the subscriber file has {plural(len(plan.invalid), 'problem')} "
            "on rows that would be recipients",
            hint="fix them (`newsletter subscribers check`), or pass --skip-invalid to send "
            "to everyone else",
        )


def report_nothing_to_send(plan: "Plan") -> None:
    """No new recipient: say so, and fail if some are left uncertain or failed."""
    console.print(
        f"nothing to send: {plan.issue} is already sent to {plural(plan.sent, 'recipient')}"
    )
    if plan.uncertain or plan.failed:
        raise PartialSendError(
            f"{plan.issue}: {plan.uncertain:,} uncertain, {plan.failed:,} failed permanently",
            hint=f"`newsletter status {plan.issue}` lists them; "
            "--resend-uncertain sends the uncertain ones again",
        )


def _summarize(report: "Report") -> str:
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


def left_over(counts: dict[str, int]) -> str:
    """What a re-run would do, each count named: pending ones are sent, temporary
    failures retried, permanent failures and uncertain ones left alone unless asked."""
    retryable = counts["failed"] - counts["failed_permanent"]
    parts = [
        (counts["pending"], "not handed off yet"),
        (retryable, "failed temporarily (a re-run retries them)"),
        (counts["failed_permanent"], "failed permanently (--retry-failed)"),
        (counts["uncertain"], "uncertain: may have been delivered (--resend-uncertain)"),
    ]
    return ", ".join(f"{n:,} {what}" for n, what in parts if n) or "nothing left"


def run_result(report: "Report", counts: dict[str, int]) -> str:
    """How a run ended, as the journal records it and `status` shows it."""
    if report.stopped:
        return "stopped"
    if report.sent == 0 and report.uncertain == 0 and (report.attempted or report.fatal):
        return "failed"
    if report.fatal is not None or counts["uncertain"] + counts["failed"] + counts["pending"]:
        return "partial"
    return "ok"


def finish_run(report: "Report", journal: "Journal", plan: "Plan", command: str) -> None:
    """Print the run's outcome; raise what sets the exit code when it was not a success."""
    console.print(_summarize(report), markup=False)
    if report.bounced:
        console.print(f"marked {plural(report.bounced, 'subscriber')} bounced", markup=False)
    for warning in report.warnings:
        err_console.print(f"warning: {warning}", style="yellow", markup=False)
    problems = list(journal.rows(plan.issue, ("failed", "uncertain")))
    for row in problems[:20]:
        console.print(f"  {row.state:9} {row.email}: {row.reason}", markup=False)
    if len(problems) > 20:
        console.print(f"  ... and {len(problems) - 20:,} more", markup=False)
    counts = journal.counts(plan.issue)
    status_hint = f"`newsletter status {plan.issue}` lists them"
    if report.stopped:
        err_console.print(
            f"stopped: {left_over(counts)}; re-run `{command}` to resume",
            style="yellow",
            markup=False,
        )
        raise typer.Exit(130)
    if report.fatal is not None:
        fatal = report.fatal
        fatal.hint = (fatal.hint + "; " if fatal.hint else "") + (
            f"{left_over(counts)}: re-run `{command}` to resume"
        )
        raise fatal
    left = counts["uncertain"] + counts["failed"]
    if left == 0:
        if counts["pending"]:
            console.print(
                f"{plan.issue}: sent to {plural(counts['sent'], 'recipient')} so far; "
                f"{counts['pending']:,} still pending: re-run `{command}` to continue",
                markup=False,
            )
            return
        console.print(
            f"done: {plan.issue} sent to {plural(counts['sent'], 'recipient')}", markup=False
        )
        return
    hint = f"{status_hint}; {left_over(counts)}"
    if report.sent == 0 and report.uncertain == 0 and report.attempted:
        # nothing this run handed off can have arrived: the transport failed outright
        raise TransportError(
            f"{plan.issue}: none of the {plural(report.attempted, 'recipient')} was sent",
            hint=hint,
        )
    raise PartialSendError(
        f"{plan.issue}: {counts['failed']:,} failed, {counts['uncertain']:,} uncertain, "
        f"{counts['sent']:,} sent",
        hint=hint,
    )
