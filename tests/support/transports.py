"""Transports built for tests: they never sleep, and record each pause they would take."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from newsletter.compose.message import MessageBuilder
from newsletter.delivery.transports import Transport

T = TypeVar("T", bound=Transport)


def without_sleeping(make: Callable[..., T], builder: MessageBuilder, **options: Any) -> T:
    """``make(builder, **options)`` with a 5 s timeout unless given, whose backoff pauses
    are recorded in ``t.delays`` instead of slept."""
    delays: list[float] = []
    options.setdefault("timeout", 5.0)
    t = make(builder, sleep=delays.append, **options)
    t.delays = delays  # type: ignore[attr-defined]
    return t
