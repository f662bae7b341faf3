"""Reading an import: another tool's export, a CSV of our own kind, or a plain list.

:func:`read_import` recognises the source (:mod:`.formats`), maps every row to an
:class:`ImportEntry` (address, name, status, consent dates, tags, note, and every other
non-empty column as an extra column) and says what it did with each column, so a dry
run can show what is mapped, kept, ignored or could not be mapped.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from email.utils import parseaddr
from pathlib import Path
from typing import Final

from newsletter.audience.subscribers.addresses import (
    AddressError,
    check_status,
    normalize_address,
)
from newsletter.audience.subscribers.cellvalues import (
    flatten_attributes,
    join_tags,
    normalize_date,
)
from newsletter.audience.subscribers.csvio import (
    _FIELD_BY_TOKEN,
    BomFlag,
    Header,
    decode_lines,
    file_error,
    problem,
    read_records,
)
from newsletter.audience.subscribers.formats import (
    NAME_PARTS,
    Detected,
    apply_map,
    detect_source,
    token,
)
from newsletter.errors import Problem

#: Status words other tools write in a plain ``status`` column, and ours for them.
STATUS_WORDS: Final = {"subscribed": "active", "cleaned": "bounced", "confirmed": "active"}
DATE_ROLES: Final = ("subscribed_at", "confirmed_at")


@dataclass(frozen=True, slots=True)
class ImportEntry:
    """One address read from an import file. ``status`` None: keep / default active."""

    line: int
    email: str
    name: str = ""
    status: str | None = None
    source: str = "import"
    note: str = ""
    subscribed_at: str = ""
    confirmed_at: str = ""
    tags: str = ""
    extras: tuple[tuple[str, str], ...] = ()

    @property
    def key(self) -> str:
        return self.email.lower()


@dataclass(frozen=True, slots=True)
class ColumnUse:
    """What the import did with one column of the file."""

    header: str
    use: str  # "email", "name", ..., "kept", "ignored", "unmappable"
    detail: str = ""  # e.g. the extra column's name, or why ignored


@dataclass(slots=True)
class ImportFile:
    """An import file read: its entries, its problems, and how it was understood."""

    path: Path
    format: str
    entries: list[ImportEntry] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    columns: list[ColumnUse] = field(default_factory=list)
    status_note: str = ""


def read_import(
    path: Path,
    *,
    encoding: str = "utf-8",
    status: str | None = None,
    source: str | None = None,
    mapping: dict[str, str] | None = None,
) -> ImportFile:
    """Read an export, a CSV with an address column, or a plain list (one address a line).

    A plain list may hold ``Name <address>`` lines, blank lines and ``#`` comments. A
    CSV whose header has no address column is refused in one error that names the
    columns seen. Returns the valid entries in file order and every problem (bad
    address, unknown status, an address repeated in the file), each with its line.
    """
    display = str(path)
    if status is not None:
        status = check_status(status)
    try:
        fh = path.open("rb")
    except OSError as exc:
        raise file_error(display, None, f"cannot read: {exc.strerror}") from None
    with fh:
        header, records = read_records(fh, display, encoding=encoding)
        if header is not None and not _plain_list(header):
            reader = _CsvImport(display, header, status, source, mapping or {})
            for line, _raw, cells in records:
                reader.record(line, cells)
            return reader.finish(path)
    result = ImportFile(path, "a plain list of addresses")
    seen: dict[str, int] = {}
    with path.open("rb") as fh:
        bom = BomFlag()
        for line, text in enumerate(decode_lines(fh, display, encoding, bom), 1):
            text = text.strip()
            if not text or text.startswith("#"):
                continue
            name, typed = "", text
            if "<" in text:
                name, typed = parseaddr(text)
            entry = _entry(display, line, typed, seen, result.problems)
            if entry is not None:
                result.entries.append(
                    ImportEntry(line, entry, name.strip(), status, source or "import")
                )
    return result


def read_import_file(
    path: Path,
    *,
    encoding: str = "utf-8",
    status: str | None = None,
    source: str = "import",
) -> tuple[list[ImportEntry], list[Problem]]:
    """:func:`read_import`'s entries and problems (the shape older callers use)."""
    result = read_import(path, encoding=encoding, status=status, source=source)
    return result.entries, result.problems


def _plain_list(header: Header) -> bool:
    first = header.cells[0].strip() if header.cells else ""
    return first.startswith("#") or any("@" in cell for cell in header.cells)


def _entry(
    display: str, line: int, typed: str, seen: dict[str, int], problems: list[Problem]
) -> str | None:
    try:
        email = normalize_address(typed)
    except AddressError as exc:
        problems.append(problem(display, line, "email", exc.message))
        return None
    first = seen.setdefault(email.lower(), line)
    if first != line:
        problems.append(problem(display, line, "email", f"{typed} repeats line {first}"))
        return None
    return email


class _CsvImport:
    """One CSV import, row by row: the detected source's roles applied to each record."""

    def __init__(
        self,
        display: str,
        header: Header,
        status: str | None,
        source: str | None,
        mapping: dict[str, str],
    ) -> None:
        self.display = display
        self.cells = [c.strip() for c in header.cells]
        self.detected: Detected = detect_source(self.cells)
        apply_map(self.detected, self.cells, mapping)
        roles = self.detected.roles
        if "email" not in roles:
            raise AddressError(
                f"{display}:1: no address column found (columns: {', '.join(self.cells)})",
                hint='name the column that holds the addresses: --map "COLUMN=email"',
            )
        self.email_at = roles.index("email")
        self.spec = self.detected.source
        self.tokens = frozenset(token(c) for c in self.cells)
        self.token_index = {token(c): i for i, c in reversed(list(enumerate(self.cells)))}
        self.status = status
        self.source = source or (self.spec.key if self.spec else "import")
        self.seen: dict[str, int] = {}
        self.used = [False] * len(self.cells)
        self.extra_names = self._extra_names()
        self.result = ImportFile(Path(display), self.detected.label)

    def _extra_names(self) -> list[str | None]:
        """The list's column name for each extra column (None: not an extra, or unusable)."""
        names: list[str | None] = []
        taken: set[str] = set()
        prefix = self.spec.key if self.spec else "import"
        for cell, role in zip(self.cells, self.detected.roles, strict=True):
            if role is not None or not cell:
                names.append(None)
                continue
            name = cell
            if _header_is_ours(name):
                name = f"{prefix}_{name}"  # never overwrite one of the list's own columns
            if name.lower() in taken:
                names.append(None)
                continue
            taken.add(name.lower())
            names.append(name)
        return names

    def record(self, line: int, cells: list[str]) -> None:
        if not any(c.strip() for c in cells):
            return
        for i, cell in enumerate(cells[: len(self.used)]):
            if cell.strip():
                self.used[i] = True
        by_role: dict[str, list[str]] = {}
        extras: dict[str, str] = {}
        for i, role in enumerate(self.detected.roles):
            value = cells[i].strip() if i < len(cells) else ""
            if role is not None:
                by_role.setdefault(role, []).append(value)
            elif value and (name := self.extra_names[i]) is not None:
                extras[name] = value
        one = {role: values[0] for role, values in by_role.items()}
        typed = one.get("email", "")
        if self.spec is not None and self.spec.first_address and ":::" in typed:
            typed, _sep, more = typed.partition(":::")
            typed = typed.strip()
            extras[f"{self.spec.key}_more_addresses"] = more.strip()
        if not typed:
            if self.spec is not None and self.spec.default_status:
                # an address book holds people without an address: not an error here
                self.result.warnings.append(
                    Problem(self.display, line, "email", "no address; skipped", "warning")
                )
            else:
                self.result.problems.append(problem(self.display, line, "email", "no address"))
            return
        ok, row_status = self._status(line, one, cells)
        if not ok:
            return
        email = _entry(self.display, line, typed, self.seen, self.result.problems)
        if email is None:
            return
        name = one.get("name", "") or " ".join(p for p in (one.get(r, "") for r in NAME_PARTS) if p)
        dates: dict[str, str] = {}
        for role in DATE_ROLES:
            given = one.get(role, "")
            clean = normalize_date(given)
            if clean is None:
                column = self.cells[self.detected.roles.index(role)]
                self.result.warnings.append(
                    Problem(
                        self.display, line, column, f"not a date {given!r}; kept as text", "warning"
                    )
                )
                extras[f"{column} (as exported)"] = given
                clean = ""
            dates[role] = clean
        tags: list[str] = []
        split = self.spec.split_tags if self.spec else _split_generic
        for text in by_role.get("tags", []):
            tags.extend(split(text))
        for text in by_role.get("attributes", []):
            flat = flatten_attributes(text)
            if flat is None:
                extras["attributes"] = text
            else:
                extras.update({k: v for k, v in flat.items() if v and not _header_is_ours(k)})
        self.result.entries.append(
            ImportEntry(
                line,
                email,
                name,
                row_status,
                one.get("source", "") or self.source,
                one.get("note", ""),
                dates["subscribed_at"],
                dates["confirmed_at"],
                join_tags(tags),
                tuple(extras.items()),
            )
        )

    def _status(self, line: int, one: dict[str, str], cells: list[str]) -> tuple[bool, str | None]:
        """``(True, status)`` (None: the default), or ``(False, None)`` for an unknown one."""
        if self.spec is not None:

            def get(wanted: str) -> str:
                i = self.token_index.get(wanted)
                return cells[i].strip() if i is not None and i < len(cells) else ""

            found = self.spec.status(get, self.tokens)
            if found is not None:
                return True, found
            return True, self.status or self.spec.default_status
        given = one.get("status", "")
        if not given:
            return True, self.status
        try:
            return True, STATUS_WORDS.get(given.strip().lower()) or check_status(given)
        except AddressError as exc:
            self.result.problems.append(problem(self.display, line, "status", exc.message))
            return False, None

    def finish(self, path: Path) -> ImportFile:
        result = self.result
        result.path = path
        for i, (cell, role) in enumerate(zip(self.cells, self.detected.roles, strict=True)):
            if role == "ignore":
                result.columns.append(ColumnUse(cell, "ignored", "--map"))
            elif role is not None:
                result.columns.append(ColumnUse(cell, role))
            elif not cell:
                result.columns.append(ColumnUse(f"column {i + 1}", "unmappable", "no header"))
            elif self.extra_names[i] is None:
                result.columns.append(ColumnUse(cell, "unmappable", "repeats an earlier column"))
            elif not self.used[i]:
                result.columns.append(ColumnUse(cell, "ignored", "empty in every row"))
            else:
                name = self.extra_names[i] or cell
                result.columns.append(ColumnUse(cell, "kept", "" if name == cell else name))
        spec = self.spec
        if spec is not None and "status" not in self.detected.roles and spec.key == "mailchimp":
            status = spec.status(lambda _t: "", self.tokens)
            result.status_note = f"every row {status}"
        elif spec is not None and spec.default_status and not self.status:
            result.status_note = (
                f"new rows {spec.default_status}: an address book is not consent "
                "(use --status active if they all opted in)"
            )
        return result


def _split_generic(text: str) -> list[str]:
    sep = ";" if ";" in text else ","
    return [t.strip() for t in text.split(sep) if t.strip()]


def _header_is_ours(name: str) -> bool:
    return token(name) in _FIELD_BY_TOKEN or token(name) == "tags"
