"""The list's health: the last send's failures and the recent complaints, against the
rates Gmail and Yahoo hold bulk senders to.

:func:`read_list_health` is the seam: today it reads the send journal (permanent and
temporary failures of the latest issue) and the subscriber file (rows marked
complained in the last 30 days); when per-issue event reports land it can read those
instead, and the checks stay as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from newsletter.delivery.journal import Journal
from newsletter.doctor.findings import Finding, fail, ok

#: complaints per message delivered: Gmail's bulk-sender limit
MAX_COMPLAINT_RATE = 0.003
#: permanent failures (bounces) and temporary ones per message attempted
MAX_PERMANENT_RATE = 0.01
MAX_TEMPORARY_RATE = 0.05
RECENT = timedelta(days=30)
JOURNAL_NAME = "journal.sqlite3"  # the file `newsletter send` keeps in the state folder


@dataclass(frozen=True, slots=True)
class ListHealth:
    issue: str | None
    attempted: int
    sent: int
    permanent: int
    temporary: int
    complaints: int


def _latest_issue(journal: Journal) -> str | None:
    row = journal.db.execute(
        "SELECT issue FROM deliveries ORDER BY updated_at DESC, id DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def read_list_health(settings: Settings, *, now: datetime | None = None) -> ListHealth:
    path = settings.state_dir / JOURNAL_NAME
    issue, counts = None, {}
    if path.exists():
        with Journal(path, create=False) as journal:
            issue = _latest_issue(journal)
            counts = journal.counts(issue) if issue else {}
    since = ((now or datetime.now(UTC)) - RECENT).isoformat()
    complaints = 0
    if settings.subscribers_file.exists():
        store = SubscriberStore.from_settings(settings)
        complaints = sum(
            1 for s in store.iter_valid() if s.status == "complained" and s.updated_at >= since
        )
    permanent = counts.get("failed_permanent", 0)
    temporary = counts.get("failed", 0) - permanent
    sent = counts.get("sent", 0)
    attempted = sent + counts.get("failed", 0) + counts.get("uncertain", 0)
    return ListHealth(issue, attempted, sent, permanent, temporary, complaints)


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f} %"


def check_health(health: ListHealth) -> list[Finding]:
    if not health.issue or not health.attempted:
        return [ok("list", "no send recorded yet: bounce and complaint rates start with the first")]
    out: list[Finding] = []
    for what, count, base, limit, fix in (
        (
            "complaints (last 30 days)",
            health.complaints,
            max(health.sent, 1),
            MAX_COMPLAINT_RATE,
            "send only to people who confirmed (double opt-in), make unsubscribing easy, "
            "and remove readers who have not opened in months",
        ),
        (
            f"permanent failures in {health.issue}",
            health.permanent,
            health.attempted,
            MAX_PERMANENT_RATE,
            "`newsletter status` lists them; clean the list (`newsletter subscribers check`)",
        ),
        (
            f"temporary failures in {health.issue}",
            health.temporary,
            health.attempted,
            MAX_TEMPORARY_RATE,
            "receivers are deferring us: check the relay, slow down (--concurrency), "
            "then `newsletter send --retry-failed`",
        ),
    ):
        rate = count / base
        text = f"{what}: {count} of {base} ({_pct(rate)}, limit {_pct(limit)})"
        out.append(fail("list", text, fix) if rate > limit else ok("list", text))
    return out
