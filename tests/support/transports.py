"""Transports built for tests: they never sleep, and record each pause they would take;
a mock that writes its requests ahead (the SendGrid send loop's kind)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.delivery.transports import MockTransport, Outcome, Transport

T = TypeVar("T", bound=Transport)


def without_sleeping(make: Callable[..., T], builder: MessageBuilder, **options: Any) -> T:
    """``make(builder, **options)`` with a 5 s timeout unless given, whose backoff pauses
    are recorded in ``t.delays`` instead of slept."""
    delays: list[float] = []
    options.setdefault("timeout", 5.0)
    t = make(builder, sleep=delays.append, **options)
    t.delays = delays  # type: ignore[attr-defined]
    return t


@dataclass
class Written:
    """A request written ahead by :class:`PreparingMockTransport`."""

    emails: list[str]
    names: list[str]
    thread: str = field(default_factory=lambda: threading.current_thread().name)

    def __len__(self) -> int:
        return len(self.emails)

    def without(self, drop: set[int]) -> Written:
        keep = [i for i in range(len(self.emails)) if i not in drop]
        return Written([self.emails[i] for i in keep], [self.names[i] for i in keep])


class PreparingMockTransport(MockTransport):
    """A :class:`MockTransport` that writes its requests ahead, as SendGrid's does, so the
    send loop of :mod:`newsletter.delivery.pipeline` drives it; ``concurrency`` at once."""

    def __init__(self, *args: Any, concurrency: int = 1, **kw: Any) -> None:
        super().__init__(*args, **kw)
        self.concurrency = concurrency
        self.written: list[Written] = []

    def prepare(self, rows: Sequence[tuple[str, str]]) -> Written:
        written = Written([e for e, _ in rows], [n for _, n in rows])
        self.written.append(written)
        return written

    def send_prepared(self, prepared: Written) -> list[Outcome]:
        rows = zip(prepared.emails, prepared.names, strict=True)
        return self.send([Recipient(e, n) for e, n in rows])
