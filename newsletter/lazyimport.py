"""Importing a library without the heavy modules it imports for features a run never uses.

premailer imports ``requests`` (urllib3, two charset detectors, http.cookiejar: about
45 ms) and cssutils ``urllib.request`` (http.client, ssl: about 8 ms) and ``encutils``
only to fetch remote stylesheets, which ``allow_network=False`` never does;
pydantic-settings imports ``asyncio`` (with ``ssl`` and ``concurrent.futures``: about
15 ms) only to run an async command of its own CLI, which the project does not use. While
such a library is imported, :func:`deferring` puts a stand-in in ``sys.modules`` for
each named module: an empty module that imports the real one at its first attribute
access, so a caller that does reach the module gets the real one and nothing changes.
The stand-ins leave ``sys.modules`` when the block ends, so every later import gets
the real module. tests/cli/test_startup.py checks both uses.
"""

from __future__ import annotations

import importlib
import sys
import threading
import types
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


def _stand_in(name: str) -> types.ModuleType:
    module = types.ModuleType(name, f"stands in for {name} until first used")
    # two threads' first uses must not both take the stand-in out: the second would
    # take out the real module the first just imported, and import it a second time
    lock = threading.Lock()

    def real(attribute: str) -> Any:
        with lock:
            if sys.modules.get(name) is module:
                del sys.modules[name]
            target = importlib.import_module(name)
        return getattr(target, attribute)

    module.__getattr__ = real  # type: ignore[method-assign]  # PEP 562
    return module


@contextmanager
def deferring(*names: str) -> Iterator[None]:
    """Within the block, importing one of ``names`` (not imported yet) gives a stand-in.

    A submodule's stand-in (``urllib.request``) is also its package's attribute, where
    ``import urllib.request`` code looks it up when it runs; it stays there after the
    block, until the real submodule's import replaces it.
    """
    placed = {name: _stand_in(name) for name in names if name not in sys.modules}
    for name, module in placed.items():
        package, _, child = name.rpartition(".")
        if package:
            parent = importlib.import_module(package)
            if not hasattr(parent, child):
                setattr(parent, child, module)
    sys.modules.update(placed)
    try:
        yield
    finally:
        for name, module in placed.items():
            if sys.modules.get(name) is module:
                del sys.modules[name]
