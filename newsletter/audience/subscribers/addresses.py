"""Addresses and statuses: syntax checks (no DNS), normalisation, identity keys."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Final

from newsletter.emailsyntax import MAX_ADDRESS, MAX_LOCAL, ROLE_MAILBOXES, quick_normalize
from newsletter.errors import NewsletterError

STATUSES: Final = ("pending", "active", "unsubscribed", "bounced", "complained")
SUPPRESSED: Final = frozenset({"unsubscribed", "bounced", "complained"})
"""Statuses that only an explicit ``--force`` (or a confirmation) may turn back."""
STATUS_LIST: Final = ", ".join(STATUSES)


class AddressError(NewsletterError, ValueError):
    """An address or status handed to the store is not valid."""


def utc_now() -> str:
    """The current time as ISO 8601 UTC, to the second: ``2024-05-01T09:30:00Z``."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


_FAST_LOCAL: Final = re.compile(r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*\Z")
_domains: dict[str, tuple[str, int]] = {}  # domain as typed -> (normalised, longest form)


def normalize_address(value: str) -> str:
    """Check an address's syntax (no DNS) and return its normalised form.

    Raises :class:`AddressError`. Internationalised local parts and domains are
    accepted; an IDNA ``xn--`` domain is normalised to Unicode, so both spellings
    compare equal. ``email-validator`` decides, except for two quick paths that take a
    strict subset of what it accepts and give the same result (both are tested against
    it): a plain ASCII address (:func:`~newsletter.emailsyntax.quick_normalize`, which
    keeps ``email-validator`` from being imported for a list of ordinary addresses), and
    a plain ASCII local part at a domain one of them has already accepted.
    """
    value = value.strip()
    local, at, domain = value.rpartition("@")
    known = _domains.get(domain) if at else None
    if (
        known is not None
        and len(local) <= MAX_LOCAL
        and _FAST_LOCAL.match(local)
        and local.lower() not in ROLE_MAILBOXES
        and len(local) + 1 + known[1] <= MAX_ADDRESS
    ):
        return f"{local}@{known[0]}"
    quick = quick_normalize(value)
    if quick is not None:
        if len(_domains) < 100_000:
            _domains[domain] = (quick[len(local) + 1 :], len(domain))
        return quick
    # imported here, not at start-up: it compiles its grammar's regexes (about 20 ms)
    from email_validator import EmailNotValidError, validate_email

    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise AddressError(f"not a valid address {value!r}: {exc}") from None
    if at and len(_domains) < 100_000:
        longest = max(len(domain.encode()), len(result.domain.encode()), len(result.ascii_domain))
        _domains[domain] = (result.domain, longest)
    return result.normalized


def address_key(value: str) -> str:
    """The identity of an address: normalised and lowercased (raises AddressError)."""
    return normalize_address(value).lower()


def check_status(status: str) -> str:
    clean = status.strip().lower()
    if clean not in STATUSES:
        raise AddressError(f"unknown status {status!r} (expected one of {STATUS_LIST})")
    return clean


_valid_dates: dict[str, None] = {}  # recently seen valid dates: rows share timestamps


def is_iso_date(value: str) -> bool:
    """Whether ``value`` parses as an ISO 8601 date or date-time."""
    if value in _valid_dates:
        return True
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    if len(_valid_dates) >= 10_000:
        _valid_dates.clear()
    _valid_dates[value] = None
    return True
