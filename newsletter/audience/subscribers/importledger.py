"""What an import wrote, kept beside the consent ledger so a fold can put it back whole.

An import is written straight into the file (the admin is waiting for it), then each
row it added or updated is recorded as an ``add`` change in the ledger, and here, in
``imported_rows`` (same SQLite file, keyed by the change's ``seq``), with the columns
it wrote and a stamp of the row's text before (0: the import added the row). A stale
spreadsheet save that drops an imported row or turns an updated one back to its old
text has the import's columns put back by the next fold: tags and extra columns too.
A trigger deletes a row's record with its change, so a purge forgets both.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Final

from newsletter.audience.subscribers.addresses import SUPPRESSED
from newsletter.audience.subscribers.ledger import Change

if TYPE_CHECKING:  # the import code loads only for an import (start-up time)
    from newsletter.audience.subscribers.importer import ImportReport
    from newsletter.audience.subscribers.importfile import ImportEntry
    from newsletter.audience.subscribers.ledger import Ledger
    from newsletter.audience.subscribers.live import LiveList
    from newsletter.audience.subscribers.store import SubscriberStore

_SCHEMA = """
CREATE TABLE IF NOT EXISTS imported_rows (
    seq INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    pre INTEGER NOT NULL,
    cols TEXT NOT NULL
);
CREATE TRIGGER IF NOT EXISTS imported_rows_forget AFTER DELETE ON changes BEGIN
    DELETE FROM imported_rows WHERE seq = OLD.seq;
END;
"""


def row_stamp(raw: str) -> int:
    """A 63-bit digest of a row's exact text: tells a hand-edited row from the one a fold
    or an import left."""
    digest = hashlib.blake2b(raw.encode("utf-8"), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


@dataclass(frozen=True, slots=True)
class Imported:
    """The columns an import wrote into a row (by the list's field or column name)."""

    values: Mapping[str, str]
    pre: int  # stamp of the row's text before the import; 0: the import added it


def ensure_table(ledger: Ledger) -> None:
    """Create the table (outside a transaction: a script commits what is open)."""
    ledger.connection().executescript(_SCHEMA)


def record(conn: sqlite3.Connection, seq: int, key: str, imported: Imported) -> None:
    """Inside the ledger transaction that inserted change ``seq``."""
    conn.execute(
        "INSERT OR REPLACE INTO imported_rows VALUES (?, ?, ?, ?)",
        (seq, key, imported.pre, json.dumps(dict(imported.values), ensure_ascii=False)),
    )


def load(ledger: Ledger, seqs: Iterable[int]) -> dict[int, Imported]:
    """The records of changes ``seqs`` (those that have one)."""
    wanted = list(seqs)
    found: dict[int, Imported] = {}
    conn = ledger.connection()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        try:
            rows = conn.execute(
                f"SELECT seq, pre, cols FROM imported_rows WHERE seq IN ({marks})", chunk
            ).fetchall()
        except sqlite3.OperationalError:  # no import recorded yet: no table
            return {}
        for seq, pre, cols in rows:
            found[int(seq)] = Imported(json.loads(cols), int(pre))
    return found


def fold_times(ledger: Ledger, keys: Iterable[str]) -> dict[str, float]:
    """When a fold last wrote each of ``keys``' rows (rows written by one fold share it)."""
    wanted = list(keys)
    found: dict[str, float] = {}
    conn = ledger.connection()
    for start in range(0, len(wanted), 500):
        chunk = wanted[start : start + 500]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT key, at FROM folded_rows WHERE key IN ({marks})"
        found.update((key, float(at)) for key, at in conn.execute(sql, chunk))
    return found


def import_through_ledger(
    store: SubscriberStore, live: LiveList, entries: list[ImportEntry], *, force: bool
) -> ImportReport:
    """An import written to the file (after a fold), and what it wrote recorded: each row
    it added or updated is an ``add`` change with its columns here, each suppression it
    wrote a hold. A stale spreadsheet save that drops or turns back those rows has them put
    back whole at the next fold, and the fold says so. An address whose suppression the
    ledger holds and whose row is gone (deleted by hand) is not added back."""
    from newsletter.audience.subscribers.importer import ImportMutation

    keys = [e.key for e in entries]
    held = {key: hold.status for key, hold in live.ledger.holds(keys).items()}
    mutation = ImportMutation({e.key: e for e in entries}, force=force, held=held)
    store.apply(mutation)  # folds first
    report = mutation.report
    if force:
        lifted = [o.email for o in report.updated if any(s in o.detail for s in _UNSUPPRESSED)]
        live.release(lifted, note="import --force")
    if not mutation.wrote:
        return report
    by_key = {e.key: e for e in entries}
    now = store.clock()
    ensure_table(live.ledger)
    with live.ledger.transaction() as conn:
        for key, (raw, before, values) in mutation.wrote.items():
            entry = by_key[key]
            status = values.get("status", "")
            add = Change(
                key, entry.email, "add", status, before=before, note=entry.note,
                name=entry.name, source=entry.source, at=now,
            )  # fmt: skip
            seq = live.ledger.insert(conn, add).seq
            record(conn, seq, key, Imported(values, row_stamp(raw) if raw else 0))
            if status in SUPPRESSED:  # kept whatever a save or a hand deletion does
                held_change = Change(
                    key, entry.email, "suppress", status, before=before, note="import",
                    source=entry.source, at=now,
                )  # fmt: skip
                live.ledger.insert(conn, held_change)
    store.fold()  # notes the rows' text, to know a save that drops or turns them back
    return report


_UNSUPPRESSED: Final = tuple(f"status {s} -> " for s in SUPPRESSED)
