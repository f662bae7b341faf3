"""`newsletter subscribers sync`: fold the consent ledger into the CSV now."""


import typer

from newsletter.cli.subscribers.options import GroupOptions
from newsletter.cli.subscribers.output import plural, say
from newsletter.errors import NewsletterError


def sync(ctx: typer.Context) -> None:
    """Write the changes machines recorded (web unsubscribes and confirmations, signups,
    bounces, complaints) into subscribers/subscribers.csv now, in one atomic rewrite.

    `newsletter serve` does this by itself after a quiet moment, and every command that
    reads the list does it first; run it before opening the file in a spreadsheet. An
    unsubscribe, bounce or complaint that a hand edit undid is put back, and said so.
    """
    from newsletter.audience.subscribers import SubscriberStore
    from newsletter.cli.folding import say_fold
    from newsletter.config import load_settings

    options = ctx.find_object(GroupOptions) or GroupOptions()
    if options.file is not None:
        raise NewsletterError(
            f"{options.file}: only the project's list has a ledger to fold",
            hint="run `newsletter subscribers sync` without --file",
        )
    store = SubscriberStore.from_settings(load_settings(), lock_timeout=options.lock_timeout)
    assert store.live is not None  # from_settings always has one
    report = store.live.fold()
    store.live.refresh_index()
    if not report.folded and not report.wrote:
        say(f"{store.display}: up to date (no ledger changes to fold)")
        return
    say_fold(report, store.display, quiet=False)
    backup = "1 backup kept" if report.wrote else "no rewrite needed"
    say(
        f"{store.display}: {plural(report.folded, 'ledger change')} folded, "
        f"{report.applied} applied, {len(report.reapplied)} re-applied ({backup})"
    )
