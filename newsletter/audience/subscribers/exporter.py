"""Leaving is as easy as arriving: the list in the import formats of other tools.

* ``listmonk``: ``email,name,attributes`` (listmonk's CSV import), the attributes a
  JSON object holding status, source, consent dates, tags and every extra column.
  listmonk imports a file either as subscriptions or as a blocklist, so export the
  active rows for the one and the unsubscribed/bounced/complained rows for the other.
* ``mailchimp``: "Email Address", "First Name", "Last Name", "Tags" (comma-separated,
  as Mailchimp's import maps them), OPTIN_TIME, CONFIRM_TIME, then every extra column.
  Mailchimp asks for the status of a whole import, so export one status at a time.

Only valid rows are exported; the caller counts the others.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Final

from newsletter.audience.subscribers.cellvalues import split_tags_column
from newsletter.audience.subscribers.csvio import FIELDS, Header
from newsletter.audience.subscribers.rows import Subscriber, SubscriberRow

_MAILCHIMP_HEAD: Final = (
    "Email Address",
    "First Name",
    "Last Name",
    "Tags",
    "OPTIN_TIME",
    "CONFIRM_TIME",
)


def split_name(name: str) -> tuple[str, str]:
    """``"Ada King Lovelace"`` -> ``("Ada King", "Lovelace")``; one word is a first name."""
    parts = name.split()
    if len(parts) < 2:
        return name.strip(), ""
    return " ".join(parts[:-1]), parts[-1]


def extra_columns(header: Header) -> list[tuple[int, str]]:
    """The columns that are not one of the list's own fields (nor ``tags``)."""
    known = set(header.index[f] for f in FIELDS if f in header.index)
    return [
        (i, cell.strip())
        for i, cell in enumerate(header.cells)
        if i not in known and cell.strip() and cell.strip().lower() != "tags"
    ]


def _tags_index(header: Header) -> int | None:
    for i, cell in enumerate(header.cells):
        if cell.strip().lower() == "tags":
            return i
    return None


def _cell(cells: Sequence[str], i: int | None) -> str:
    return cells[i].strip() if i is not None and i < len(cells) else ""


def _mailchimp_time(value: str) -> str:
    # Mailchimp's own exports write "YYYY-MM-DD HH:MM:SS" (UTC); its import reads that
    return value.replace("T", " ").removesuffix("Z") if value else ""


def export_rows(
    header: Header, rows: Iterator[tuple[SubscriberRow, Subscriber]], fmt: str
) -> Iterator[list[str]]:
    """The header line, then one line per row, in format ``fmt`` (listmonk, mailchimp)."""
    extras = extra_columns(header)
    tags_at = _tags_index(header)
    if fmt == "listmonk":
        yield ["email", "name", "attributes"]
    else:
        yield [*_MAILCHIMP_HEAD, *(name for _i, name in extras)]
    for row, sub in rows:
        tags = split_tags_column(_cell(row.cells, tags_at))
        if fmt == "listmonk":
            attributes: dict[str, object] = {
                "status": sub.status,
                "source": sub.source,
                "subscribed_at": sub.subscribed_at,
                "confirmed_at": sub.confirmed_at,
            }
            if tags:
                attributes["tags"] = tags
            if sub.note:
                attributes["note"] = sub.note
            for i, name in extras:
                value = _cell(row.cells, i)
                if value:
                    attributes[name] = value
            yield [sub.email, sub.name, json.dumps(attributes, ensure_ascii=False)]
        else:
            first, last = split_name(sub.name)
            yield [
                sub.email,
                first,
                last,
                ",".join(tags),
                _mailchimp_time(sub.subscribed_at),
                _mailchimp_time(sub.confirmed_at),
                *(_cell(row.cells, i) for i, _name in extras),
            ]
