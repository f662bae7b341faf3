"""SendGrid's delivered and deferred events move the soft-bounce score (issue 16 point 3):
a delivery resets a reader's count, deferrals on N distinct issues make them bounced."""

from __future__ import annotations

from pathlib import Path

from newsletter.audience.bounce_score import SoftBounces
from newsletter.audience.events import EventAction, EventLedger, apply_events
from newsletter.audience.subscribers import SubscriberStore
from tests.support.sendkit import address, make_settings, write_subscribers

DAY = 86400.0


def event(n: int, kind: str, reader: str, issue: str, at: float) -> EventAction:
    return EventAction(f"ev{n}", kind, reader, None, kind, issue=issue, occurred_at=at)


def status_of(store: SubscriberStore, email: str) -> str:
    sub = store.get(email)
    assert sub is not None
    return sub.status


def test_deferrals_on_three_issues_bounce_a_reader_and_a_delivery_resets_the_count(
    home: Path,
) -> None:
    settings = make_settings(home)
    write_subscribers(settings.subscribers_file, 3)
    store = SubscriberStore.from_settings(settings)
    ledger = EventLedger(tmp := home / "events.sqlite3")
    assert not tmp.exists()
    soft = SoftBounces(home / "inbound.sqlite3", limit=3, days=60)
    a, b = address(0), address(1)
    t = 1_700_000_000.0
    batch = [
        event(1, "deferred", a, "vol-2.17", t),
        event(2, "deferred", a, "vol-2.17", t + 60),  # the same issue again: counts once
        event(3, "deferred", a, "vol-2.18", t + 14 * DAY),
        event(4, "deferred", b, "vol-2.17", t),
        event(5, "deferred", b, "vol-2.18", t + 14 * DAY),
        event(6, "delivered", b, "vol-2.19", t + 28 * DAY),  # b's mailbox works again
    ]
    assert apply_events(store, ledger, batch, soft=soft) == 6
    assert status_of(store, a) == "active"  # 2 of 3
    later = [
        event(7, "deferred", a, "vol-2.19", t + 28 * DAY),
        event(8, "deferred", b, "vol-2.20", t + 42 * DAY),
    ]
    assert apply_events(store, ledger, later, soft=soft) == 2
    assert status_of(store, a) == "bounced"  # the third issue
    assert status_of(store, b) == "active"  # counted from its delivery: 1 of 3
    # a retried batch is not counted twice
    assert apply_events(store, ledger, later, soft=soft) == 0
    assert status_of(store, address(2)) == "active"
