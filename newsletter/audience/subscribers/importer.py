"""Merging an import into the list: new addresses appended, listed ones updated.

Reading the file (any supported export, a CSV, a plain list) is :mod:`.importfile`'s;
this module decides, per address, what changes. Nobody unsubscribed, bounced or
complained is made active again, and nobody pending is made active, without ``force``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from newsletter.audience.subscribers.addresses import SUPPRESSED
from newsletter.audience.subscribers.cellvalues import join_tags, split_tags_column
from newsletter.audience.subscribers.csvio import Header
from newsletter.audience.subscribers.importfile import ImportEntry, read_import_file
from newsletter.audience.subscribers.mutations import Edit, Mutation
from newsletter.audience.subscribers.rows import SubscriberRow
from newsletter.errors import Problem

# read_import_file lived here before the readers of other tools' exports moved out
__all__ = ["ImportEntry", "ImportMutation", "ImportOutcome", "ImportReport", "read_import_file"]


@dataclass(frozen=True, slots=True)
class ImportOutcome:
    """What an import did (or would do) with one entry; ``detail`` says what and why."""

    email: str
    line: int
    detail: str = ""


@dataclass(slots=True)
class ImportReport:
    added: list[ImportOutcome] = field(default_factory=list)
    updated: list[ImportOutcome] = field(default_factory=list)
    unchanged: list[ImportOutcome] = field(default_factory=list)
    skipped: list[ImportOutcome] = field(default_factory=list)
    invalid: list[Problem] = field(default_factory=list)


class ImportMutation(Mutation):
    def __init__(
        self,
        entries: dict[str, ImportEntry],
        *,
        force: bool,
        held: Mapping[str, str] | None = None,
    ) -> None:
        self.entries = entries
        self.force = force
        #: addresses not in the file whose suppression the ledger keeps (a row deleted by
        #: hand while unsubscribed, bounced or complained): never added back by an import
        self.held = held or {}
        self.report = ImportReport()
        self.pending: dict[str, ImportEntry] = {}
        #: per address the row's text and status before ("": added) and the columns written
        self.wrote: dict[str, tuple[str, str, dict[str, str]]] = {}

    def begin(self, header: Header, now: str) -> None:
        self.now = now
        self.report = ImportReport()
        self.pending = dict(self.entries)
        self.wrote = {}
        header.ensure("name", "source", "subscribed_at", "confirmed_at", "updated_at")
        if any(e.note for e in self.entries.values()):
            header.ensure("note")
        extras: dict[str, None] = {}
        for entry in self.entries.values():
            if entry.tags:
                extras.setdefault("tags")
            extras.update(dict.fromkeys(name for name, _ in entry.extras))
        for name in extras:
            declare_column(header, name)

    def row(self, row: SubscriberRow, header: Header) -> list[str] | Edit:
        entry = self.pending.pop(row.key, None) if row.key is not None else None
        if entry is None:
            return Edit.KEEP
        sub = row.subscriber
        if sub is None:
            self.report.skipped.append(
                ImportOutcome(entry.email, entry.line, f"line {row.line} of the list has problems")
            )
            return Edit.KEEP
        changes: list[str] = []
        cells = list(row.cells)
        written: dict[str, str] = {}

        def put(name: str, value: str) -> None:
            header.set(cells, name, value)
            written[name] = value

        if entry.status is not None and entry.status != sub.status:
            if (
                sub.status in SUPPRESSED
                and entry.status in ("active", "pending")
                and not self.force
            ):
                self.report.skipped.append(
                    ImportOutcome(
                        entry.email,
                        entry.line,
                        f"{sub.status}; not made {entry.status} again without --force",
                    )
                )
                return Edit.KEEP
            if sub.status == "pending" and entry.status == "active" and not self.force:
                # double opt-in: only the person makes a pending address active
                self.report.skipped.append(
                    ImportOutcome(
                        entry.email,
                        entry.line,
                        "pending (not confirmed); not made active without --force",
                    )
                )
                return Edit.KEEP
            changes.append(f"status {sub.status} -> {entry.status}")
            put("status", entry.status)
            if sub.status == "pending" and entry.status == "active":
                put("confirmed_at", self.now)
        if entry.name and entry.name != sub.name:
            changes.append(f"name {sub.name!r} -> {entry.name!r}")
            put("name", entry.name)
        if entry.note and entry.note != sub.note:
            changes.append("note")
            put("note", entry.note)
        for date in ("subscribed_at", "confirmed_at"):
            given = getattr(entry, date)
            if given and not getattr(sub, date):
                # consent evidence from the old tool fills a gap; it never rewrites ours
                changes.append(f"{date} {given}")
                put(date, given)
        if entry.tags:
            held = header.value(cells, "tags")
            merged = join_tags(split_tags_column(held) + split_tags_column(entry.tags))
            if merged != held:
                changes.append(f"tags {merged!r}")
                put("tags", merged)
        changed_extras = [
            name for name, value in entry.extras if header.value(cells, name) != value
        ]
        for name, value in entry.extras:
            put(name, value)
        if changed_extras:
            changes.append(", ".join(changed_extras))
        if not changes:
            self.report.unchanged.append(ImportOutcome(entry.email, entry.line))
            return Edit.KEEP
        put("updated_at", self.now)
        self.report.updated.append(ImportOutcome(entry.email, entry.line, ", ".join(changes)))
        self.wrote[entry.key] = (row.raw, sub.status, written)
        return cells

    def end(self, header: Header) -> list[list[str]]:
        rows = []
        for entry in self.pending.values():
            if entry.key in self.held:
                self.report.skipped.append(
                    ImportOutcome(
                        entry.email,
                        entry.line,
                        f"{self.held[entry.key]} (its row was deleted by hand); not added back: "
                        "only the reader's own confirmation subscribes it again",
                    )
                )
                continue
            status = entry.status or "active"
            subscribed = entry.subscribed_at or self.now
            confirmed = entry.confirmed_at
            if status == "active" and not confirmed:
                confirmed = entry.subscribed_at or self.now
            values = {
                "email": entry.email,
                "name": entry.name,
                "status": status,
                "source": entry.source,
                "subscribed_at": subscribed,
                "confirmed_at": "" if status == "pending" else confirmed,
                "updated_at": self.now,
            }
            if entry.note:
                values["note"] = entry.note
            if entry.tags:
                values["tags"] = entry.tags
            values.update(entry.extras)
            rows.append(header.new_row(values))
            self.report.added.append(ImportOutcome(entry.email, entry.line, status))
            self.wrote[entry.key] = ("", "", values)
        return rows


def declare_column(header: Header, name: str) -> None:
    """Make ``name`` settable: an existing column of that name (any case), else a new one.

    Extra columns are not fields the header knows by alias, so a re-import finds the
    column it added last time by its exact text instead of adding it twice.
    """
    if name in header.index:
        return
    wanted = name.strip().lower()
    for i, cell in enumerate(header.cells):
        if cell.strip().lower() == wanted:
            header.index[name] = i
            return
    header.ensure(name)
