"""Where inbound mail comes from: the interface every source implements.

Every source yields :class:`InboundItem` (an id that names the message within the
source, and its raw bytes) and is told :meth:`InboundSource.mark_done` once the message
has a recorded outcome. No source ever deletes mail:

=============  ==============================================================================
folder         ``*.eml`` files, read in name order, left in place (records make re-runs safe)
Maildir        ``new/`` and ``cur/``; a handled message is moved to ``cur/`` with the ``S`` flag
mbox           read-only; re-runs are made safe by the records alone
IMAP           UID-based; a handled message is MOVEd (or COPY, flag ``\\Deleted``, UID EXPUNGE,
               only after the copy succeeded) to ``NEWSLETTER_IMAP_DONE_FOLDER``, created if
               missing; ``(UIDVALIDITY, UID)`` is recorded so a restart fetches nothing twice
=============  ==============================================================================

The first three live in :mod:`.mailfiles` (:func:`~.mailfiles.open_path_source` picks
one for a path), IMAP in :mod:`.imap`. A webhook is not a source: :mod:`.inbound_parse`
turns a SendGrid Inbound Parse POST into the raw bytes of one message, so it goes
through the same pipeline.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass

__all__ = ["InboundItem", "InboundSource"]


@dataclass(frozen=True, slots=True)
class InboundItem:
    """One message as a source holds it."""

    source_id: str  # names the message within its source (file name, key, UIDVALIDITY:UID)
    raw: bytes


class InboundSource(ABC):
    """A place inbound mail is read from. Use as a context manager (open/close)."""

    #: how the source is named in records and output, e.g. ``maildir:/srv/mail/contact``
    name: str = "source"

    def open(self) -> None:  # noqa: B027 - optional hook
        """Connect or check the source exists; fail before anything is processed."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections; safe to call twice."""

    @abstractmethod
    def items(self) -> Iterator[InboundItem]:
        """Every message still to handle, oldest first."""

    def mark_done(self, item: InboundItem, outcome: str) -> None:  # noqa: B027
        """Called once ``item`` has a recorded outcome. Never deletes anything."""

    def __enter__(self) -> InboundSource:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
