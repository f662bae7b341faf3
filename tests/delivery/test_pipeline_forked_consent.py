"""The consent and re-sync guarantees with SendGrid's requests written in the
forked child (the existing safety tests use lists too small for the child)."""
from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers import SubscriberStore
from newsletter.delivery import pipeline
from newsletter.delivery.forked import ForkedCall
from newsletter.delivery.transports.sendgrid import SendGridTransport
from tests.delivery.test_campaign import campaign, setup
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import address, make_settings

KEY = "SG.k"
N = 2000


class Spy(ForkedCall[Any]):
    made: ClassVar[list[Spy]] = []

    def __init__(self, fn: Any) -> None:
        super().__init__(fn)
        self.written: list[str] = []
        self.by_child = 0
        Spy.made.append(self)

    def __call__(self, arg: Any) -> Any:
        out = super().__call__(arg)
        self.by_child += self.forked
        self.written += [e for e, _ in arg]
        return out


@pytest.fixture(autouse=True)
def spy(monkeypatch: pytest.MonkeyPatch) -> None:
    Spy.made = []
    monkeypatch.setattr(pipeline, "ForkedCall", Spy)


def _states(journal: Any) -> dict[str, str]:
    return {r.email: r.state for r in journal.rows("vol-2.19", ("in_flight", "sent", "uncertain"))}


@pytest.mark.parametrize("concurrency", [1, 2, 4])
def test_leavers_mid_send_get_no_copy_with_the_forked_writer(home: Path, concurrency: int) -> None:
    builder, store, journal = setup(home, N)
    web = SubscriberStore.from_settings(make_settings(home))
    leavers: list[str] = []
    at: dict[str, Any] = {}

    def progress(_o: Any) -> None:
        if not at:
            claimed = set(_states(journal))
            ahead = sorted(set(Spy.made[0].written) - claimed)
            if not ahead and concurrency > 1 and len(claimed) < N // 2:
                return  # the child has not written ahead yet: at the next answer
            at["claimed"], at["written"] = claimed, set(Spy.made[0].written)
            leavers.extend(ahead[::7] + [address(i) for i in range(1500, N, 37)])
            apply_suppressions(web, {e: ("unsubscribed", "one-click") for e in leavers})

    with SendGridServer(KEY, latency=0.05) as srv:
        srv.keep_bodies = False
        t = SendGridTransport(builder, api_key=KEY, host=srv.url, batch_size=100,
                              concurrency=concurrency)
        c = campaign(builder, store, journal, t)
        c.plan()
        with t:
            report = c.run(run_id=1, progress=progress)
        copies = srv.copies()
    assert Spy.made and Spy.made[0].by_child > 0
    written_not_claimed = (at["written"] - at["claimed"]) & set(leavers)
    assert written_not_claimed or concurrency == 1, "leavers in requests the child wrote"
    for e in leavers:
        assert copies.get(e, 0) == (1 if e in at["claimed"] else 0), e
    for i in range(N):
        e = address(i)
        if e not in leavers:
            assert copies[e] == 1, e
    assert max(copies.values()) == 1
    assert report.skipped == len(set(leavers) - at["claimed"])


def test_a_file_edit_mid_send_with_the_forked_writer(home: Path) -> None:
    builder, store, journal = setup(home, N)
    at: dict[str, Any] = {}
    gone: list[str] = []

    def progress(_o: Any) -> None:
        if not at:
            claimed = set(_states(journal))
            ahead = sorted(set(Spy.made[0].written) - claimed)
            if not ahead and len(claimed) < N // 2:
                return  # the child has not written ahead yet: at the next answer
            at["claimed"], at["written"] = claimed, set(Spy.made[0].written)
            gone.extend([*ahead[::50], address(1999)])
            other = SubscriberStore(store.path)  # an admin's edit, no ledger
            for e in gone:
                other.set_status(e, "unsubscribed", note="asked")
            other.add("late@example.net", name="Late")

    with SendGridServer(KEY, latency=0.05) as srv:
        srv.keep_bodies = False
        t = SendGridTransport(builder, api_key=KEY, host=srv.url, batch_size=100, concurrency=2)
        c = campaign(builder, store, journal, t)
        c.plan()
        with t:
            c.run(run_id=1, progress=progress)
        copies = srv.copies()
    assert Spy.made[0].by_child > 0
    assert set(gone) & at["written"] - at["claimed"], "an edited reader was written ahead"
    for e in gone:
        assert copies.get(e, 0) == (1 if e in at["claimed"] else 0), e
    assert copies["late@example.net"] == 1
    assert max(copies.values()) == 1
    assert sum(copies.values()) == N + 1 - len(set(gone) - at["claimed"])


@pytest.mark.parametrize("answer", ["429", "500"])
def test_a_leaver_during_a_wait_with_the_forked_writer(home: Path, answer: str) -> None:
    builder, store, journal = setup(home, N)
    web = SubscriberStore.from_settings(make_settings(home))
    waited: list[float] = []

    def sleep(delay: float) -> None:
        waited.append(delay)
        apply_suppressions(web, {address(250): ("unsubscribed", "one-click")})

    with SendGridServer(KEY) as srv:
        srv.keep_bodies = False
        srv.script = ["", "", answer]
        t = SendGridTransport(builder, api_key=KEY, host=srv.url, batch_size=100,
                              concurrency=1, sleep=sleep)
        c = campaign(builder, store, journal, t)
        c.plan()
        with t:
            report = c.run(run_id=1)
        copies = srv.copies()
    assert waited and Spy.made[0].by_child > 0
    assert copies.get(address(250), 0) == 0
    assert max(copies.values()) == 1 and len(copies) == N - 1
    assert report.skipped == 1
