"""SendGrid's requests written in a forked child: the same requests, each reader once,
and a child that dies changes nothing but where the requests are written."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path
from typing import Any, ClassVar

import pytest

from newsletter.delivery import pipeline
from newsletter.delivery.forked import ForkedCall
from newsletter.delivery.transports.sendgrid import SendGridTransport
from newsletter.tokens import read_token
from tests.delivery.test_campaign import campaign, setup
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import SEND_SETTINGS, address

KEY = "SG.test-key"
READERS = 2500  # three requests: enough for the child


class Spy(ForkedCall[Any]):
    made: ClassVar[list[Spy]] = []
    kill_at_once = False  # the child dies before it writes anything

    def __init__(self, fn: Any) -> None:
        super().__init__(fn)
        self.answered = 0  # calls the child answered
        Spy.made.append(self)
        if self.kill_at_once:
            os.kill(self.pid, signal.SIGKILL)

    def __call__(self, arg: Any) -> Any:
        result = super().__call__(arg)
        self.answered += self.forked
        return result


def _send(home: Path, *, in_child: bool) -> list[Any]:
    """Send to READERS readers; the personalizations the API received, by address, with
    each unsubscribe token checked and replaced by its address (its expiry is the clock's)."""
    builder, store, journal = setup(home, READERS)
    with SendGridServer(KEY) as server:
        t = SendGridTransport(builder, api_key=KEY, host=server.url, concurrency=2)
        t.prepare_in_child = in_child
        c = campaign(builder, store, journal, t)
        c.plan()
        with t:
            report = c.run(run_id=1)
        assert report.sent == READERS
        counts = journal.counts("vol-2.19")
        assert (counts["sent"], counts["pending"], counts["in_flight"]) == (READERS, 0, 0)
        assert set(server.copies().values()) == {1} and len(server.copies()) == READERS
        received = [a.personalization for a in server.accepted]
    secret = SEND_SETTINGS["secret_key"]
    for p in received:
        email = p["to"][0]["email"]
        url = p["substitutions"]["%%unsubscribe_url%%"]
        assert read_token(secret, url.rsplit("/", 1)[1], "unsubscribe") == email
        p["substitutions"]["%%unsubscribe_url%%"] = email
        p["headers"]["List-Unsubscribe"] = p["headers"]["List-Unsubscribe"].replace(url, email)
    return sorted(received, key=lambda p: p["to"][0]["email"])  # requests race each other


@pytest.fixture(autouse=True)
def spy(monkeypatch: pytest.MonkeyPatch) -> None:
    Spy.made = []
    monkeypatch.setattr(pipeline, "ForkedCall", Spy)


def test_requests_written_in_the_child_are_the_ones_written_here(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = home.parent / f"{home.name}-child"
    shutil.copytree(home, other)
    here = _send(home, in_child=False)
    assert Spy.made == []
    monkeypatch.chdir(other)
    there = _send(other, in_child=True)
    assert len(Spy.made) == 1 and Spy.made[0].answered == 3  # every request, in the child
    assert not Spy.made[0].forked and Spy.made[0].pid == 0  # ended and reaped
    assert [p["to"][0]["email"] for p in there] == [address(i) for i in range(READERS)]
    assert there == here


def test_a_child_that_died_leaves_the_writing_here(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(Spy, "kill_at_once", True)
    received = _send(home, in_child=True)
    assert [p["to"][0]["email"] for p in received] == [address(i) for i in range(READERS)]
    assert len(Spy.made) == 1 and Spy.made[0].answered == 0 and not Spy.made[0].forked
