"""The collector's settings inside and after the send's bulk loops."""

from __future__ import annotations

import gc

from newsletter.delivery.collector import YOUNG, fewer_collections


def test_fewer_collections_inside_and_everything_as_it_was_after() -> None:
    before = gc.get_threshold()
    with fewer_collections():
        assert gc.get_threshold()[0] == YOUNG
        assert gc.get_freeze_count() > 0  # what existed is set aside, not scanned
        with fewer_collections():  # a re-sync inside the send loop
            assert gc.get_threshold()[0] == YOUNG
        assert gc.get_threshold()[0] == YOUNG and gc.get_freeze_count() > 0
        cycle: list[object] = []
        cycle.append(cycle)
        del cycle
        assert gc.collect() >= 1  # cycles made meanwhile are still found
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == 0
