"""What a real send sets up around its run: the archive page published first, SendGrid's
sandbox with a throw-away journal, and the list's statuses the recipient gate asks for."""


from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsletter.console import console, err_console
from newsletter.errors import NewsletterError, UsageError

if TYPE_CHECKING:
    from newsletter.config import Settings

def sandboxed(transport: Any) -> Any:
    """The transport in SendGrid's sandbox mode; any other transport is refused."""
    if transport.name != "sendgrid":
        raise UsageError(
            f"--sandbox is SendGrid's sandbox mode; the transport is {transport.name}",
            hint="set NEWSLETTER_TRANSPORT=sendgrid, or use --dry-run to rehearse any transport",
        )
    transport.sandbox()
    return transport


def rehearsal_journal(settings: "Settings") -> Path:
    """A fresh journal for a sandbox run, so the real one records nothing of it."""
    import tempfile

    from newsletter.home import JOURNAL_NAME

    folder = Path(tempfile.mkdtemp(prefix="sandbox-", dir=settings.state_dir))
    return folder / JOURNAL_NAME


def campaign_statuses(settings: "Settings") -> Callable[[set[str]], dict[str, str]]:
    """Statuses of some addresses in the list now, in one streaming pass."""

    def statuses(keys: set[str]) -> dict[str, str]:
        from newsletter.audience.subscribers import SubscriberStore

        found: dict[str, str] = {}
        for row in SubscriberStore.from_settings(settings).iter_rows():
            sub = row.subscriber
            if sub is not None and sub.key in keys:
                found.setdefault(sub.key, sub.status)
        return found

    return statuses


def publish_page(settings: "Settings", slug: str, sent: set[str]) -> None:
    """Write or refresh the archive before the first message leaves, so the email's
    "view in browser" link works from the start. A failure is reported, not fatal: the
    readers' copies matter more, and `newsletter archive` can be run again."""
    from newsletter.archive.site import build_archive

    try:
        result = build_archive(settings, sent=sent | {slug}, skip_invalid=True)
    except NewsletterError as exc:
        err_console.print(
            f"warning: archive not updated: {exc}; run `newsletter archive` after the send",
            style="yellow",
            markup=False,
        )
        return
    page = result.out_dir / f"{slug}.html"
    console.print(f"archive page: {page}", markup=False)
