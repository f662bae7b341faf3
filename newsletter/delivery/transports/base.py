"""The transport interface: hand a batch of recipients to a delivery channel.

A transport is opened once per send, given batches of recipients, and closed. For each
recipient it returns one :class:`Outcome`; it never raises for a single recipient's
problem. It raises :class:`~newsletter.errors.TransportError` (or
:class:`~newsletter.errors.TransportAuthError`) only when it cannot go on at all, and
then only *after* the batch's outcomes are known: the condition is kept in
:attr:`Transport.fatal` so the send loop can journal the batch first, then stop.

Outcome statuses::

    sent           handed off; ``provider_id`` names it (SMTP queue id, X-Message-Id, file)
    failed         refused; ``reason`` is the server's text; ``permanent`` means do not retry,
                   ``bounce`` means the address itself was refused (mark the subscriber bounced)
    retry          refused for now (4xx after retries, 429 past the cap): surely not delivered
    uncertain      the request left but no answer came back: it may have been delivered
    not_attempted  never left this machine (stopped, or the transport broke first)
"""

from __future__ import annotations

import random
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Self

from newsletter.errors import HeaderError, TransportError

if TYPE_CHECKING:
    from newsletter.compose.message import MessageBuilder, Recipient

    #: the recipient and message builder types every transport works with
    RecipientLike = Recipient
    BuilderLike = MessageBuilder


def __getattr__(name: str) -> Any:
    # The aliases import the composer only when asked for: reading the journal
    # (`newsletter status`) needs the outcomes, not the message builder.
    if name in ("RecipientLike", "BuilderLike"):
        from newsletter.compose.message import MessageBuilder, Recipient

        return Recipient if name == "RecipientLike" else MessageBuilder
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


#: the reason of an outcome for a reader the consent ledger held when a request was
#: about to go out again after a wait: not sent, and the send loop marks them skipped
LEFT_WHILE_WAITING = "left the list while the request waited to be sent again; not sent"


class Status(StrEnum):
    SENT = "sent"
    FAILED = "failed"
    RETRY = "retry"
    UNCERTAIN = "uncertain"
    NOT_ATTEMPTED = "not_attempted"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What happened to one recipient of a batch."""

    email: str
    status: Status
    provider_id: str = ""
    reason: str = ""
    permanent: bool = False
    bounce: bool = False

    @classmethod
    def sent(cls, email: str, provider_id: str = "") -> Outcome:
        return cls(email, Status.SENT, provider_id=provider_id)

    @classmethod
    def failed(cls, email: str, reason: str, *, permanent: bool, bounce: bool = False) -> Outcome:
        return cls(email, Status.FAILED, reason=reason, permanent=permanent, bounce=bounce)

    @classmethod
    def retry(cls, email: str, reason: str) -> Outcome:
        return cls(email, Status.RETRY, reason=reason)

    @classmethod
    def uncertain(cls, email: str, reason: str) -> Outcome:
        return cls(email, Status.UNCERTAIN, reason=reason)

    @classmethod
    def not_attempted(cls, email: str, reason: str = "") -> Outcome:
        return cls(email, Status.NOT_ATTEMPTED, reason=reason)


Sleep = Callable[[float], None]


def message_or_failure(builder: BuilderLike, r: RecipientLike) -> bytes | Outcome:
    """The recipient's message, or a permanent failure saying why it cannot be built.

    A subscriber whose name or address cannot go into a header (a line break in the
    name, a non-ASCII local part) fails alone, with the reason, instead of stopping
    the send for everyone.
    """
    try:
        return builder.to_bytes(r)
    except HeaderError as exc:
        return Outcome.failed(r.email, f"cannot build the message: {exc.message}", permanent=True)


class Transport(ABC):
    """Base of every transport. Subclasses set :attr:`name` and :attr:`batch_size`."""

    name: str = "transport"
    #: how many recipients :meth:`send` takes at once
    batch_size: int = 1
    #: how many :meth:`send` calls the send loop may run at once, each on its own thread
    #: (the transport makes them safe to overlap); what is in doubt after a kill -9 is
    #: at most ``concurrency`` batches
    concurrency: int = 1
    #: seconds :meth:`pause` waits after a first failed attempt, and at most
    backoff: float = 1.0
    max_backoff: float = 30.0
    #: replaces the wait in :meth:`pause` when set (tests record the delays instead)
    _sleep: Sleep | None = None
    #: the send loop's "who of these left the list?" (the consent ledger), asked again
    #: before a hand-off goes out after a wait (a 4xx's, a 429's): None asks nobody
    recheck: Callable[[list[str]], set[str]] | None = None

    def __init__(self) -> None:
        self.fatal: TransportError | None = None
        #: set from another thread (Ctrl-C) to stop retrying and waiting
        self.stop_event = threading.Event()

    @property
    def description(self) -> str:
        """Where messages go, for the confirmation prompt (never a secret)."""
        return self.name

    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect, authenticate, create folders: fail early, before anything is sent."""

    @abstractmethod
    def send(self, batch: Sequence[RecipientLike]) -> list[Outcome]:
        """Hand ``batch`` off; return exactly one outcome per recipient, in order."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; safe to call twice."""

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True when woken early because the send is stopping."""
        return self.stop_event.wait(max(0.0, seconds))

    def pause(self, attempt: int, delay: float | None = None) -> bool:
        """Wait before trying again after attempt ``attempt``; True when the send is stopping.

        ``delay`` seconds if the server named them, else capped exponential backoff with
        jitter: :attr:`backoff` doubled for each attempt after the first, at most
        :attr:`max_backoff`, then cut by a random factor from 1/2 to 1.
        """
        if delay is None:
            delay = min(self.max_backoff, self.backoff * (2 ** (attempt - 1)))
            delay *= 0.5 + random.random() / 2
        if self._sleep is not None:
            self._sleep(delay)
            return self.stop_event.is_set()
        return self.wait(delay)

    def __enter__(self) -> Self:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MockTransport(Transport):
    """In-memory transport for tests: records every message; ``handler`` picks outcomes."""

    name = "mock"

    def __init__(
        self,
        builder: BuilderLike,
        handler: Callable[[RecipientLike], Outcome] | None = None,
        *,
        batch_size: int = 10,
    ) -> None:
        super().__init__()
        self.builder = builder
        self.handler = handler
        self.batch_size = batch_size
        self.messages: list[tuple[str, bytes]] = []
        self.batches = 0

    def send(self, batch: Sequence[RecipientLike]) -> list[Outcome]:
        self.batches += 1
        outcomes = []
        for r in batch:
            data = message_or_failure(self.builder, r)
            if isinstance(data, Outcome):
                outcomes.append(data)
                continue
            outcome = self.handler(r) if self.handler else Outcome.sent(r.email, f"mock-{r.email}")
            if outcome.status is Status.SENT:
                self.messages.append((r.email, data))
            outcomes.append(outcome)
        return outcomes
