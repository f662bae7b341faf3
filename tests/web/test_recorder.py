"""The web's unsubscribes: recorded by one thread, in batches, each durable when answered."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers import SubscriberStore
from newsletter.errors import NewsletterError
from newsletter.web.recorder import UnsubscribeRecorder

LISTED = ["alice@example.org", "bob.brown@example.org", "hanako.yamada@example.com"]
T = TypeVar("T")


def run(main: Callable[[], Coroutine[Any, Any, T]]) -> T:
    """``asyncio.run(main())`` on a thread of its own, as a server's loop is (and so that
    no loop another test left in this thread gets in the way)."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(lambda: asyncio.run(main())).result()


def test_unsubscribes_that_wait_together_share_one_transaction(store: SubscriberStore) -> None:
    """Before: one worker thread and one commit per unsubscribe; now those that arrive
    while a batch is written are recorded together (and each is durable when answered)."""
    calls: list[list[str]] = []
    gate = threading.Event()

    def slow_first(target: SubscriberStore, changes: Any) -> set[str]:
        calls.append(list(changes))
        if len(calls) == 1:
            gate.wait(5)  # the first batch is slow: the others queue behind it
        return apply_suppressions(target, changes)

    recorder = UnsubscribeRecorder(store, record=slow_first)
    emails = [*LISTED, "nobody@example.net"] + [f"stranger{i}@example.net" for i in range(8)]

    async def burst() -> list[bool]:
        first = asyncio.ensure_future(recorder.unsubscribe(emails[0], "one-click"))
        await asyncio.sleep(0.1)
        rest = [asyncio.ensure_future(recorder.unsubscribe(e, "one-click")) for e in emails[1:]]
        await asyncio.sleep(0.1)
        gate.set()
        return list(await asyncio.gather(first, *rest))

    try:
        found = run(burst)
    finally:
        recorder.stop()
    assert found == [True, True, True] + [False] * 9
    assert calls == [[emails[0]], emails[1:]]
    assert recorder.batches == 2
    for email in LISTED:
        state = store.status(email)
        assert state is not None and state.status == "unsubscribed"


def test_a_failing_address_does_not_fail_the_others_in_its_batch(store: SubscriberStore) -> None:
    gate = threading.Event()

    def picky(target: SubscriberStore, changes: Any) -> set[str]:
        if not gate.is_set():
            gate.wait(5)
        if "bob.brown@example.org" in changes:
            raise NewsletterError("the ledger refused bob")
        return apply_suppressions(target, changes)

    recorder = UnsubscribeRecorder(store, record=picky)

    async def burst() -> list[Any]:
        waiting = [asyncio.ensure_future(recorder.unsubscribe(e, "web")) for e in LISTED]
        await asyncio.sleep(0.1)
        gate.set()
        return list(await asyncio.gather(*waiting, return_exceptions=True))

    try:
        results = run(burst)
    finally:
        recorder.stop()
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], NewsletterError)
    bob = store.status("bob.brown@example.org")
    assert bob is not None and bob.status == "active"


def test_the_thread_ends_when_idle_and_the_next_unsubscribe_starts_another(
    store: SubscriberStore,
) -> None:
    recorder = UnsubscribeRecorder(store, idle=0.1)
    assert run(lambda: recorder.unsubscribe("alice@example.org", "web")) is True
    deadline = time.monotonic() + 5
    while recorder._thread is not None and time.monotonic() < deadline:
        time.sleep(0.02)
    assert recorder._thread is None
    assert run(lambda: recorder.unsubscribe("bob.brown@example.org", "web")) is True
    recorder.stop()
    assert recorder._thread is None


def test_a_replayed_address_in_one_batch_is_one_change(store: SubscriberStore) -> None:
    recorder = UnsubscribeRecorder(store)
    email = LISTED[0]

    async def twice() -> list[bool]:
        return list(
            await asyncio.gather(
                recorder.unsubscribe(email, "web"), recorder.unsubscribe(email.upper(), "web")
            )
        )

    try:
        assert run(twice) == [True, True]
    finally:
        recorder.stop()
    live = store.live
    assert live is not None
    assert len(live.ledger.changes_after(0, email)) == 1


def test_started_by_serve_the_thread_stays_ready_until_stopped(store: SubscriberStore) -> None:
    """Before: the thread and its connections were opened by the first unsubscribe of a
    burst (its first batches took about 100 ms); serve's start-up opens them now."""
    recorder = UnsubscribeRecorder(store, idle=0.05)
    recorder.start()
    time.sleep(0.3)  # longer than the idle time a lazily started thread would keep
    thread = recorder._thread
    assert thread is not None and thread.is_alive()
    assert run(lambda: recorder.unsubscribe("alice@example.org", "web")) is True
    recorder.stop()
    assert recorder._thread is None and not thread.is_alive()


def test_recorded_inside_the_transaction_only_a_repeat_still_writes_nothing(
    store: SubscriberStore,
) -> None:
    """The web's unsubscribes skip the look before the transaction (replays are answered
    before they get here); one that gets here anyway is decided inside it: no change."""
    from newsletter.web.recorder import record_unsubscribes

    change = {"alice@example.org": ("unsubscribed", "one-click")}
    assert record_unsubscribes(store, change) == {"alice@example.org"}
    assert record_unsubscribes(store, change) == {"alice@example.org"}
    assert record_unsubscribes(store, {"nobody@example.net": ("unsubscribed", "x")}) == set()
    live = store.live
    assert live is not None
    assert [c.op for c in live.ledger.changes_after(0, "alice@example.org")] == ["suppress"]
