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

__all__ = ["BounceScore"]

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
