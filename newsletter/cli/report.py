"""`newsletter report [ISSUE]`: what each issue did, from the event table.

Every run first reads what changed in the journal, the webhook ledger, the inbound
records and the list (:func:`newsletter.reports.collect.collect`), then shows counts:
no addresses (a reader's history is ``newsletter subscribers show ADDRESS``).
"""


import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.console import console
from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from newsletter.reports.summary import IssueReport


def _slug(issue: str) -> str:
    slug = Path(issue).stem if issue.endswith((".yaml", ".yml")) else issue
    return slug if slug.startswith("vol-") else f"vol-{slug}"


def _say(text: str = "") -> None:
    console.print(text, markup=False, emoji=False, highlight=False)


def issue_lines(r: "IssueReport") -> list[str]:
    """One issue, as ``newsletter report ISSUE`` prints it."""
    from newsletter.reports.summary import percent

    when = (
        f"first sent {r.first_sent.replace('T', ' ').replace('Z', ' UTC')}, "
        if r.first_sent
        else ""
    )
    how = "confirmed by SendGrid" if r.delivery_confirmed else "handed off, less bounces"
    lines = [
        f"{r.issue}: {when}to {r.audience:,} readers",
        f"  {'delivered':<16}{r.delivered:>9,}  {percent(r.delivery_rate):>8}  ({how})",
        f"  {'bounced, hard':<16}{r.permanent:>9,}  {percent(r.permanent_rate):>8}"
        "  (permanent failures, limit 1 %)",
        f"  {'bounced, soft':<16}{r.temporary:>9,}  {percent(r.temporary_rate):>8}"
        "  (temporary failures, limit 5 %)",
        f"  {'uncertain':<16}{r.uncertain:>9,}",
        f"  {'complaints':<16}{r.complaints:>9,}  {percent(r.complaint_rate):>8}"
        "  (of delivered, limit 0.3 %)",
        f"  {'unsubscribes':<16}{r.unsubscribes:>9,}  {percent(r.unsubscribe_rate):>8}",
    ]
    if r.tracked:
        lines.append(f"  {'opens':<16}{r.opens:>9,}  {percent(r.open_rate):>8}")
        lines.append(f"  {'clicks':<16}{r.clicks:>9,}  {percent(r.click_rate):>8}")
    else:
        lines.append("  opens and clicks: not tracked (SENDGRID_TRACKING=on to track them)")
    lines += [f"warning: {w}" for w in r.warnings]
    return lines


def overview_lines(reports: list["IssueReport"]) -> list[str]:
    """The last issues side by side, as ``newsletter report`` prints them."""
    from newsletter.reports.summary import percent

    head = (
        f"{'issue':<12}{'sent':>11}{'readers':>9}{'growth':>8}{'delivered':>11}"
        f"{'hard':>8}{'soft':>8}{'complaints':>11}{'unsubs':>8}"
    )
    lines = [head]
    before: int | None = None
    for r in reports:
        growth = "" if before is None else f"{r.audience - before:+,}"
        before = r.audience
        lines.append(
            f"{r.issue:<12}{r.first_sent[:10]:>11}{r.audience:>9,}{growth:>8}"
            f"{percent(r.delivery_rate):>11}{percent(r.permanent_rate):>8}"
            f"{percent(r.temporary_rate):>8}{percent(r.complaint_rate):>11}{r.unsubscribes:>8,}"
        )
    lines.append("limits: complaints < 0.3 % (Gmail), soft <= 5 %, hard <= 1 % (Buttondown)")
    lines += [f"warning: {r.issue}: {w}" for r in reports for w in r.warnings]
    return lines


def load_reports() -> list["IssueReport"]:
    """Collect what changed, then every issue's report (oldest first)."""
    from newsletter.config import load_settings
    from newsletter.reports.collect import collect
    from newsletter.reports.eventstore import EventStore
    from newsletter.reports.summary import build_reports

    settings = load_settings()
    with EventStore.in_state_dir(settings.state_dir) as store:
        collect(settings, store)
        return build_reports(store.tallies(), store.issues())


def report(
    issue: Annotated[
        str | None,
        typer.Argument(
            metavar="ISSUE",
            help="Issue name (vol-2.19) or path to its YAML; none: the last issues.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")] = False,
    html: Annotated[
        Path | None,
        typer.Option(
            "--html",
            metavar="FILE",
            dir_okay=False,
            help="Write the HTML report with charts to FILE (no script, no external request).",
        ),
    ] = None,
    last: Annotated[
        int, typer.Option("--last", min=1, help="How many of the last issues to show.")
    ] = 10,
) -> None:
    """What each issue did: delivered, bounced (hard/soft), complaints, unsubscribes,
    opens and clicks when tracked, with rates and the limits mailbox providers keep.

    Counts only; one reader's history is `newsletter subscribers show ADDRESS`.
    """
    reports = load_reports()
    if html is not None:
        from newsletter.reports.page import render_page

        shown = reports[-last:]
        html.write_text(render_page(shown), encoding="utf-8")
        _say(f"wrote {html} ({len(shown)} issue{'' if len(shown) == 1 else 's'})")
        return
    if issue is not None:
        slug = _slug(issue)
        found = [r for r in reports if r.issue == slug]
        if not found:
            raise NewsletterError(
                f"{slug}: no events yet (not sent, or sent before reports were kept)",
                hint="newsletter status " + slug + " shows what the send journal holds",
            )
        if as_json:
            _say(json.dumps(found[0].as_dict(), indent=2, ensure_ascii=False))
        else:
            for line in issue_lines(found[0]):
                _say(line)
        return
    shown = reports[-last:]
    if as_json:
        _say(json.dumps([r.as_dict() for r in shown], indent=2, ensure_ascii=False))
        return
    if not shown:
        _say("no issue has been sent yet")
        return
    for line in overview_lines(shown):
        _say(line)


COMMANDS = [report]
