"""What a send will do (:class:`Plan`, for the confirmation prompt) and what a run did
(:class:`Report`), and what the send loop needs of the subscriber store."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from newsletter.delivery.transports.base import Outcome, Status
from newsletter.errors import NewsletterError, Problem


class SubscriberLike(Protocol):
    @property
    def email(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def key(self) -> str: ...


class StoreLike(Protocol):
    """What the send loop needs of :class:`newsletter.audience.subscribers.SubscriberStore`;
    ``held(keys)`` (who left the list) and ``suppress(...)`` (bounces) are used if offered."""

    def iter_active(self) -> Iterator[SubscriberLike]: ...
    def set_statuses(self, changes: Mapping[str, tuple[str, str | None]]) -> set[str]: ...



@dataclass(slots=True)
class Plan:
    """What a send would do, for the confirmation prompt."""

    issue: str
    new: int  # pending now: will be handed off
    sent: int  # already sent by an earlier run
    uncertain: int  # uncertain, not resent unless asked
    failed: int  # failed permanently, never retried
    skipped: int  # no longer active
    recovered: int  # left in flight by a dead run, now uncertain
    requeued: int  # temporary failures of an earlier run, pending again
    #: rows of the subscriber file that would be recipients but cannot be (bad address,
    #: unknown status, bad date): never sent to, so never skipped silently either
    invalid: list[Problem] = field(default_factory=list)
    #: duplicate rows of an address that is sent to once (informational)
    duplicates: list[Problem] = field(default_factory=list)

    @property
    def total(self) -> int:
        return self.new + self.sent + self.uncertain + self.failed


@dataclass(slots=True)
class Report:
    """What a run did."""

    issue: str
    dry_run: bool = False
    attempted: int = 0
    sent: int = 0
    failed: int = 0
    retry: int = 0
    uncertain: int = 0
    not_attempted: int = 0
    bounced: int = 0
    skipped: int = 0  # became inactive during the run
    bytes: int = 0
    elapsed: float = 0.0
    stopped: bool = False
    fatal: NewsletterError | None = None  # the transport's, or the loop's own
    warnings: list[str] = field(default_factory=list)

    def add(self, outcomes: list[Outcome]) -> None:
        for o in outcomes:
            if o.status is Status.SENT:
                self.sent += 1
            elif o.status is Status.FAILED:
                self.failed += 1
            elif o.status is Status.RETRY:
                self.retry += 1
            elif o.status is Status.UNCERTAIN:
                self.uncertain += 1
            else:
                self.not_attempted += 1
