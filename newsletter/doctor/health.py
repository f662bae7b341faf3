"""The list's health: the last issue's failures and complaints, against the rates Gmail
and Yahoo hold bulk senders to.

:func:`read_list_health` reads the per-issue report (:mod:`newsletter.reports`: the
journal, the Event Webhook's bounces and spam reports, mailbox DSNs and complaints,
unsubscribes), so doctor and `newsletter report` judge the same numbers against the
same limits.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.config import Settings
from newsletter.doctor.findings import Finding, fail, ok
from newsletter.reports.summary import COMPLAINT_LIMIT, PERMANENT_LIMIT, TEMPORARY_LIMIT


@dataclass(frozen=True, slots=True)
class ListHealth:
    issue: str | None
    attempted: int  # the issue's audience: readers it was handed to or meant for
    delivered: int
    permanent: int
    temporary: int
    complaints: int


def read_list_health(settings: Settings) -> ListHealth:
    """The latest issue sent, as its report counts it (events collected first)."""
    from newsletter.reports.collect import collect
    from newsletter.reports.eventstore import EventStore
    from newsletter.reports.summary import build_reports

    if not settings.state_dir.is_dir():
        return ListHealth(None, 0, 0, 0, 0, 0)
    with EventStore.in_state_dir(settings.state_dir) as store:
        collect(settings, store)
        reports = build_reports(store.tallies(), store.issues())
    sent = [r for r in reports if r.audience]
    if not sent:
        return ListHealth(None, 0, 0, 0, 0, 0)
    last = sent[-1]
    return ListHealth(
        last.issue, last.audience, last.delivered, last.permanent, last.temporary,
        last.complaints,
    )  # fmt: skip


def _pct(rate: float) -> str:
    return f"{rate * 100:.2f} %"


def check_health(health: ListHealth) -> list[Finding]:
    if not health.issue or not health.attempted:
        return [ok("list", "no send recorded yet: bounce and complaint rates start with the first")]
    out: list[Finding] = []
    for what, count, base, limit, fix in (
        (
            f"complaints about {health.issue}",
            health.complaints,
            max(health.delivered, 1),
            COMPLAINT_LIMIT,
            "send only to people who confirmed (double opt-in), make unsubscribing easy, "
            "and remove readers who have not opened in months",
        ),
        (
            f"permanent failures in {health.issue}",
            health.permanent,
            health.attempted,
            PERMANENT_LIMIT,
            "`newsletter status` lists them; clean the list (`newsletter subscribers check`)",
        ),
        (
            f"temporary failures in {health.issue}",
            health.temporary,
            health.attempted,
            TEMPORARY_LIMIT,
            "receivers are deferring us: check the relay, slow down (--concurrency), "
            "then `newsletter send --retry-failed`",
        ),
    ):
        rate = count / base
        text = f"{what}: {count} of {base} ({_pct(rate)}, limit {_pct(limit)})"
        # complaints must stay under the limit (Gmail); failures may reach theirs
        over = rate >= limit and count > 0 if limit == COMPLAINT_LIMIT else rate > limit
        out.append(fail("list", text, fix) if over else ok("list", text))
    return out
