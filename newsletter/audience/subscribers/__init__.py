"""The subscriber list: ``subscribers/subscribers.csv``, read, validated, locked, written.

The CSV is the source of truth that admins own, so the store reads what spreadsheets
write and gives it back untouched wherever it can. One module per step:

* :mod:`.addresses` -- address syntax (``email-validator``, no DNS), normalisation,
  the case-insensitive identity key, the statuses.
* :mod:`.csvio` -- reading what spreadsheets write: UTF-8 with or without BOM, CRLF or
  LF, quoted commas and line breaks, ``;``/tab exports, header spellings such as
  ``E-mail`` or ``Email Address``; every record with its exact raw text. A file that
  is not UTF-8 (a legacy Windows-1252 export) is refused naming the line, unless the
  caller names that encoding.
* :mod:`.rows` -- validation: each record becomes a :class:`Subscriber` or a list of
  :class:`~newsletter.errors.Problem` (``subscribers.csv:LINE: field: reason``): bad
  address, duplicate (case-insensitive), unknown status, bad date. Bad rows stay in
  the file and are never yielded as sendable.
* :mod:`.formats` / :mod:`.importfile` -- imports: other tools' exports recognised by
  their header (Mailchimp, listmonk, Buttondown, Substack, Google Contacts, Outlook),
  statuses and consent dates mapped, every other column kept; :mod:`.exporter` writes
  the list back out in listmonk's and Mailchimp's import formats.
* :mod:`.mutations` / :mod:`.importer` -- changes, written as :class:`Mutation`
  objects applied to a *fresh* read of the file under the lock.
* :mod:`.lockedfile` -- how a write reaches the disk: one lock file
  (``subscribers.csv.lock``) that every writer takes; temp file, fsync, rename, fsync
  of the folder; the old file kept as a timestamped backup (the last
  :data:`BACKUPS_KEPT`); a file changed on disk during a write (an admin saving from a
  spreadsheet) is re-read and the mutation re-applied.
* :mod:`.store` -- :class:`SubscriberStore`, a :class:`~.lockedfile.LockedFile`:
  streaming reads, stats, and the changes (add, status, purge, import); rows a
  mutation does not change are written back byte for byte.

Machines never rewrite the file per change. Beside it, under ``state_dir``:

* :mod:`.ledger` -- the consent ledger (``ledger.sqlite3``, WAL, synchronous=FULL):
  every machine change (web unsubscribe or confirmation, signup request, bounce,
  complaint, send-time refusal) is one row, durable at its commit; ``holds`` keep each
  address's suppression until the reader's own confirmation.
* :mod:`.index` -- the CSV's index (``index.sqlite3``: address -> line, status, change
  stamp), rebuilt by streaming whenever the file's signature changes.
* :mod:`.live` -- :class:`~.live.LiveList`: an address's status now (index + ledger),
  decisions recorded in one transaction, and the fold.
* :mod:`.fold` -- one atomic rewrite per batch of ledger changes; a hand edit is kept,
  a suppression or a change a stale spreadsheet save reverted is re-applied, and said.
* :mod:`.background` -- the one writer behind ``newsletter serve`` that folds after a
  quiet moment or N changes and keeps the index fresh.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from newsletter.audience.subscribers.addresses import (
        STATUSES,
        SUPPRESSED,
        AddressError,
        address_key,
        normalize_address,
        utc_now,
    )
    from newsletter.audience.subscribers.csvio import FIELDS, Header, format_row, neutralize_cell
    from newsletter.audience.subscribers.importer import ImportOutcome, ImportReport
    from newsletter.audience.subscribers.importfile import (
        ColumnUse,
        ImportEntry,
        ImportFile,
        read_import,
        read_import_file,
    )
    from newsletter.audience.subscribers.lockedfile import BACKUPS_KEPT
    from newsletter.audience.subscribers.mutations import AlreadySubscribedError, Edit, Mutation
    from newsletter.audience.subscribers.rows import Subscriber, SubscriberRow
    from newsletter.audience.subscribers.store import Stats, SubscriberStore

#: each public name -> its submodule: imported on first use (PEP 562), so a command that
#: reads the index does not pay for the import, CSV and address-checking code
_HOMES: dict[str, str] = {
    "STATUSES": "addresses",
    "SUPPRESSED": "addresses",
    "AddressError": "addresses",
    "address_key": "addresses",
    "normalize_address": "addresses",
    "utc_now": "addresses",
    "FIELDS": "csvio",
    "Header": "csvio",
    "format_row": "csvio",
    "neutralize_cell": "csvio",
    "ImportOutcome": "importer",
    "ImportReport": "importer",
    "ColumnUse": "importfile",
    "ImportEntry": "importfile",
    "ImportFile": "importfile",
    "read_import": "importfile",
    "read_import_file": "importfile",
    "BACKUPS_KEPT": "lockedfile",
    "AlreadySubscribedError": "mutations",
    "Edit": "mutations",
    "Mutation": "mutations",
    "Subscriber": "rows",
    "SubscriberRow": "rows",
    "Stats": "store",
    "SubscriberStore": "store",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "BACKUPS_KEPT",
    "FIELDS",
    "STATUSES",
    "SUPPRESSED",
    "AddressError",
    "AlreadySubscribedError",
    "ColumnUse",
    "Edit",
    "Header",
    "ImportEntry",
    "ImportFile",
    "ImportOutcome",
    "ImportReport",
    "Mutation",
    "Stats",
    "Subscriber",
    "SubscriberRow",
    "SubscriberStore",
    "address_key",
    "format_row",
    "neutralize_cell",
    "normalize_address",
    "read_import",
    "read_import_file",
    "utc_now",
]
