"""Python's cyclic garbage collector, kept out of the send's bulk loops.

Streaming 100,000 rows into the journal and writing 100 requests of 1,000 readers
allocate millions of short-lived tuples and strings, none of them in a reference cycle
(reference counting frees them all). With the default thresholds the collector still
runs every 700 allocations and, every few hundred runs, walks every object the process
holds (the imported libraries, the rendered issue): about a tenth of the send's CPU
time, measured with ``perf``. :func:`fewer_collections` sets the objects that exist at
its start aside (:func:`gc.freeze`) and lets the young generation grow large before a
collection; both are undone on leaving, so nothing outside the loop changes.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator
from contextlib import contextmanager

#: allocations (less deallocations) between two young-generation collections
YOUNG = 50_000


_depth = 0  # blocks entered and not left (a re-sync inside the send loop nests one)
_lock = threading.Lock()


@contextmanager
def fewer_collections() -> Iterator[None]:
    """Collect seldom inside the block; cycles made in it are still collected."""
    global _depth
    with _lock:
        _depth += 1
        outermost = _depth == 1
        if outermost:
            thresholds = gc.get_threshold()
            gc.freeze()
            gc.set_threshold(YOUNG, thresholds[1], thresholds[2])
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if outermost:
                gc.set_threshold(*thresholds)
                gc.unfreeze()
