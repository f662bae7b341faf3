"""Folding the consent ledger into the subscriber CSV around every command that reads it.

Machines (``serve``, the mailbox, webhooks, the send loop) record their changes in the
ledger; a command that reads the list folds them into the file first, so the admin's
file and what the command reads agree, and again at the end, so what it recorded is in
the file when it returns. A fold that re-applies a change a hand edit undid says so.
"""


from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import typer

from newsletter.console import err_console
from newsletter.errors import LockTimeoutError, NewsletterError

if TYPE_CHECKING:
    from newsletter.audience.subscribers import SubscriberStore
    from newsletter.audience.subscribers.foldreport import FoldReport


def say_fold(report: "FoldReport", display: str, *, quiet: bool = True) -> None:
    """What a fold did, on standard error (nothing for a quiet fold that changed nothing)."""
    if quiet and not (report.reapplied or report.conflicts):
        return
    err_console.print(report.summary(display), markup=False, emoji=False)
    for line in report.reapplied:
        err_console.print(f"  re-applied: {line}", markup=False, emoji=False, style="yellow")
    for line in report.conflicts:
        err_console.print(f"  kept as edited: {line}", markup=False, emoji=False)


def fold_now(store: "SubscriberStore", *, strict: bool) -> "FoldReport | None":
    """Fold; a busy list is an error only when ``strict`` (else the ledger is read directly)."""
    try:
        report = store.fold()
    except LockTimeoutError:
        if strict:
            raise
        err_console.print(
            f"note: {store.display} is busy; its newest changes are read from the ledger "
            "and written into the file by the next fold",
            markup=False,
            emoji=False,
        )
        return None
    if report is not None:
        say_fold(report, store.display)
    return report


@contextmanager
def folded(store: "SubscriberStore", *, strict: bool = False) -> Iterator["SubscriberStore"]:
    """Fold before the block and after it (the second fold never hides the block's error)."""
    fold_now(store, strict=strict)
    try:
        yield store
    finally:
        try:
            fold_now(store, strict=False)
        except NewsletterError as exc:
            err_console.print(f"warning: folding the ledger failed: {exc.message}", markup=False)


def fold_around(ctx: typer.Context, store: "SubscriberStore", *, strict: bool = False) -> None:
    """:func:`folded` for a Typer command: now, and when the command's context closes."""
    fold_now(store, strict=strict)

    def at_end() -> None:
        try:
            fold_now(store, strict=False)
        except NewsletterError as exc:
            err_console.print(f"warning: folding the ledger failed: {exc.message}", markup=False)

    ctx.call_on_close(at_end)
