"""Scheduled sends: when an issue should go out, and who has claimed it.

A local schedule is sent by ``newsletter run-due``; a SendGrid one is handed off at once
with ``send_at`` and a ``batch_id`` (SendGrid holds it, at most 72 h) and only its
cancellation passes through here. One SQLite row per issue
(``.newsletter/schedule.sqlite3``)::

    scheduled ──> running ──> done | failed      (``newsletter run-due`` claims it)
        │    └──> missed     (due long ago: sending hours late is refused, asked again)
        └──> cancelled       (``newsletter cancel``)

Claiming is one ``UPDATE ... WHERE state = 'scheduled'`` in an immediate transaction,
so two ``run-due`` started by the same timer tick cannot both send: the one whose update
changed the row runs, the other sees it taken. Times are stored in UTC; the zone the
editor named is kept for display.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from newsletter.database import open_database, rollback
from newsletter.errors import UsageError

SCHEDULE_NAME = "schedule.sqlite3"
#: SendGrid accepts send_at at most 72 hours ahead.
SENDGRID_HORIZON = dt.timedelta(hours=72)
#: A due send found later than this (the machine was off) is not sent unasked.
DEFAULT_GRACE = dt.timedelta(hours=1)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS schedules (
    issue       TEXT PRIMARY KEY,
    send_at     TEXT NOT NULL,
    zone        TEXT NOT NULL,
    via         TEXT NOT NULL CHECK (via IN ('local', 'sendgrid')),
    batch_id    TEXT,
    run         INTEGER,
    state       TEXT NOT NULL CHECK (state IN
                ('scheduled', 'running', 'done', 'failed', 'missed', 'cancelled')),
    note        TEXT,
    created_at  TEXT NOT NULL,
    updated_at  TEXT NOT NULL
);
"""


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def parse_when(text: str, zone: str | None, *, now: dt.datetime) -> tuple[dt.datetime, str]:
    """``"2026-12-15 09:00"`` in ``zone`` (default: this machine's) -> (UTC time, zone name).
    A time in the past, or one that is not a time, is a usage error that says why."""
    try:
        tz = ZoneInfo(zone) if zone else None
    except (ZoneInfoNotFoundError, ValueError):
        raise UsageError(
            f"--tz {zone}: not a time zone", hint="use a name such as America/New_York"
        ) from None
    try:
        naive = dt.datetime.fromisoformat(text.strip().replace("T", " "))
    except ValueError:
        raise UsageError(
            f"--at {text!r}: not a date and time",
            hint='write it as "YYYY-MM-DD HH:MM", e.g. --at "2026-12-15 09:00"',
        ) from None
    local = naive if naive.tzinfo else naive.replace(tzinfo=tz) if tz else naive.astimezone()
    name = zone or str(local.tzinfo or "UTC")
    when = local.astimezone(dt.UTC)
    if when <= now:
        raise UsageError(
            f"--at {text!r} ({_show(when, name)}) is in the past",
            hint="pick a later time, or send now without --at",
        )
    return when, name


def _show(when: dt.datetime, zone: str) -> str:
    try:
        local = when.astimezone(ZoneInfo(zone))
    except (ZoneInfoNotFoundError, ValueError):
        local = when
    return f"{local:%Y-%m-%d %H:%M} {zone} ({when:%Y-%m-%d %H:%M} UTC)"


@dataclass(frozen=True, slots=True)
class Schedule:
    issue: str
    send_at: dt.datetime
    zone: str
    via: str
    batch_id: str | None
    state: str
    note: str | None
    run: int | None = None  # the journal's run that handed a SendGrid schedule off

    @property
    def shown(self) -> str:
        """The time as the editor wrote it, with UTC beside it."""
        return _show(self.send_at, self.zone)


class Schedules:
    """The schedule database at ``path``."""

    def __init__(self, path: Path) -> None:
        self.db = open_database(path, _SCHEMA, what="the send schedule")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Schedules:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _row(
        self, row: tuple[str, str, str, str, str | None, str, str | None, int | None]
    ) -> Schedule:
        issue, send_at, zone, via, batch_id, state, note, run = row
        when = dt.datetime.fromisoformat(send_at)
        return Schedule(issue, when, zone, via, batch_id, state, note, run)

    def get(self, issue: str) -> Schedule | None:
        row = self.db.execute(
            "SELECT issue, send_at, zone, via, batch_id, state, note, run FROM schedules "
            "WHERE issue = ?",
            (issue,),
        ).fetchone()
        return None if row is None else self._row(row)

    def all(self) -> Iterator[Schedule]:
        for row in self.db.execute(
            "SELECT issue, send_at, zone, via, batch_id, state, note, run FROM schedules "
            "ORDER BY send_at"
        ):
            yield self._row(row)

    def add(
        self,
        issue: str,
        when: dt.datetime,
        zone: str,
        *,
        via: str,
        batch_id: str | None = None,
        run: int | None = None,
    ) -> None:
        """Schedule ``issue`` (replacing a schedule that is not pending or running)."""
        now = utc_now().isoformat(timespec="seconds")
        self.db.execute("BEGIN IMMEDIATE")
        try:
            current = self.get(issue)
            if current is not None and current.state in ("scheduled", "running"):
                raise UsageError(
                    f"{issue} is already {current.state} for {current.shown}",
                    hint=f"`newsletter cancel {issue}` first to change the time",
                )
            self.db.execute(
                "INSERT OR REPLACE INTO schedules (issue, send_at, zone, via, batch_id, run, "
                "state, note, created_at, updated_at) "
                "VALUES (?, ?, ?, ?, ?, ?, 'scheduled', NULL, ?, ?)",
                (issue, when.isoformat(timespec="seconds"), zone, via, batch_id, run, now, now),
            )
            self.db.execute("COMMIT")
        except BaseException:
            rollback(self.db)
            raise

    def due(self, now: dt.datetime) -> list[Schedule]:
        """Local schedules whose time has come (SendGrid sends its own)."""
        ready = (s for s in self.all() if s.state == "scheduled" and s.via == "local")
        return [s for s in ready if s.send_at <= now]

    def claim(self, issue: str) -> bool:
        """Take a due schedule for this process; False when another run took it first."""
        cur = self.db.execute(
            "UPDATE schedules SET state = 'running', updated_at = ? "
            "WHERE issue = ? AND state = 'scheduled'",
            (utc_now().isoformat(timespec="seconds"), issue),
        )
        return cur.rowcount == 1

    def finish(self, issue: str, state: str, note: str | None = None) -> None:
        self.db.execute(
            "UPDATE schedules SET state = ?, note = ?, updated_at = ? WHERE issue = ?",
            (state, note, utc_now().isoformat(timespec="seconds"), issue),
        )
