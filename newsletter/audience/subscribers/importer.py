"""Importing another CSV or a plain list of addresses into the list."""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path

from newsletter.audience.subscribers.addresses import (
    SUPPRESSED,
    AddressError,
    check_status,
    normalize_address,
)
from newsletter.audience.subscribers.csvio import (
    BomFlag,
    Header,
    decode_lines,
    file_error,
    problem,
    read_records,
)
from newsletter.audience.subscribers.mutations import (
    Edit,
    Mutation,
)
from newsletter.audience.subscribers.rows import SubscriberRow
from newsletter.errors import Problem


@dataclass(frozen=True, slots=True)
class ImportEntry:
    """One address read from an import file. ``status`` None: keep / default active."""

    line: int
    email: str
    name: str = ""
    status: str | None = None
    source: str = "import"
    note: str = ""

    @property
    def key(self) -> str:
        return self.email.lower()


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


def read_import_file(
    path: Path,
    *,
    encoding: str = "utf-8",
    status: str | None = None,
    source: str = "import",
) -> tuple[list[ImportEntry], list[Problem]]:
    """Read another CSV (with an email column) or a plain list, one address a line.

    A plain list may hold ``Name <address>`` lines, blank lines and ``#`` comments.
    Returns the valid entries in file order and every problem (bad address, unknown
    status, an address repeated in the file), each with this file's line.
    """
    display = str(path)
    if status is not None:
        status = check_status(status)
    entries: list[ImportEntry] = []
    problems: list[Problem] = []
    seen: dict[str, int] = {}

    def accept(line: int, typed: str, name: str, row_status: str | None, note: str) -> None:
        try:
            email = normalize_address(typed)
        except AddressError as exc:
            problems.append(problem(display, line, "email", exc.message))
            return
        first = seen.setdefault(email.lower(), line)
        if first != line:
            problems.append(problem(display, line, "email", f"{typed} repeats line {first}"))
            return
        entries.append(ImportEntry(line, email, name, row_status, source, note))

    try:
        fh = path.open("rb")
    except OSError as exc:
        raise file_error(display, None, f"cannot read: {exc.strerror}") from None
    with fh:
        header, records = read_records(fh, display, encoding=encoding)
        if header is not None and "email" in header.index:
            for line, _raw, cells in records:
                if not any(c.strip() for c in cells):
                    continue
                typed = header.value(cells, "email").strip()
                given = header.value(cells, "status").strip()
                try:
                    row_status = check_status(given) if given else status
                except AddressError as exc:
                    problems.append(problem(display, line, "status", exc.message))
                    continue
                if not typed:
                    problems.append(problem(display, line, "email", "no address"))
                    continue
                name = header.value(cells, "name").strip()
                accept(line, typed, name, row_status, header.value(cells, "note").strip())
            return entries, problems
    with path.open("rb") as fh:
        bom = BomFlag()
        for line, text in enumerate(decode_lines(fh, display, encoding, bom), 1):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            name, typed = "", text
            if "<" in text:
                name, typed = parseaddr(text)
            accept(line, typed, name.strip(), status, "")
    return entries, problems


class ImportMutation(Mutation):
    def __init__(self, entries: dict[str, ImportEntry], *, force: bool) -> None:
        self.entries = entries
        self.force = force
        self.report = ImportReport()
        self.pending: dict[str, ImportEntry] = {}

    def begin(self, header: Header, now: str) -> None:
        self.now = now
        self.report = ImportReport()
        self.pending = dict(self.entries)
        header.ensure("name", "source", "subscribed_at", "confirmed_at", "updated_at")
        if any(e.note for e in self.entries.values()):
            header.ensure("note")

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
            header.set(cells, "status", entry.status)
            if sub.status == "pending" and entry.status == "active":
                header.set(cells, "confirmed_at", self.now)
        if entry.name and entry.name != sub.name:
            changes.append(f"name {sub.name!r} -> {entry.name!r}")
            header.set(cells, "name", entry.name)
        if entry.note and entry.note != sub.note:
            changes.append("note")
            header.set(cells, "note", entry.note)
        if not changes:
            self.report.unchanged.append(ImportOutcome(entry.email, entry.line))
            return Edit.KEEP
        header.set(cells, "updated_at", self.now)
        self.report.updated.append(ImportOutcome(entry.email, entry.line, ", ".join(changes)))
        return cells

    def end(self, header: Header) -> list[list[str]]:
        rows = []
        for entry in self.pending.values():
            status = entry.status or "active"
            values = {
                "email": entry.email,
                "name": entry.name,
                "status": status,
                "source": entry.source,
                "subscribed_at": self.now,
                "confirmed_at": self.now if status == "active" else "",
                "updated_at": self.now,
            }
            if entry.note:
                values["note"] = entry.note
            rows.append(header.new_row(values))
            self.report.added.append(ImportOutcome(entry.email, entry.line, status))
        return rows
