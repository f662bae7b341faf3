"""A stand-in's first use from several threads at once: each gets the one real module."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator

import pytest

from newsletter.lazyimport import deferring


@pytest.fixture
def eager_switches() -> Iterator[None]:
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # threads interleave inside the stand-in's first use
    try:
        yield
    finally:
        sys.setswitchinterval(interval)


def test_threads_first_using_a_stand_in_together_share_one_real_module(
    eager_switches: None,
) -> None:
    errors: list[BaseException] = []
    seen: set[int] = set()
    for _ in range(3000):  # the race hit 7 to 9 rounds in 3,000 before the lock
        sys.modules.pop("colorsys", None)
        with deferring("colorsys"):  # first used while still standing in (an import's window)
            import colorsys as stand_in

            barrier = threading.Barrier(4)

            def use(stand_in: object = stand_in, barrier: threading.Barrier = barrier) -> None:
                barrier.wait()
                try:
                    seen.add(id(stand_in.rgb_to_hsv))  # type: ignore[attr-defined]
                except BaseException as exc:  # any error is the finding
                    errors.append(exc)

            threads = [threading.Thread(target=use) for _ in range(4)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
        assert len(seen) == 1, "the module was imported twice"
        seen.clear()
    assert not errors, errors[:3]
