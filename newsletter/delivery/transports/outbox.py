"""The default transport: one .eml per recipient under ``outbox/<issue>/``.

Nothing leaves the machine. Each file is written atomically (temp file, fsync, rename)
and named from the subscriber id, so re-sending a recipient rewrites the same file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from newsletter.delivery.transports.base import (
    BuilderLike,
    Outcome,
    RecipientLike,
    Transport,
    message_or_failure,
)
from newsletter.errors import TransportError
from newsletter.files import fsync_dir, write_atomic


class OutboxTransport(Transport):
    name = "outbox"
    batch_size = 200

    def __init__(self, builder: BuilderLike, folder: Path, *, fsync: bool = True) -> None:
        super().__init__()
        self.builder = builder
        self.folder = folder
        self.fsync = fsync

    @property
    def description(self) -> str:
        return f"outbox (files in {self.folder}/, nothing is sent)"

    def open(self) -> None:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise TransportError(f"{self.folder}: cannot create the outbox: {exc}") from exc

    def path_for(self, r: RecipientLike) -> Path:
        return self.folder / f"{r.subscriber_id}.eml"

    def send(self, batch: Sequence[RecipientLike]) -> list[Outcome]:
        outcomes: list[Outcome] = []
        for r in batch:
            if self.stop_event.is_set() or self.fatal is not None:
                outcomes.append(Outcome.not_attempted(r.email, "stopped"))
                continue
            target = self.path_for(r)
            data = message_or_failure(self.builder, r)
            if isinstance(data, Outcome):
                outcomes.append(data)
                continue
            try:
                self._write(target, data)
            except OSError as exc:
                self.fatal = TransportError(f"{target}: cannot write: {exc}")
                outcomes.append(Outcome.not_attempted(r.email, str(exc)))
                continue
            outcomes.append(Outcome.sent(r.email, target.name))
        if self.fsync and outcomes:
            fsync_dir(self.folder)
        return outcomes

    def _write(self, target: Path, data: bytes) -> None:
        write_atomic(target, data, fsync=self.fsync, sync_dir=False)
