"""`newsletter send --at`, `newsletter cancel` and `newsletter run-due`: scheduled sends.

A schedule is recorded after the same plan, gates and confirmation as a send, so the
editor sees the count and the warnings when they choose the time. `run-due`, run by a
systemd timer or cron every few minutes, sends what is due with the same gates (a
refusal then is recorded and reported, never skipped silently); one that is due long
ago, because the machine was off, is refused as "missed" rather than sent hours late.
"""


import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from newsletter.console import console, err_console
from newsletter.errors import ExitCode, NewsletterError, SendRefusedError, UsageError

if TYPE_CHECKING:
    from newsletter.config import Settings
    from newsletter.delivery.schedule import Schedules


def schedules(settings: "Settings") -> "Schedules":
    from newsletter.delivery.schedule import SCHEDULE_NAME, Schedules

    return Schedules(settings.state_dir / SCHEDULE_NAME)


def _slug(issue: str) -> str:
    slug = Path(issue).stem if issue.endswith((".yaml", ".yml")) else issue
    return slug if slug.startswith("vol-") else f"vol-{slug}"


def parse_grace(text: str) -> dt.timedelta:
    match = re.fullmatch(r"\s*(\d+)\s*([mhd])\s*", text)
    if match is None:
        raise UsageError(f"--grace {text!r}: write it as 30m, 2h or 1d")
    n, unit = int(match.group(1)), match.group(2)
    return (
        dt.timedelta(minutes=n)
        if unit == "m"
        else (dt.timedelta(hours=n) if unit == "h" else dt.timedelta(days=n))
    )


def cancel(
    issue: Annotated[str, typer.Argument(help="Issue name (vol-2.20) or path to its YAML.")],
) -> None:
    """Cancel a scheduled send of ISSUE that has not started."""
    from newsletter.config import load_settings
    from newsletter.delivery.schedule import utc_now

    settings = load_settings()
    slug = _slug(issue)
    with schedules(settings) as book:
        current = book.get(slug)
        if current is None or current.state != "scheduled":
            state = "not scheduled" if current is None else current.state
            raise SendRefusedError(
                f"{slug}: nothing to cancel ({state})",
                hint=f"`newsletter status {slug}` shows what was sent",
            )
        if current.via == "sendgrid":
            if current.send_at <= utc_now():
                raise SendRefusedError(
                    f"{slug}: SendGrid delivered it at {current.shown}: too late to cancel"
                )
            assert current.batch_id is not None
            back = _cancel_with_sendgrid(settings, slug, current.batch_id, current.run)
            book.finish(slug, "cancelled", f"batch cancelled at SendGrid; {back:,} back to pending")
        else:
            book.finish(slug, "cancelled", "cancelled by `newsletter cancel`")
    console.print(f"cancelled: {slug} was scheduled for {current.shown}", markup=False)


def run_due(
    grace: Annotated[
        str,
        typer.Option(
            "--grace",
            help="How late a due send may still go out (30m, 2h, 1d); later ones are "
            "refused as missed.",
        ),
    ] = "1h",
    late_ok: Annotated[
        bool, typer.Option("--late-ok", help="Send due issues however late they are.")
    ] = False,
) -> None:
    """Send every scheduled issue whose time has come (run it from a timer or cron).

    Safe to run twice at the same moment: each schedule is claimed by one run only.
    """
    from newsletter.cli.send import send
    from newsletter.config import load_settings
    from newsletter.delivery.schedule import utc_now

    settings = load_settings()
    late = parse_grace(grace)
    now = utc_now()
    worst = 0
    with schedules(settings) as book:
        due = book.due(now)
        if not due:
            console.print("nothing due", markup=False)
            return
        for item in due:
            if not late_ok and now - item.send_at > late:
                hours = (now - item.send_at).total_seconds() / 3600
                note = f"due {item.shown}, found {hours:.1f} h late: not sent unasked"
                book.finish(item.issue, "missed", note)
                err_console.print(f"error: {item.issue}: {note}", style="red", markup=False)
                err_console.print(
                    f"hint: send it now with `newsletter send {item.issue}`, or schedule it "
                    "again with --at; `run-due --late-ok` sends late ones",
                    style="dim",
                    markup=False,
                )
                worst = max(worst, int(ExitCode.REFUSED))
                continue
            if not book.claim(item.issue):
                console.print(f"{item.issue}: taken by another run-due", markup=False)
                continue
            console.print(f"{item.issue}: due {item.shown}, sending", markup=False)
            try:
                send(item.issue, yes=True)
            except NewsletterError as exc:
                book.finish(item.issue, "failed", exc.message)
                err_console.print(f"error: {exc.message}", style="red", markup=False)
                if exc.hint:
                    err_console.print(f"hint: {exc.hint}", style="dim", markup=False)
                worst = max(worst, int(exc.exit_code))
                continue
            except typer.Exit as exc:
                book.finish(item.issue, "failed", f"exit {exc.exit_code}")
                worst = max(worst, int(exc.exit_code))
                continue
            book.finish(item.issue, "done")
    if worst:
        raise typer.Exit(worst)


def by_sendgrid(transport: Any, when: dt.datetime) -> bool:
    """Whether SendGrid itself can hold this send: its transport, at most 72 h ahead."""
    from newsletter.delivery.schedule import SENDGRID_HORIZON, utc_now

    return bool(transport.name == "sendgrid" and when - utc_now() <= SENDGRID_HORIZON)


def with_sendgrid(
    settings: "Settings", slug: str, transport: Any, when: dt.datetime, zone: str
) -> Callable[[int], None]:
    """Make the send a SendGrid schedule: a batch id, and ``send_at`` on every request.
    Returns what records the schedule once the journal's run has begun (before the
    first request), so `cancel` can always find the batch and the run."""
    batch_id = transport.create_batch()
    transport.schedule(int(when.timestamp()), batch_id)

    def record(run: int) -> None:
        with schedules(settings) as book:
            book.add(slug, when, zone, via="sendgrid", batch_id=batch_id, run=run)
            item = book.get(slug)
        assert item is not None
        console.print(
            f"scheduled with SendGrid: {slug} for {item.shown} (batch {batch_id}); SendGrid "
            f"holds the messages until then; `newsletter cancel {slug}` cancels them",
            markup=False,
            soft_wrap=True,
        )

    return record


def _cancel_with_sendgrid(settings: "Settings", slug: str, batch_id: str, run: int | None) -> int:
    """Cancel the batch at SendGrid, then put its recipients back to pending."""
    from newsletter.cli.send import journal_path
    from newsletter.cli.send_evidence import forget_send
    from newsletter.delivery.journal import Journal
    from newsletter.delivery.transports.sendgrid_schedule import api_client, cancel_batch

    key = settings.sendgrid_api_key.get_secret_value() if settings.sendgrid_api_key else ""
    if not key:
        raise SendRefusedError(
            "SENDGRID_API_KEY is not set: cannot cancel the batch at SendGrid",
            hint="set it in .env (a key with Mail Send access)",
        )
    host = settings.sendgrid_api_host
    cancel_batch(api_client(key, host, settings.sendgrid_timeout), host, batch_id)
    if run is None:
        return 0
    with Journal(journal_path(settings)) as journal:
        back = journal.unsend_run(slug, run)
    forget_send(settings, slug)
    return back


def record_schedule(settings: "Settings", slug: str, when: dt.datetime, zone: str) -> None:
    """Record a confirmed local schedule and say how it will go out."""
    with schedules(settings) as book:
        book.add(slug, when, zone, via="local")
        shown = book.get(slug)
    assert shown is not None
    console.print(f"scheduled: {slug} for {shown.shown}", markup=False)
    console.print(
        "it goes out when `newsletter run-due` runs at or after that time (a systemd timer "
        "or a cron line: see the README); `newsletter cancel "
        f"{slug}` cancels it",
        markup=False,
        soft_wrap=True,
    )


COMMANDS: list[Callable[..., Any]] = [cancel, run_due]
