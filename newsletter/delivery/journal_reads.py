"""What the journal tells those who read it: counts per state, the problem rows, which
issues went out, the last run, and how two issues' recipients differ. `status`, the
send's gates, the archive, doctor and reports read these; the send loop's writes are
:mod:`.journal`."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

STATES = ("pending", "in_flight", "sent", "failed", "uncertain", "skipped")


@dataclass(frozen=True, slots=True)
class Delivery:
    """One journal row."""

    id: int
    key: str
    email: str
    name: str
    state: str
    provider_id: str
    reason: str
    permanent: bool
    attempts: int
    updated_at: str


@dataclass(frozen=True, slots=True)
class RecipientDiff:
    """This issue's recipients against an earlier issue's (keys are lower-cased addresses)."""

    added: int
    removed: list[str]


class JournalReads:
    """The read-only queries of :class:`~.journal.Journal` (a mixin over its connection)."""

    db: sqlite3.Connection
    _focused: bool

    def next_pending(self, issue: str, limit: int, after: int = 0) -> list[Delivery]:
        # One row holding them all (a JSON array): fetching row by row would wait for the
        # GIL once per row while the send loop's workers run.
        only = " AND key IN (SELECT key FROM focus)" if self._focused else ""
        (found,) = self.db.execute(
            f"SELECT json_group_array(json_array({_COLUMNS})) FROM (SELECT * FROM deliveries "
            f"WHERE issue = ? AND state = 'pending' AND id > ?{only} ORDER BY id LIMIT ?)",
            (issue, after, limit),
        ).fetchone()
        return [Delivery(*row) for row in json.loads(found)]

    def pending_rows(
        self, issue: str, limit: int, after: int = 0
    ) -> list[tuple[int, str, str, str]]:
        """``(id, key, email, name)`` of pending rows after ``after``, in order: what
        :meth:`next_pending` gives, without an object per row (SendGrid's 1,000 a request)."""
        only = " AND key IN (SELECT key FROM focus)" if self._focused else ""
        (found,) = self.db.execute(
            "SELECT json_group_array(json_array(id, key, email, name)) FROM (SELECT * FROM "
            f"deliveries WHERE issue = ? AND state = 'pending' AND id > ?{only} ORDER BY id "
            "LIMIT ?)",
            (issue, after, limit),
        ).fetchone()
        return [tuple(row) for row in json.loads(found)]

    def counts(self, issue: str) -> dict[str, int]:
        counts = dict.fromkeys(STATES, 0)
        for state, n in self.db.execute(
            "SELECT state, count(*) FROM deliveries WHERE issue = ? GROUP BY state", (issue,)
        ):
            counts[state] = n
        counts["failed_permanent"] = self.db.execute(
            "SELECT count(*) FROM deliveries WHERE issue = ? AND state = 'failed' AND permanent",
            (issue,),
        ).fetchone()[0]
        return counts

    def rows(self, issue: str, states: Sequence[str]) -> Iterator[Delivery]:
        marks = ",".join("?" * len(states))
        cur = self.db.execute(
            f"SELECT {_COLUMNS} FROM deliveries WHERE issue = ? AND state IN ({marks}) ORDER BY id",
            (issue, *states),
        )
        for row in cur:
            yield Delivery(*row)

    def states_of(self, issue: str, keys: Sequence[str]) -> dict[str, tuple[str, bool]]:
        """``key -> (state, permanent)`` for those of ``keys`` the journal knows."""
        if not keys:
            return {}
        marks = ",".join("?" * len(keys))
        return {
            key: (state, bool(permanent))
            for key, state, permanent in self.db.execute(
                f"SELECT key, state, permanent FROM deliveries WHERE issue = ? "
                f"AND key IN ({marks})",
                (issue, *keys),
            )
        }

    def knows_run(self, issue: str, run: int, started_at: str) -> bool:
        """Whether this journal holds run ``run`` of ``issue``, begun at ``started_at``
        (a journal replaced, restored from before it, or that lost it with its -wal, not)."""
        found = self.db.execute(
            "SELECT 1 FROM runs WHERE id = ? AND issue = ? AND started_at = ?",
            (run, issue, started_at),
        ).fetchone()
        return found is not None

    def pending_keys(self, issue: str) -> Iterator[str]:
        """Every recipient still to be sent ``issue``, in journal order (streamed)."""
        for (key,) in self.db.execute(
            "SELECT key FROM deliveries WHERE issue = ? AND state = 'pending' ORDER BY id",
            (issue,),
        ):
            yield key

    def sent_issues(self) -> set[str]:
        """Issues that reached (or may have reached) a reader: public, for the archive."""
        return {
            row[0]
            for row in self.db.execute(
                # one index look-up an issue, not a read of every sent row
                f"WITH i(issue) AS ({_ISSUES}) SELECT issue FROM i WHERE EXISTS "
                "(SELECT 1 FROM deliveries AS d WHERE d.issue = i.issue "
                "AND d.state IN ('sent', 'uncertain'))"
            )
        }

    def recipient_diff(self, issue: str, earlier: str) -> RecipientDiff:
        """Who this issue goes to that ``earlier`` did not reach, and who it reached that
        this one no longer goes to (skipped rows are not recipients)."""
        now = "SELECT key FROM deliveries WHERE issue = ? AND state != 'skipped'"
        then = "SELECT key FROM deliveries WHERE issue = ? AND state IN ('sent', 'uncertain')"
        (added,) = self.db.execute(
            f"SELECT count(*) FROM ({now}) WHERE key NOT IN ({then})", (issue, earlier)
        ).fetchone()
        removed = [
            row[0]
            for row in self.db.execute(
                f"SELECT key FROM ({then}) WHERE key NOT IN ({now}) ORDER BY key",
                (earlier, issue),
            )
        ]
        return RecipientDiff(int(added), removed)

    def last_run(self, issue: str) -> tuple[str, str, str | None, str | None] | None:
        row = self.db.execute(
            "SELECT transport, started_at, finished_at, result FROM runs WHERE issue = ? "
            "ORDER BY id DESC LIMIT 1",
            (issue,),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])


#: the issues, one (issue, key) index look-up each: a journal of many issues holds
#: millions of rows, and SELECT DISTINCT would read every one
_ISSUES = (
    "WITH RECURSIVE n(issue) AS (SELECT min(issue) FROM deliveries UNION ALL "
    "SELECT (SELECT min(issue) FROM deliveries WHERE issue > n.issue) FROM n "
    "WHERE n.issue IS NOT NULL) SELECT issue FROM n WHERE issue IS NOT NULL"
)

_COLUMNS = (
    "id, key, email, name, state, coalesce(provider_id, ''), coalesce(reason, ''), "
    "permanent, attempts, updated_at"
)
