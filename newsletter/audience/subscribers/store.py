"""The store: streaming reads of the subscriber CSV, its stats, and the changes to it.

How a change reaches the disk (lock, temp file, swap, backups, retry when the file
changed meanwhile) is :class:`~.lockedfile.LockedFile`'s; the store is that file read
as validated rows and changed through :class:`~.mutations.Mutation` objects.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from newsletter.audience.subscribers.addresses import (
    SUPPRESSED,
    address_key,
    check_status,
    normalize_address,
    utc_now,
)
from newsletter.audience.subscribers.csvio import Header, file_error, read_records
from newsletter.audience.subscribers.ledger import RowState
from newsletter.audience.subscribers.live import LiveList
from newsletter.audience.subscribers.lockedfile import FileSignature, LockedFile
from newsletter.audience.subscribers.mutations import (
    AddMutation,
    AlreadySubscribedError,
    Mutation,
    PurgeMutation,
    StatusMutation,
    SuppressionMutation,
    run_pass,
)
from newsletter.audience.subscribers.rows import RowValidator, Subscriber, SubscriberRow
from newsletter.errors import Problem, SubscriberFileError

if TYPE_CHECKING:
    from newsletter.audience.subscribers.foldreport import FoldReport
    from newsletter.audience.subscribers.importer import ImportEntry, ImportReport
    from newsletter.config import Settings


_Opened = tuple[Header | None, Iterator[SubscriberRow], FileSignature | None]


@dataclass(slots=True)
class Stats:
    """Counts for ``newsletter subscribers stats``."""

    rows: int = 0
    by_status: Counter[str] = field(default_factory=Counter)
    domains: Counter[str] = field(default_factory=Counter)
    problem_rows: int = 0
    blank_rows: int = 0


class SubscriberStore(LockedFile):
    """The subscriber CSV: streaming reads, validated rows, locked atomic writes.

    Reads take no lock (a writer replaces the file atomically, so a reader sees the
    old file or the new one). Every write holds ``<file>.lock``; waiting longer than
    ``lock_timeout`` seconds raises :class:`~newsletter.errors.LockTimeoutError`.
    """

    def __init__(
        self,
        path: Path,
        *,
        lock_timeout: float = 10.0,
        backup_dir: Path | None = None,
        encoding: str = "utf-8",
        clock: Callable[[], str] = utc_now,
        state_dir: Path | None = None,
    ) -> None:
        super().__init__(path, lock_timeout=lock_timeout, backup_dir=backup_dir)
        self.encoding = encoding
        self.clock = clock
        #: the index and consent ledger beside the file (None: every change is a rewrite)
        self.live = LiveList(self, state_dir) if state_dir is not None else None

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        lock_timeout: float = 10.0,
        clock: Callable[[], str] = utc_now,
    ) -> SubscriberStore:
        """The project's list, with its ledger, index and backups under ``state_dir``."""
        return cls(
            settings.subscribers_file,
            lock_timeout=lock_timeout,
            backup_dir=settings.state_dir / "backups",
            state_dir=settings.state_dir,
            clock=clock,
        )


    @contextmanager
    def _open(
        self, *, missing_ok: bool = False
    ) -> Iterator[tuple[Header | None, Iterator[SubscriberRow], FileSignature | None]]:
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            if missing_ok:
                yield None, iter(()), None
                return
            raise file_error(
                self.display,
                None,
                "no such file",
                "create it with: newsletter subscribers add ADDRESS",
            ) from None
        except OSError as exc:
            raise file_error(self.display, None, f"cannot read: {exc.strerror}") from None
        with fh:
            signature = FileSignature.of(os.fstat(fh.fileno()))
            header, records = read_records(fh, self.display, encoding=self.encoding)
            if header is None:
                yield None, iter(()), signature
                return
            validator = RowValidator(self.display, header)
            rows = (validator.row(*record) for record in records)
            yield header, rows, signature

    def open_rows(self) -> AbstractContextManager[_Opened]:
        """``(header, rows, signature)`` of the file as it is now (empty when missing)."""
        return self._open(missing_ok=True)

    def header(self) -> Header | None:
        """The file's header (None for an empty file)."""
        with self._open() as (header, _rows, _sig):
            return header

    def iter_rows(self) -> Iterator[SubscriberRow]:
        """Every record after the header, in order, with its line and problems.

        Streams (memory: one row plus the set of addresses seen, for duplicates).
        Raises :class:`~newsletter.errors.SubscriberFileError` for a file that cannot
        be read at all (missing, not UTF-8, broken quoting, no email column).
        """
        with self._open() as (_header, rows, _sig):
            if self.live is None:
                yield from rows
                return
            overlay = self.live.overlay()
            # with nothing to lay over the file, no call per row (a microsecond each)
            yield from (map(overlay.row, rows) if overlay.changes or overlay.holds else rows)

    def iter_valid(self) -> Iterator[Subscriber]:
        """Every valid, non-duplicate row, whatever its status."""
        for row in self.iter_rows():
            if row.subscriber is not None:
                yield row.subscriber

    def iter_active(self) -> Iterator[Subscriber]:
        """The rows to send to: valid, not a duplicate, status ``active``. Streams."""
        for row in self.iter_rows():
            sub = row.subscriber
            if sub is not None and sub.status == "active":
                yield sub

    def check(self) -> list[Problem]:
        """Every problem in the file, in line order (an unreadable file: its one problem)."""
        problems: list[Problem] = []
        try:
            for row in self.iter_rows():
                problems.extend(row.problems)
        except SubscriberFileError as exc:
            problems.extend(exc.problems)
        return problems

    def raise_for_problems(self) -> None:
        """Raise SubscriberFileError listing every problem, if there is any."""
        problems = self.check()
        if problems:
            raise SubscriberFileError(
                problems, hint="fix the rows above (the file is yours to edit), then re-run"
            )

    def get(self, email: str) -> Subscriber | None:
        """The valid row for an address (any status, the ledger's changes included), or None."""
        key = address_key(email)
        if self.live is None:
            for row in self.iter_rows():
                if row.key == key:
                    return row.subscriber
            return None
        overlay = self.live.overlay()
        with self.open_rows() as (_header, rows, _sig):
            for row in rows:
                if row.key == key:
                    return overlay.row(row).subscriber
        return self.live.unfolded_subscriber(key)  # a signup not in the file yet

    def status(self, email: str) -> RowState | None:
        """An address's row now, from the index and the ledger (no read of the file)."""
        key = address_key(email)
        if self.live is not None:
            return self.live.state(key)
        sub = self.get(email)
        return (
            RowState(sub.email, sub.status, sub.updated_at, sub.line, sub.language) if sub else None
        )

    def stats(self) -> Stats:
        result = Stats()
        for row in self.iter_rows():
            if row.blank:
                result.blank_rows += 1
                continue
            result.rows += 1
            sub = row.subscriber
            if sub is None:
                result.problem_rows += 1
                continue
            result.by_status[sub.status] += 1
            result.domains[sub.key.rpartition("@")[2]] += 1
        return result

    # Writing ----------------------------------------------------------------------------

    def add(
        self,
        email: str,
        *,
        name: str = "",
        status: str = "active",
        source: str = "cli",
        note: str = "",
        exist_ok: bool = False,
    ) -> Subscriber:
        """Append a row; raise AlreadySubscribedError if the address is already there.

        With ``exist_ok=True`` the existing row is returned unchanged instead. The new
        row gets ``subscribed_at`` and ``updated_at`` now, and ``confirmed_at`` now when
        it is added as active.
        """
        normalized = normalize_address(email)
        status = check_status(status)
        values = {
            "email": normalized,
            "name": name.strip(),
            "status": status,
            "source": source.strip(),
            "note": note.strip(),
        }
        mutation = AddMutation(self.display, values, normalized.lower(), exist_ok)
        self.apply(mutation)
        if mutation.found:
            if mutation.existing is None:
                raise AlreadySubscribedError(
                    f"{self.display}:{mutation.line}: {normalized} is on the list in a row "
                    "with problems",
                    line=mutation.line,
                    status="",
                )
            return mutation.existing
        v = mutation.values
        return Subscriber(
            email=v["email"],
            name=v["name"],
            status=v["status"],
            source=v["source"],
            line=mutation.line,
            subscribed_at=v["subscribed_at"],
            confirmed_at=v["confirmed_at"],
            updated_at=v["updated_at"],
            note=v["note"],
        )

    def set_status(self, email: str, status: str, *, note: str | None = None) -> bool:
        """Change one address's status atomically; False if the address is not listed.

        ``updated_at`` becomes now (and ``confirmed_at`` too on pending -> active); a
        ``note`` is appended to the row's note after ``"; "``. Setting the status a
        row already has, without a note, writes nothing.
        """
        return bool(self.set_statuses({email: (status, note)}))

    def set_statuses(self, changes: Mapping[str, tuple[str, str | None]]) -> set[str]:
        """An admin's status changes in one write: ``{email: (status, note)}``.

        Returns the keys found. With a ledger, an explicit change is also its record of
        consent: a suppression becomes a hold (a spreadsheet save cannot undo it), and a
        weaker status lifts the address's hold (the admin decided, e.g. a fixed mailbox).
        """
        by_key = {
            address_key(email): (check_status(status), note)
            for email, (status, note) in changes.items()
        }
        if not by_key:
            return set()
        mutation = StatusMutation(by_key)
        self.apply(mutation)
        if self.live is not None and mutation.found:
            held = {
                k: (s, n or "set by an admin") for k, (s, n) in by_key.items() if s in SUPPRESSED
            }
            self.live.suppress(
                {k: v for k, v in held.items() if k in mutation.found},
                only_open=False,
                source="admin",
                at=self.clock(),
            )
            self.live.release([k for k in mutation.found if k not in held], note="set by an admin")
        return mutation.found

    def remove(self, email: str, *, purge: bool = False) -> bool:
        """Unsubscribe an address, or with ``purge`` delete every row that holds it.

        Purging is for a data-protection request: the rows are gone (a backup of the
        previous file remains until rotated out). False if the address is not listed.
        """
        if not purge:
            return self.set_status(email, "unsubscribed")
        return bool(self.purge(email))

    def purge(self, email: str) -> list[int]:
        """Delete every row holding the address (valid or not); the lines it held."""
        key = address_key(email)
        mutation = PurgeMutation(key)
        self.apply(mutation)
        if self.live is not None:
            self.live.index.forget(key)
            self.live.ledger.forget(key)
        return mutation.lines

    def apply(self, mutation: Mutation, *, dry_run: bool = False) -> bool:
        """Apply ``mutation`` to a fresh read of the file, under the lock.

        Returns True if the file was rewritten (False if nothing changed or dry_run).
        The file is created (with the standard header) if missing and rows are added.
        """
        if dry_run:
            changed, _sig = self.apply_pass(mutation, None)
            return changed
        if self.live is not None:
            self.fold()  # the ledger's changes first: an admin's write builds on them
        return self.rewrite(lambda out: self.apply_pass(mutation, out))

    def apply_pass(
        self, mutation: Mutation, out: IO[str] | None
    ) -> tuple[bool, FileSignature | None]:
        """One pass for :meth:`rewrite`: read, mutate, write to ``out``; (changed, signature)."""
        with self._open(missing_ok=True) as (header, rows, signature):
            changed = run_pass(mutation, header or Header.default(), rows, self.clock(), out)
            return changed, signature

    def import_entries(
        self, entries: Iterable[ImportEntry], *, force: bool = False, dry_run: bool = False
    ) -> ImportReport:
        """Merge entries into the list (see :func:`read_import_file`); one write.

        New addresses are appended; for listed ones a differing name, note or status is
        updated, except that an unsubscribed, bounced or complained row is never made
        pending or active again without ``force``. ``dry_run`` reports without writing.
        """
        if self.live is not None and not dry_run:
            from newsletter.audience.subscribers.importledger import import_through_ledger

            return import_through_ledger(self, self.live, list(entries), force=force)
        from newsletter.audience.subscribers.importer import ImportMutation  # start-up

        mutation = ImportMutation({e.key: e for e in entries}, force=force)
        self.apply(mutation, dry_run=dry_run)
        return mutation.report

    # Machine changes: the ledger ----------------------------------------------------------
    def suppress(
        self, changes: Mapping[str, tuple[str, str]], *, only_open: bool = False, source: str = ""
    ) -> dict[str, str | None]:
        """Record suppressions ``{email: (status, note)}``; each address's status before.

        With a ledger: one transaction, durable at commit, in the file at the next fold
        (a replay of one already recorded writes nothing). Never weakens a status;
        ``only_open`` changes only pending or active rows. Without one: one rewrite.
        """
        if self.live is not None:
            return self.live.suppress(changes, only_open=only_open, source=source, at=self.clock())
        mutation = SuppressionMutation(
            {address_key(e): (check_status(s), n) for e, (s, n) in changes.items()}, only_open
        )
        if mutation.changes:
            self.apply(mutation)
        return {key: mutation.before.get(key) for key in mutation.changes}

    def held(self, keys: Iterable[str]) -> set[str]:
        """The addresses among ``keys`` that left the list: asked before each hand-off."""
        return set() if self.live is None else set(self.live.held(keys))

    def fold(self) -> FoldReport | None:
        """Fold the ledger into the file now (None without a ledger)."""
        return None if self.live is None else self.live.fold()
