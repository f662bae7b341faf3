"""Soft bounces: temporary failures counted per reader (Mailman's bounce score).

One table beside the inbound records (``settings.state_dir / "inbound.sqlite3"``):
each attributed temporary failure is a row (reader, issue, when). A reader's score is
the number of *distinct issues* that failed for them within the window
(``NEWSLETTER_SOFT_BOUNCE_DAYS``) and after the last delivery recorded for them
(:meth:`BounceScore.note_delivered`); reaching ``NEWSLETTER_SOFT_BOUNCE_LIMIT`` makes
the reader ``bounced``. Several delay warnings about the same issue count once.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from newsletter.audience.subscribers.addresses import address_key
from newsletter.database import open_database

if TYPE_CHECKING:
    from newsletter.audience.events import EventAction

__all__ = ["BounceScore", "SoftBounces", "score_deliveries"]

DAY = 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS soft_bounces (
    email TEXT NOT NULL,
    issue TEXT NOT NULL,
    at    REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS soft_bounces_by_email ON soft_bounces (email, at);
CREATE TABLE IF NOT EXISTS deliveries (
    email TEXT PRIMARY KEY,
    at    REAL NOT NULL
);
"""


class BounceScore:
    """The soft-bounce tables on an open connection (the inbound records' database)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db
        self.db.executescript(_SCHEMA)

    def note_soft_bounce(
        self, email: str, issue: str, *, days: int, now: float | None = None
    ) -> int:
        """Count a temporary failure of ``issue`` for ``email``; the reader's score now."""
        when = time.time() if now is None else now
        key = email.strip().lower()
        self.db.execute(
            "INSERT INTO soft_bounces (email, issue, at) VALUES (?, ?, ?)", (key, issue, when)
        )
        return self.score(key, days=days, now=when)

    def score(self, email: str, *, days: int, now: float | None = None) -> int:
        """Distinct issues that failed temporarily within ``days``, since the last delivery."""
        when = time.time() if now is None else now
        key = email.strip().lower()
        row = self.db.execute("SELECT at FROM deliveries WHERE email = ?", (key,)).fetchone()
        since = max(when - days * DAY, float(row[0]) if row else 0.0)
        found = self.db.execute(
            "SELECT count(DISTINCT issue) FROM soft_bounces WHERE email = ? AND at > ?",
            (key, since),
        ).fetchone()
        return int(found[0])

    def note_delivered(self, email: str, *, now: float | None = None) -> None:
        """A delivery to ``email`` was reported: its count starts again."""
        when = time.time() if now is None else now
        self.db.execute(
            "INSERT INTO deliveries (email, at) VALUES (?, ?) "
            "ON CONFLICT(email) DO UPDATE SET at = max(at, excluded.at)",
            (email.strip().lower(), when),
        )


@dataclass(frozen=True, slots=True)
class SoftBounces:
    """Where the soft-bounce score lives and when it makes a reader bounced."""

    database: Path  # the inbound records' database, which holds the score
    limit: int
    days: int


def score_deliveries(
    soft: SoftBounces, actions: Sequence[EventAction]
) -> dict[str, tuple[str, str]]:
    """SendGrid's ``delivered`` resets a reader's soft-bounce count; ``deferred`` adds
    the issue to it (a delay counts once per issue). Readers at the limit come back as
    suppressions, as a mailbox delay report would make them."""
    signals = [a for a in actions if a.event in ("delivered", "deferred") and a.email]
    if not signals:
        return {}
    db = open_database(soft.database, "", what="the soft-bounce score")
    try:
        score = BounceScore(db)
        over: dict[str, tuple[str, str]] = {}
        for a in signals:
            if a.event == "delivered":
                score.note_delivered(a.email, now=a.occurred_at)
            elif score.note_soft_bounce(
                a.email, a.issue or "?", days=soft.days, now=a.occurred_at
            ) >= soft.limit:
                note = (
                    f"bounced: deferred by the receiver on {soft.limit} issues "
                    f"within {soft.days} days"
                )
                over[address_key(a.email)] = ("bounced", note)
        return over
    finally:
        db.close()
