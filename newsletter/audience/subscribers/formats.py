"""Where a list comes from: recognising another tool's export by its header, and what
each of its columns means here.

Each source is a :class:`Source`: how to recognise its header, which of its columns is
the address, the name (or first/middle/last name), the status, consent dates, tags and
notes, and how its status values map to ours. Every other column is kept as an extra
column of the list. The column names follow each product's documented export:

* **Mailchimp** audience export (``subscribed_members_export_*.csv``,
  ``unsubscribed_members_...``, ``cleaned_members_...``): "Email Address",
  "First Name", "Last Name", MEMBER_RATING, OPTIN_TIME, OPTIN_IP, CONFIRM_TIME,
  CONFIRM_IP, LATITUDE, LONGITUDE, GMTOFF, DSTOFF, TIMEZONE, CC, REGION, LAST_CHANGED,
  LEID, EUID, NOTES, TAGS; the unsubscribed file adds UNSUB_TIME and UNSUB_CAMPAIGN_*,
  UNSUB_REASON*, the cleaned file CLEAN_TIME and CLEAN_CAMPAIGN_*. Which file it is
  (and so the status) shows in those columns. Times are UTC, ``YYYY-MM-DD HH:MM:SS``.
* **listmonk** export (uuid, email, name, attributes, status, created_at, updated_at;
  status enabled / disabled / blocklisted) or its import file (email, name, attributes).
* **Buttondown** export (id, email, creation_date, notes, metadata, tags,
  subscriber_type, source, ...).
* **Substack** email list (email, active_subscription, expiry, plan, email_disabled,
  created_at, first_payment_at).
* **Google Contacts** CSV ("E-mail 1 - Value", "Name" or "First Name"/"Given Name",
  "Labels"/"Group Membership"); **Outlook** CSV ("E-mail Address", "E-mail 2 Address",
  "First Name", "Middle Name", "Last Name", "Categories", "Notes").

An address book is not consent, so contacts from Google and Outlook come in as
``pending`` unless ``--status`` says otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Final

from newsletter.audience.subscribers.addresses import AddressError
from newsletter.audience.subscribers.cellvalues import (
    google_tags,
    list_tags,
    mailchimp_tags,
    split_on,
)

#: What a column of an import can become; anything else is kept as an extra column.
ROLES: Final = (
    "email",
    "name",
    "first_name",
    "middle_name",
    "last_name",
    "status",
    "source",
    "subscribed_at",
    "confirmed_at",
    "tags",
    "note",
    "attributes",  # JSON object: each key becomes an extra column
    "ignore",
)
NAME_PARTS: Final = ("first_name", "middle_name", "last_name")


def token(header: str) -> str:
    """A header cell compared loosely: ``E-mail 1 - Value`` -> ``email1value``."""
    return re.sub(r"[^0-9a-z]+", "", header.strip().lower())


Getter = Callable[[str], str]
"""A row's value by column token ("" when the file has no such column)."""


@dataclass(frozen=True, slots=True)
class Source:
    """One tool's export: how to know it, and what its columns mean."""

    key: str
    label: str
    matches: Callable[[frozenset[str]], bool]
    roles: Mapping[str, str]  # column token -> role
    status: Callable[[Getter, frozenset[str]], str | None] = lambda _get, _tokens: None
    default_status: str | None = None
    split_tags: Callable[[str], list[str]] = lambda text: split_on(text, ",")
    first_address: bool = False  # the address cell may hold several (" ::: ")
    describe: Callable[[frozenset[str]], str] = lambda _tokens: ""


def _mailchimp_kind(tokens: frozenset[str]) -> str:
    if "cleantime" in tokens:
        return "cleaned"
    if "unsubtime" in tokens:
        return "unsubscribed"
    return "subscribed"


_MAILCHIMP_STATUS: Final = {"cleaned": "bounced", "unsubscribed": "unsubscribed"}
_LISTMONK_STATUS: Final = {
    "enabled": "active",
    "disabled": "unsubscribed",
    "blocklisted": "unsubscribed",
}
_BUTTONDOWN_STATUS: Final = {
    "regular": "active",
    "premium": "active",
    "gifted": "active",
    "trialed": "active",
    "churning": "active",
    "past_due": "active",
    "paused": "active",
    "unactivated": "pending",
    "unpaid": "pending",
    "spammy": "pending",
    "unsubscribed": "unsubscribed",
    "removed": "unsubscribed",
    "blocked": "unsubscribed",
    "undeliverable": "bounced",
    "complained": "complained",
}


def _mapped_status(
    table: Mapping[str, str], column: str
) -> Callable[[Getter, frozenset[str]], str | None]:
    def status(get: Getter, _tokens: frozenset[str]) -> str | None:
        given = get(column).strip().lower()
        if not given:
            return None
        if given not in table:
            # an unknown state is not consent: hold it for confirmation
            return "pending"
        return table[given]

    return status


def _truthy(value: str) -> bool:
    return value.strip().lower() in ("true", "yes", "1", "t", "y")


SOURCES: Final[tuple[Source, ...]] = (
    Source(
        key="mailchimp",
        label="Mailchimp export",
        matches=lambda t: (
            "emailaddress" in t
            and bool(t & {"leid", "euid", "optintime", "memberrating", "confirmtime"})
        ),
        roles={
            "emailaddress": "email",
            "firstname": "first_name",
            "lastname": "last_name",
            "optintime": "subscribed_at",
            "confirmtime": "confirmed_at",
            "tags": "tags",
            "notes": "note",
        },
        status=lambda _get, t: _MAILCHIMP_STATUS.get(_mailchimp_kind(t), "active"),
        split_tags=mailchimp_tags,
        describe=lambda t: f"{_mailchimp_kind(t)} members",
    ),
    Source(
        key="listmonk",
        label="listmonk export",
        matches=lambda t: "email" in t and "attributes" in t,
        roles={
            "email": "email",
            "name": "name",
            "status": "status",
            "attributes": "attributes",
            "createdat": "subscribed_at",
        },
        status=_mapped_status(_LISTMONK_STATUS, "status"),
    ),
    Source(
        key="buttondown",
        label="Buttondown export",
        matches=lambda t: (
            bool(t & {"email", "emailaddress"})
            and bool(t & {"subscribertype", "creationdate", "secondaryid"})
        ),
        roles={
            "email": "email",
            "emailaddress": "email",
            "creationdate": "subscribed_at",
            "notes": "note",
            "tags": "tags",
            "metadata": "attributes",
            "subscribertype": "status",
        },
        status=_mapped_status(_BUTTONDOWN_STATUS, "subscribertype"),
        split_tags=list_tags,
    ),
    Source(
        key="substack",
        label="Substack email list",
        matches=lambda t: "email" in t and bool(t & {"emaildisabled", "activesubscription"}),
        roles={"email": "email", "createdat": "subscribed_at"},
        status=lambda get, _t: "unsubscribed" if _truthy(get("emaildisabled")) else "active",
    ),
    Source(
        key="google",
        label="Google Contacts CSV",
        matches=lambda t: "email1value" in t,
        roles={
            "email1value": "email",
            "name": "name",
            "firstname": "first_name",
            "givenname": "first_name",
            "middlename": "middle_name",
            "additionalname": "middle_name",
            "lastname": "last_name",
            "familyname": "last_name",
            "labels": "tags",
            "groupmembership": "tags",
            "notes": "note",
        },
        default_status="pending",
        split_tags=google_tags,
        first_address=True,
    ),
    Source(
        key="outlook",
        label="Outlook contacts CSV",
        matches=lambda t: "emailaddress" in t and bool(t & {"email2address", "emaildisplayname"}),
        roles={
            "emailaddress": "email",
            "firstname": "first_name",
            "middlename": "middle_name",
            "lastname": "last_name",
            "categories": "tags",
            "notes": "note",
        },
        default_status="pending",
        split_tags=lambda text: split_on(text, ";"),
    ),
)

#: A CSV that is none of the above: the list's own column spellings.
GENERIC_ROLES: Final = {
    **{t: "email" for t in ("email", "emailaddress", "mail", "emailaddr", "address", "e-mail")},
    **{t: "name" for t in ("name", "fullname", "displayname")},
    "firstname": "first_name",
    "lastname": "last_name",
    "status": "status",
    "state": "status",
    "source": "source",
    **{
        t: "subscribed_at"
        for t in ("subscribedat", "subscribed", "subscribedon", "signedupat", "createdat")
    },
    **{t: "confirmed_at" for t in ("confirmedat", "confirmed", "confirmedon")},
    **{t: "note" for t in ("note", "notes", "comment", "comments")},
    "tags": "tags",
}


@dataclass(slots=True)
class Detected:
    """The source found for a header, and each column's role (None: kept as extra)."""

    source: Source | None  # None: a CSV of the list's own kind
    label: str
    roles: list[str | None] = field(default_factory=list)


def detect_source(cells: list[str]) -> Detected:
    """Recognise the export a header row belongs to, and give each column its role."""
    tokens = frozenset(token(c) for c in cells)
    for source in SOURCES:
        if source.matches(tokens):
            detail = source.describe(tokens)
            label = f"{source.label} ({detail})" if detail else source.label
            return Detected(source, label, _assign(cells, source.roles))
    return Detected(None, "a CSV of addresses", _assign(cells, GENERIC_ROLES))


def _assign(cells: list[str], roles: Mapping[str, str]) -> list[str | None]:
    taken: set[str] = set()
    result: list[str | None] = []
    for cell in cells:
        role = roles.get(token(cell))
        # the first column with a role has it ("E-mail 2 Address" stays extra); a name
        # part may come twice in exports that carry both spellings: the first wins
        if role is not None and role in taken and role != "tags":
            role = None
        if role is not None:
            taken.add(role)
        result.append(role)
    return result


def apply_map(detected: Detected, cells: list[str], mapping: Mapping[str, str]) -> None:
    """``--map "COLUMN=ROLE"``: give a column a role, or ``ignore`` it.

    Raises :class:`AddressError` naming the columns seen (or the roles known).
    """
    for column, role in mapping.items():
        role = role.strip().lower()
        if role not in ROLES:
            raise AddressError(
                f"--map {column}={role}: unknown field {role!r} (expected one of "
                f"{', '.join(ROLES)})"
            )
        wanted = [i for i, c in enumerate(cells) if c.strip().lower() == column.strip().lower()]
        if not wanted:
            wanted = [i for i, c in enumerate(cells) if token(c) == token(column)]
        if not wanted:
            raise AddressError(
                f"--map {column}={role}: no column {column!r} in the file (columns: "
                f"{', '.join(c.strip() for c in cells)})"
            )
        if role not in ("ignore", "tags"):
            # one column per role: the one named here takes it from a detected one
            detected.roles = [None if r == role else r for r in detected.roles]
        detected.roles[wanted[0]] = role


def parse_map(values: list[str]) -> dict[str, str]:
    """``["Work email=email"]`` -> ``{"Work email": "email"}`` (AddressError if malformed)."""
    result: dict[str, str] = {}
    for value in values:
        column, eq, role = value.rpartition("=")
        if not eq or not column.strip() or not role.strip():
            raise AddressError(f'--map {value!r}: expected "COLUMN=FIELD", e.g. "Work email=email"')
        result[column.strip()] = role.strip()
    return result
