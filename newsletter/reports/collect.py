"""Feeding the event table from everything that already records events.

* the send journal: sent, refused for good at hand-off (an SMTP 5xx or a SendGrid
  4xx), refused for now (still failed after retries), uncertain;
* the SendGrid Event Webhook ledger: delivered, bounce (``blocked``: soft), deferred
  (soft), dropped, spamreport, unsubscribe, open, click, tied to the issue by the
  ``custom_args`` every message carries;
* the inbound mail records: DSNs (a 4.x.x status is soft, else hard) and
  unsubscribes by mail;
* the subscriber list: unsubscribes by link and one-click (and any other suppression
  a row records), with the time the row changed.

Each source is read again only when it changed (a mark per source in the store).
Events that name no issue are tied to the last issue sent to that reader before the
event; one with no such issue stays in the reader's history and counts for none.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Final

from newsletter.home import JOURNAL_NAME
from newsletter.reports.eventstore import Event, EventStore

if TYPE_CHECKING:
    from newsletter.audience.subscribers.store import SubscriberStore
    from newsletter.config import Settings
    from newsletter.delivery.journal import Journal

#: SendGrid's event names -> ours (``processed`` and the like are not reader events).
_WEBHOOK_KINDS: Final = {
    "delivered": "delivered",
    "deferred": "bounce_soft",
    "dropped": "bounce_hard",  # SendGrid will not deliver it: a permanent failure
    "spamreport": "complaint",
    "unsubscribe": "unsubscribe",
    "group_unsubscribe": "unsubscribe",
    "open": "open",
    "click": "click",
}
_LIST_KINDS: Final = {
    "unsubscribed": "unsubscribe",
    "complained": "complaint",
    "bounced": "bounce_hard",
}
_SOFT_STATUS: Final = re.compile(r"(?<![\d.])4\.\d{1,3}\.\d{1,3}(?![\d.])|^4\d\d\b")


def iso(moment: float | str | None) -> str:
    """Any time the sources write, as ``YYYY-MM-DDTHH:MM:SSZ`` (sortable as text)."""
    if moment is None or moment == "":
        return ""
    if isinstance(moment, float | int):
        return datetime.fromtimestamp(float(moment), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    text = moment.strip()
    try:
        parsed = datetime.fromisoformat(text[:-1] + "+00:00" if text.endswith("Z") else text)
    except ValueError:
        return text
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def collect(settings: Settings, store: EventStore) -> int:
    """Read every source that changed since last time into ``store``; new events."""
    from newsletter.audience.subscribers.store import SubscriberStore

    state = settings.state_dir
    added = collect_journal(store, state / JOURNAL_NAME)
    added += collect_webhooks(store, state)
    added += collect_mailbox(store, state / "inbound.sqlite3")
    added += collect_list(store, SubscriberStore.from_settings(settings))
    return added


def collect_journal(store: EventStore, path: Path) -> int:
    """Each issue whose last send run changed since the last look."""
    if not path.exists():
        return 0
    from newsletter.delivery.journal import Journal

    added = 0
    with Journal(path, create=False) as journal:
        runs = journal.db.execute(
            "SELECT issue, min(started_at), max(id) FROM runs GROUP BY issue"
        ).fetchall()
        for issue, started, last in runs:
            row = journal.db.execute(
                "SELECT finished_at, result FROM runs WHERE id = ?", (last,)
            ).fetchone()
            finished = row is not None and row[0] is not None
            mark = f"{last}:{row[0] if row else ''}:{row[1] if row else ''}"
            name = f"journal:{issue}"
            if finished and store.mark(name) == mark:
                continue
            audience = journal.db.execute(
                "SELECT count(*) FROM deliveries WHERE issue = ? AND state != 'skipped'",
                (issue,),
            ).fetchone()[0]
            store.note_issue(issue, iso(started), int(audience))
            added += store.add(_journal_events(journal, issue))
            store.set_mark(name, mark)
    return added


def _journal_events(journal: Journal, issue: str) -> Iterator[Event]:
    for d in journal.rows(issue, ("sent", "failed", "uncertain")):
        at = iso(d.updated_at)
        if d.state == "sent":
            yield Event(issue, d.key, "sent", at, "journal", d.provider_id)
        elif d.state == "uncertain":
            yield Event(issue, d.key, "uncertain", at, "journal", d.reason)
        else:
            kind = "failed_permanent" if d.permanent else "failed_temporary"
            yield Event(issue, d.key, kind, at, "journal", d.reason)


def collect_webhooks(store: EventStore, state_dir: Path) -> int:
    """SendGrid Event Webhook events recorded since the last look."""
    from newsletter.audience.events import LEDGER_NAME, EventLedger

    if not (state_dir / LEDGER_NAME).exists():
        return 0
    ledger = EventLedger.in_state_dir(state_dir)
    added = 0
    last = int(store.mark("webhooks") or 0)
    while rows := ledger.rows_after(last):
        events: list[Event] = []
        for _rowid, kind, email, issue, occurred, received, detail in rows:
            ours = _WEBHOOK_KINDS.get(str(kind))
            if kind == "bounce":
                ours = "bounce_soft" if str(detail).startswith("blocked") else "bounce_hard"
            if ours is None or not email:
                continue
            reader = str(email).strip().lower()
            at = iso(occurred if occurred is not None else received)
            tied = str(issue or "") or store.last_sent_before(reader, at) or ""
            events.append(Event(tied, reader, ours, at, "sendgrid", str(detail or "")))
        added += store.add(events)
        last = int(rows[-1][0])
        store.set_mark("webhooks", str(last))
    return added


def collect_mailbox(store: EventStore, path: Path) -> int:
    """Bounces and unsubscribes handled from the contact mailbox since the last look."""
    if not path.exists():
        return 0
    from newsletter.audience.inbound.records import Records

    last = int(store.mark("mailbox") or 0)
    events: list[Event] = []
    new_last = last
    with Records(path) as records:
        for record in records.items():
            if record.id <= last:
                continue
            if not record.finished:
                break  # read it, and what follows, once it is handled
            new_last = record.id
            kind = {
                "bounced": "bounce_hard",
                "soft bounce": "bounce_soft",  # a delay counted towards the soft-bounce score
                "unsubscribed": "unsubscribe",
                "complained": "complaint",
            }.get(record.outcome)
            if kind is None:
                continue
            if kind == "bounce_hard" and _SOFT_STATUS.search(record.reason):
                kind = "bounce_soft"
            at = iso(record.received_at)
            for address in record.addresses:
                reader = address.strip().lower()
                tied = store.last_sent_before(reader, at) or ""
                detail = f"mailbox: {record.reason or record.outcome}"
                events.append(Event(tied, reader, kind, at, "mailbox", detail))
    added = store.add(events)
    store.set_mark("mailbox", str(new_last))
    return added


def collect_list(store: EventStore, subscribers: SubscriberStore) -> int:
    """Suppressions the subscriber list records (web and one-click unsubscribes among
    them), read again whenever the file changed."""
    path = subscribers.path
    if not path.exists():
        return 0
    info = path.stat()
    mark = f"{info.st_mtime_ns}:{info.st_size}"
    if store.mark("list") == mark:
        return 0
    events: list[Event] = []
    for sub in subscribers.iter_valid():
        kind = _LIST_KINDS.get(sub.status)
        if kind is None or not sub.updated_at:
            continue
        at = iso(sub.updated_at)
        tied = store.last_sent_before(sub.key, at)
        if tied is None:
            continue  # left before any issue reached them: no issue caused it
        events.append(Event(tied, sub.key, kind, at, "list", sub.note))
    added = store.add(events)
    store.set_mark("list", mark)
    return added
