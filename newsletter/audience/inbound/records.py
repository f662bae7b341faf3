"""What happened to every inbound message, and the review queue: one SQLite file.

``settings.state_dir / "inbound.sqlite3"`` (WAL mode) holds:

* ``messages`` -- one row per inbound message, keyed by a stable *identity*: its
  Message-ID when present and sane, else ``sha256:`` of the raw bytes. A *different*
  message reusing a Message-ID already recorded (its bytes differ) is not a duplicate:
  it gets its own row, ``mid:<id>#sha256:<hex of raw>`` (:meth:`Records.identity_of`),
  and the pipeline queues it for review instead of acting on it. The row keeps the
  source, the classification (kind, addresses, reason, excerpt), what was done
  (``outcome`` and a one-line ``detail``), the raw bytes (so nothing is ever lost) and
  the review state: ``none`` (nothing for a human), ``open``, ``approved``,
  ``rejected`` or ``ignored``. A message is first *claimed* (outcome ``received``),
  then acted on, then *finished*; a row still ``received`` was interrupted and is
  handled again, a finished one never is (re-running changes nothing).
* ``confirmations`` -- when a confirmation email went to which address: the per-address
  rate limit.
* ``imap_seen`` -- ``(account, UIDVALIDITY, UID)`` of IMAP messages already handled, so a
  restart does not fetch them again; a new UIDVALIDITY makes every UID unknown again
  (the identity still stops a message from being handled twice).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.parser import BytesHeaderParser
from email.policy import compat32
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from newsletter.audience.inbound.safety import clean_header_text
from newsletter.database import open_database
from newsletter.errors import NewsletterError

if TYPE_CHECKING:
    from newsletter.config import Settings

__all__ = [
    "REVIEW_STATES",
    "InboundRecord",
    "Records",
    "ReviewState",
    "message_identity",
]

ReviewState = Literal["none", "open", "approved", "rejected", "ignored"]
REVIEW_STATES: tuple[ReviewState, ...] = ("none", "open", "approved", "rejected", "ignored")
RECEIVED = "received"  # claimed, not yet finished
DAY = 24 * 3600

_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id          INTEGER PRIMARY KEY,
    identity    TEXT NOT NULL UNIQUE,
    source      TEXT NOT NULL,
    source_id   TEXT NOT NULL,
    received_at TEXT NOT NULL,
    updated_at  TEXT NOT NULL,
    sender      TEXT,
    subject     TEXT NOT NULL DEFAULT '',
    kind        TEXT NOT NULL DEFAULT '',
    addresses   TEXT NOT NULL DEFAULT '[]',
    outcome     TEXT NOT NULL,
    detail      TEXT NOT NULL DEFAULT '',
    reason      TEXT NOT NULL DEFAULT '',
    excerpt     TEXT NOT NULL DEFAULT '',
    raw         BLOB NOT NULL,
    review      TEXT NOT NULL DEFAULT 'none' CHECK (review IN
                  ('none','open','approved','rejected','ignored')),
    reviewed_at TEXT,
    review_note TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS messages_by_review ON messages (review, id);
CREATE TABLE IF NOT EXISTS confirmations (
    id      INTEGER PRIMARY KEY,
    email   TEXT NOT NULL,
    sent_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS confirmations_by_email ON confirmations (email, sent_at);
CREATE TABLE IF NOT EXISTS imap_seen (
    account     TEXT NOT NULL,
    uidvalidity INTEGER NOT NULL,
    uid         INTEGER NOT NULL,
    identity    TEXT NOT NULL,
    PRIMARY KEY (account, uidvalidity, uid)
);
"""

_SANE_MESSAGE_ID = re.compile(r"<[!-;=?-~]{1,250}@[!-;=?-~]{1,250}>")


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def message_identity(raw: bytes) -> str:
    """``mid:<id@host>`` for a sane Message-ID (printable ASCII, one ``@``, in angle
    brackets, at most 250 characters each side), else ``sha256:<hex of raw>``."""
    try:
        headers = BytesHeaderParser(policy=compat32).parsebytes(raw)
        values = headers.get_all("Message-ID") or []
    except Exception:  # hostile headers: fall back to the hash
        values = []
    if len(values) == 1:
        text = clean_header_text(values[0], limit=520).strip()
        if _SANE_MESSAGE_ID.fullmatch(text) and text.count("@") == 1:
            return "mid:" + text
    return "sha256:" + hashlib.sha256(raw).hexdigest()


@dataclass(frozen=True, slots=True)
class InboundRecord:
    """One row of ``messages``."""

    id: int
    identity: str
    source: str
    source_id: str
    received_at: str
    updated_at: str
    sender: str | None
    subject: str
    kind: str
    addresses: tuple[str, ...]
    outcome: str
    detail: str
    reason: str
    excerpt: str
    review: ReviewState
    reviewed_at: str | None
    review_note: str

    @property
    def finished(self) -> bool:
        return self.outcome != RECEIVED


_COLUMNS = (
    "id, identity, source, source_id, received_at, updated_at, sender, subject, kind, "
    "addresses, outcome, detail, reason, excerpt, review, reviewed_at, review_note"
)


def _record(row: Sequence[object]) -> InboundRecord:
    values = list(row)
    addresses = json.loads(str(values[9]))
    return InboundRecord(
        id=int(str(values[0])),
        identity=str(values[1]),
        source=str(values[2]),
        source_id=str(values[3]),
        received_at=str(values[4]),
        updated_at=str(values[5]),
        sender=None if values[6] is None else str(values[6]),
        subject=str(values[7]),
        kind=str(values[8]),
        addresses=tuple(str(a) for a in addresses),
        outcome=str(values[10]),
        detail=str(values[11]),
        reason=str(values[12]),
        excerpt=str(values[13]),
        review=str(values[14]),  # type: ignore[arg-type]
        reviewed_at=None if values[15] is None else str(values[15]),
        review_note=str(values[16]),
    )


class Records:
    """The inbound records database at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.db = open_database(path, _SCHEMA, what="the inbound records")

    @classmethod
    def from_settings(cls, settings: Settings) -> Records:
        return cls(settings.state_dir / "inbound.sqlite3")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Records:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # Messages ---------------------------------------------------------------------------
    def get(self, record_id: int) -> InboundRecord | None:
        row = self.db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (record_id,))
        found = row.fetchone()
        return None if found is None else _record(found)

    def require(self, record_id: int) -> InboundRecord:
        """The record, or a NewsletterError naming the id."""
        record = self.get(record_id)
        if record is None:
            raise NewsletterError(
                f"{self.path}: no inbound message with id {record_id}",
                hint="list the open ones with: newsletter signups review",
            )
        return record

    def by_identity(self, identity: str) -> InboundRecord | None:
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM messages WHERE identity = ?", (identity,)
        ).fetchone()
        return None if row is None else _record(row)

    def identity_of(self, raw: bytes) -> tuple[str, int | None]:
        """The identity to record ``raw`` under, and the id of the record whose
        Message-ID it reuses with different bytes (None when it reuses none).

        The same bytes again keep the plain identity (a duplicate, or an interrupted
        run); other bytes under a known Message-ID get ``mid:<id>#sha256:<hex>``.
        """
        identity = message_identity(raw)
        if not identity.startswith("mid:"):
            return identity, None
        row = self.db.execute(
            "SELECT id, raw FROM messages WHERE identity = ?", (identity,)
        ).fetchone()
        if row is None or bytes(row[1]) == raw:
            return identity, None
        return f"{identity}#sha256:{hashlib.sha256(raw).hexdigest()}", int(row[0])

    def raw(self, record_id: int) -> bytes:
        row = self.db.execute("SELECT raw FROM messages WHERE id = ?", (record_id,)).fetchone()
        if row is None:
            raise NewsletterError(f"{self.path}: no inbound message with id {record_id}")
        return bytes(row[0])

    def claim(self, identity: str, *, source: str, source_id: str, raw: bytes) -> int | None:
        """Store a new message as ``received``; its id, or None if already finished.

        A row left ``received`` by an interrupted run is claimed again.
        """
        now = _now()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            row = self.db.execute(
                "SELECT id, outcome FROM messages WHERE identity = ?", (identity,)
            ).fetchone()
            if row is not None:
                self.db.execute("COMMIT")
                return int(row[0]) if row[1] == RECEIVED else None
            cur = self.db.execute(
                "INSERT INTO messages (identity, source, source_id, received_at, updated_at, "
                "outcome, raw) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (identity, source, source_id, now, now, RECEIVED, raw),
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return int(cur.lastrowid or 0)

    def finish(
        self,
        record_id: int,
        *,
        sender: str | None,
        subject: str,
        kind: str,
        addresses: Sequence[str],
        outcome: str,
        detail: str,
        reason: str,
        excerpt: str,
        review: ReviewState,
    ) -> None:
        """Record what was done with a claimed message (one transaction)."""
        self.db.execute(
            "UPDATE messages SET sender = ?, subject = ?, kind = ?, addresses = ?, outcome = ?, "
            "detail = ?, reason = ?, excerpt = ?, review = ?, updated_at = ? WHERE id = ?",
            (
                sender,
                subject,
                kind,
                json.dumps(list(addresses), ensure_ascii=False),
                outcome,
                detail,
                reason,
                excerpt,
                review,
                _now(),
                record_id,
            ),
        )

    def set_review(self, record_id: int, state: ReviewState, *, note: str = "") -> None:
        self.db.execute(
            "UPDATE messages SET review = ?, reviewed_at = ?, review_note = ?, updated_at = ? "
            "WHERE id = ?",
            (state, _now(), note, _now(), record_id),
        )

    def items(self, *, review: Sequence[ReviewState] | None = None) -> Iterator[InboundRecord]:
        """Records in id order; only those in the given review states when given."""
        if review is None:
            cur = self.db.execute(f"SELECT {_COLUMNS} FROM messages ORDER BY id")
        else:
            marks = ",".join("?" * len(review))
            cur = self.db.execute(
                f"SELECT {_COLUMNS} FROM messages WHERE review IN ({marks}) ORDER BY id",
                tuple(review),
            )
        for row in cur.fetchall():
            yield _record(row)

    def count(self) -> int:
        return int(self.db.execute("SELECT count(*) FROM messages").fetchone()[0])

    # Confirmation rate limit ------------------------------------------------------------
    def reserve_confirmation(
        self, email: str, *, limit: int, now: float | None = None
    ) -> int | None:
        """Count a confirmation for ``email`` if fewer than ``limit`` went in 24 h.

        Returns the reservation's id (pass it to :meth:`release_confirmation` if the
        send then fails), or None when the limit is reached. Atomic across processes.
        """
        when = time.time() if now is None else now
        key = email.strip().lower()
        self.db.execute("BEGIN IMMEDIATE")
        try:
            sent = self.db.execute(
                "SELECT count(*) FROM confirmations WHERE email = ? AND sent_at > ?",
                (key, when - DAY),
            ).fetchone()[0]
            if sent >= limit:
                self.db.execute("COMMIT")
                return None
            cur = self.db.execute(
                "INSERT INTO confirmations (email, sent_at) VALUES (?, ?)", (key, when)
            )
            self.db.execute("COMMIT")
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        return int(cur.lastrowid or 0)

    def release_confirmation(self, reservation: int) -> None:
        self.db.execute("DELETE FROM confirmations WHERE id = ?", (reservation,))

    def confirmations_sent(self, email: str) -> int:
        """How many confirmations have ever gone to ``email``."""
        return int(
            self.db.execute(
                "SELECT count(*) FROM confirmations WHERE email = ?", (email.strip().lower(),)
            ).fetchone()[0]
        )

    # IMAP -------------------------------------------------------------------------------
    def imap_seen(self, account: str, uidvalidity: int, uid: int) -> bool:
        row = self.db.execute(
            "SELECT 1 FROM imap_seen WHERE account = ? AND uidvalidity = ? AND uid = ?",
            (account, uidvalidity, uid),
        ).fetchone()
        return row is not None

    def note_imap(self, account: str, uidvalidity: int, uid: int, identity: str) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO imap_seen (account, uidvalidity, uid, identity) "
            "VALUES (?, ?, ?, ?)",
            (account, uidvalidity, uid, identity),
        )
