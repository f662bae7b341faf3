"""A SendGrid request that waits (a 429's pause, a 5xx's backoff) asks the consent ledger
again before it goes out: a reader who left meanwhile gets no copy and is skipped.

Found by a review of the send loops (failed before the fix: the request was posted again
as written, up to SENDGRID_RATE_LIMIT_WAIT = 600 s after its ledger check).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.audience.events import apply_suppressions
from newsletter.audience.subscribers import SubscriberStore
from newsletter.delivery.transports.sendgrid import SendGridTransport
from tests.delivery.test_campaign import campaign, setup
from tests.support.sendgrid_server import SendGridServer
from tests.support.sendkit import address, make_settings


@pytest.mark.parametrize("answer", ["429", "500"])
def test_a_reader_who_leaves_while_a_request_waits_gets_no_copy(home: Path, answer: str) -> None:
    builder, store, journal = setup(home, 5)
    web = SubscriberStore.from_settings(make_settings(home))
    waited: list[float] = []

    def sleep(delay: float) -> None:  # the pause: the reader unsubscribes meanwhile
        waited.append(delay)
        apply_suppressions(web, {address(2): ("unsubscribed", "one-click")})

    with SendGridServer("SG.k") as srv:
        srv.script = [answer]
        t = SendGridTransport(builder, api_key="SG.k", host=srv.url, sleep=sleep)
        c = campaign(builder, store, journal, t)
        c.plan()
        with t:
            report = c.run(run_id=1)
        assert waited, "the request did wait"
        assert srv.copies().get(address(2), 0) == 0
        assert all(srv.copies()[address(n)] == 1 for n in (0, 1, 3, 4))
    assert report.sent == 4 and report.skipped == 1
    states = {row.email: row.state for row in journal.rows("vol-2.19", ("skipped", "sent"))}
    assert states[address(2)] == "skipped"
