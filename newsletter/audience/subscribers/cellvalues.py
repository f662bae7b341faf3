"""What other tools write in a cell: dates, tag lists, JSON attributes, read as ours.

Pure functions; :mod:`.formats` says which tool's cells need which.
"""

from __future__ import annotations

import csv
import json
import re
from datetime import UTC, datetime
from typing import Final

TAG_SEPARATOR: Final = "; "
"""How the ``tags`` column joins tags (the order they came in, each once)."""


def split_on(text: str, sep: str) -> list[str]:
    return [part.strip() for part in text.split(sep) if part.strip()]


def mailchimp_tags(text: str) -> list[str]:
    # Mailchimp writes each tag quoted: "Board","Donors 2023"
    try:
        cells = next(csv.reader([text]), [])
    except csv.Error:
        cells = text.split(",")
    return [c.strip().strip('"').strip() for c in cells if c.strip().strip('"').strip()]


def list_tags(text: str) -> list[str]:
    # Buttondown: a JSON list, or a plain comma-separated list
    text = text.strip()
    if text.startswith("["):
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if isinstance(data, list):
            return [str(t).strip() for t in data if str(t).strip()]
        text = text.strip("[]")
    return [t.strip().strip("'\"") for t in text.split(",") if t.strip().strip("'\"")]


def google_tags(text: str) -> list[str]:
    # Google joins labels with " ::: "; "* myContacts", "* starred" are system groups
    return [t for t in split_on(text, ":::") if not t.startswith("*")]


def normalize_date(value: str) -> str | None:
    """An export's date as ISO 8601 UTC (``2024-05-01T09:30:00Z``); None if not a date.

    Naive times are taken as UTC (Mailchimp, Substack and listmonk export UTC); a plain
    number is a Unix time.
    """
    text = value.strip()
    if not text:
        return ""
    try:
        if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
            moment = datetime.fromtimestamp(float(text), UTC)
        else:
            moment = datetime.fromisoformat(
                text.replace("Z", "+00:00") if text.endswith("Z") else text
            )
    except (ValueError, OverflowError, OSError):
        return None
    if len(text) == 10 and text[4] == "-":
        return moment.strftime("%Y-%m-%d")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def flatten_attributes(text: str) -> dict[str, str] | None:
    """A JSON object's top-level keys as text values (nested values stay JSON); None if
    the cell is not a JSON object."""
    text = text.strip()
    if not text:
        return {}
    try:
        data = json.loads(text)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    return {
        str(k): v if isinstance(v, str) else json.dumps(v, ensure_ascii=False)
        for k, v in data.items()
    }


def join_tags(tags: list[str]) -> str:
    """Tags in the order first seen, each once (case-insensitively), for the tags column."""
    seen: dict[str, str] = {}
    for tag in tags:
        seen.setdefault(tag.casefold(), tag)
    return TAG_SEPARATOR.join(seen.values())


def split_tags_column(text: str) -> list[str]:
    """The list's own ``tags`` column back into tags."""
    return split_on(text, TAG_SEPARATOR.strip())
