"""`newsletter signups ...`: pull mail from the contact address, act on it, review the rest.

A thin shell over :mod:`newsletter.audience.signups`; errors propagate to the root group, which
prints them and exits with the error's code.
"""


from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from newsletter.console import console
from newsletter.errors import NewsletterError

# Each command imports what it uses when it runs: registering the sub-app (and --help)
# must not load the inbound pipeline, the web app or the settings.
if TYPE_CHECKING:
    from newsletter.audience.inbound.records import InboundRecord, ReviewState
    from newsletter.audience.inbound.sources import InboundSource
    from newsletter.audience.review import ApproveAs
    from newsletter.audience.signups import ProcessOutcome
    from newsletter.config import Settings

app = typer.Typer(
    help="Handle mail sent to the contact address: signups, unsubscribes, bounces.\n\n"
    "Joining is double opt-in: a request only ever mails a confirmation; the person "
    "replies to it (or opens its link) to become active. What the tool cannot decide "
    "waits in the review queue.",
    no_args_is_help=True,
    rich_markup_mode=None,
)

RecordId = Annotated[int, typer.Argument(help="The item's id, as `review` lists it.")]


def _settings() -> "Settings":
    from newsletter.config import load_settings

    return load_settings()


def _print(text: str) -> None:
    console.print(text, markup=False)


@app.command("process")
def process_command(
    source: Annotated[
        Path | None,
        typer.Option(
            "--source",
            help="A folder of .eml files, a Maildir or an mbox file. Without it, the IMAP "
            "mailbox from NEWSLETTER_IMAP_HOST (and _USERNAME, _PASSWORD, _FOLDER).",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option("--dry-run", help="Say what would be done; send, move and record nothing."),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Also list messages handled before.")
    ] = False,
) -> None:
    """Read the contact mailbox and act on every message: one line each, then a summary.

    Subscribe requests get a confirmation email; unsubscribes apply at once for the
    sender; confirmation replies activate; bounces of mail we sent suppress the
    address; automatic mail is recorded and never answered; everything else waits in
    `newsletter signups review`. Re-running is safe: a message is handled once.
    """
    from newsletter.audience.inbound.imap import ImapSource
    from newsletter.audience.inbound.mailfiles import open_path_source
    from newsletter.audience.inbound.records import Records
    from newsletter.audience.signups import process_source, summarize
    from newsletter.audience.subscribers import SubscriberStore
    from newsletter.cli.folding import folded

    settings = _settings()
    settings.require_secret()
    store = SubscriberStore.from_settings(settings)
    with folded(store), Records.from_settings(settings) as records:
        inbound: InboundSource = (
            open_path_source(source)
            if source is not None
            else ImapSource.from_settings(settings, records=records)
        )

        def show(outcome: "ProcessOutcome") -> None:
            if outcome.action != "duplicate" or verbose:
                _print(outcome.line())

        outcomes = process_source(
            inbound, settings, records=records, dry_run=dry_run, on_outcome=show, store=store
        )
    prefix = "dry run: " if dry_run else ""
    _print(f"{prefix}{inbound.name}: {summarize(outcomes)}")
    if any(o.review for o in outcomes) and not dry_run:
        _print("next: newsletter signups review")


@app.command("review")
def review_command(
    all_items: Annotated[
        bool, typer.Option("--all", help="Also list items already decided.")
    ] = False,
) -> None:
    """List what waits for a human: id, date, from, reason and the start of the text."""
    from newsletter.audience.inbound.records import Records
    from newsletter.audience.review import REPORT_KINDS, review_groups

    settings = _settings()
    with Records.from_settings(settings) as records:
        states: tuple[ReviewState, ...] = (
            ("open", "approved", "rejected", "ignored") if all_items else ("open",)
        )
        items = list(records.items(review=states))
    _report_unprocessed(settings)
    if not items:
        _print("nothing to review")
        return
    groups = review_groups(items)
    for title, group in groups:
        if len(groups) > 1 or group[0].kind in REPORT_KINDS:
            _print(f"== {title} ({len(group)}) ==")
        for item in group:
            _print_item(item)
    _print(
        f"{len(items)} item{'s' if len(items) != 1 else ''}; decide with: newsletter signups "
        "approve|reject|ignore ID (read one with: newsletter signups show ID)"
    )


def _print_item(item: "InboundRecord") -> None:
    """One review item: id, date, sender, subject, why, what was done, the text."""
    from newsletter.audience.inbound.safety import clean_text

    state = "" if item.review == "open" else f" [{item.review}]"
    _print(f"[{item.id}] {item.received_at}  from {item.sender or '(no usable From)'}{state}")
    if item.subject:
        _print(f"    subject: {item.subject}")
    _print(f"    {item.kind or 'error'}: {item.reason}")
    if item.detail and item.detail != item.reason:
        _print(f"    done: {item.detail}")
    excerpt = " / ".join(
        line for line in clean_text(item.excerpt, limit=200).split("\n") if line.strip()
    )
    if excerpt:
        _print(f"    text: {excerpt}")


def _report_unprocessed(settings: "Settings") -> None:
    """Payloads `newsletter serve` kept because it could not handle them: never silent."""
    from newsletter.web.sendgrid import UNPROCESSED_DIR

    folder = settings.state_dir / UNPROCESSED_DIR
    kept = (
        sorted(p for p in folder.glob("*") if p.suffix in (".eml", ".form"))
        if folder.is_dir()
        else []
    )
    if not kept:
        return
    emails = sum(1 for p in kept if p.suffix == ".eml")
    _print(
        f"{len(kept)} inbound payload(s) kept by `newsletter serve` in {folder}/ "
        f"(the .txt beside each says why)"
    )
    if emails:
        _print(
            f"  retry the {emails} .eml message(s): newsletter signups process --source {folder}"
        )
    if len(kept) > emails:
        _print(
            f"  {len(kept) - emails} .form payload(s) could not be read at all: read them by hand"
        )


@app.command("show")
def show_command(
    record_id: RecordId,
    raw: Annotated[
        bool, typer.Option("--raw", help="Print the whole message source (headers, MIME).")
    ] = False,
) -> None:
    """Print an inbound message as it arrived, and what was done with it."""
    from newsletter.audience.inbound.classify import parse_message
    from newsletter.audience.inbound.records import Records
    from newsletter.audience.inbound.safety import clean_header_text, clean_text
    from newsletter.audience.inbound.text import body_text

    settings = _settings()
    with Records.from_settings(settings) as records:
        item = records.require(record_id)
        data = records.raw(record_id)
    _print(f"[{item.id}] {item.source} {item.source_id}, received {item.received_at}")
    _print(f"kind: {item.kind or 'error'}; outcome: {item.outcome}; review: {item.review}")
    _print(f"why: {item.reason}")
    if item.detail:
        _print(f"done: {item.detail}")
    if item.review_note:
        _print(f"decision: {item.review_note}")
    _print("-" * 72)
    if raw:
        text = data.decode("utf-8", errors="replace")
        _print(clean_text(text, limit=200_000))
        return
    msg = parse_message(data)
    for name in ("From", "To", "Cc", "Date", "Subject", "Message-ID"):
        try:
            value = msg.get(name)
        except Exception:  # a hostile header: show it raw-ish below
            value = None
        if value is not None:
            _print(f"{name}: {clean_header_text(value, limit=300)}")
    _print("")
    try:
        body = body_text(msg)
    except Exception:  # show what can be shown
        body = ""
    _print(clean_text(body, limit=50_000) or "(no readable text; see --raw)")


def _decided(text: str) -> None:
    _print(text)


@app.command("approve")
def approve_command(
    record_id: RecordId,
    as_kind: Annotated[
        str | None,
        typer.Option(
            "--as",
            help="Treat the message as subscribe, unsubscribe, bounce or complaint (needed "
            "when it was not recognised as one).",
        ),
    ] = None,
    address: Annotated[
        list[str] | None,
        typer.Option("--address", help="The address to act on (repeatable); default: the item's."),
    ] = None,
) -> None:
    """Do what an item asks: subscribe -> send the confirmation; unsubscribe -> apply it;
    a bounce or delay -> mark bounced; a complaint -> mark complained."""
    from newsletter.audience.review import approve
    from newsletter.audience.subscribers import SubscriberStore
    from newsletter.cli.folding import folded

    if as_kind is not None and as_kind not in ("subscribe", "unsubscribe", "bounce", "complaint"):
        raise NewsletterError(
            f"--as {as_kind!r}: expected subscribe, unsubscribe, bounce or complaint"
        )
    settings = _settings()
    kind: ApproveAs | None = as_kind  # type: ignore[assignment]
    with folded(SubscriberStore.from_settings(settings)) as store:
        done = approve(record_id, settings, as_kind=kind, addresses=address or (), store=store)
    _decided(f"[{record_id}] {done}")


@app.command("reject")
def reject_command(record_id: RecordId) -> None:
    """Refuse an item's request: nothing is sent or changed; it leaves the queue."""
    from newsletter.audience.review import reject

    _decided(reject(record_id, _settings()))


@app.command("ignore")
def ignore_command(record_id: RecordId) -> None:
    """Drop an item that is not a request at all (a thank-you, a question answered)."""
    from newsletter.audience.review import ignore

    _decided(ignore(record_id, _settings()))
