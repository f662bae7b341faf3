"""The numbers per issue: counts of readers, rates, and the thresholds they must keep.

Pure: built from the store's tallies (:meth:`EventStore.tallies`) and issue list, so
reports are the same whichever way they are shown (text, JSON, HTML). Rates:

* delivery, permanent and temporary failures: of the readers the issue was sent to
  (its audience: the journal's rows, less those skipped);
* complaints, unsubscribes, opens, clicks: of the readers it was delivered to.

Thresholds: complaints under 0.3 % (Gmail's bulk-sender rule), temporary failures at
most 5 % and permanent at most 1 % (Buttondown's). A report names each one crossed.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Final

COMPLAINT_LIMIT: Final = 0.003
TEMPORARY_LIMIT: Final = 0.05
PERMANENT_LIMIT: Final = 0.01


@dataclass(frozen=True, slots=True)
class IssueReport:
    """What one issue did, in readers (each reader counted once per kind)."""

    issue: str
    first_sent: str
    audience: int
    sent: int
    delivered: int
    delivery_confirmed: bool  # SendGrid's delivered events, not "handed off less bounces"
    uncertain: int
    permanent: int  # refused for good at hand-off, hard bounces (SendGrid drops among them)
    temporary: int  # refused for now, soft bounces, deferrals
    complaints: int
    unsubscribes: int
    opens: int
    clicks: int
    tracked: bool  # opens/clicks were recorded for this issue
    warnings: tuple[str, ...] = field(default=())

    @property
    def permanent_rate(self) -> float:
        return _rate(self.permanent, self.audience)

    @property
    def temporary_rate(self) -> float:
        return _rate(self.temporary, self.audience)

    @property
    def delivery_rate(self) -> float:
        return _rate(self.delivered, self.audience)

    @property
    def complaint_rate(self) -> float:
        return _rate(self.complaints, self.delivered)

    @property
    def unsubscribe_rate(self) -> float:
        return _rate(self.unsubscribes, self.delivered)

    @property
    def open_rate(self) -> float:
        return _rate(self.opens, self.delivered)

    @property
    def click_rate(self) -> float:
        return _rate(self.clicks, self.delivered)

    def as_dict(self) -> dict[str, Any]:
        """For ``--json``: the counts, then the rates (fractions, 4 decimals)."""
        data = asdict(self)
        data["warnings"] = list(self.warnings)
        data["rates"] = {
            name: round(getattr(self, f"{name}_rate"), 4)
            for name in ("delivery", "permanent", "temporary", "complaint", "unsubscribe")
        }
        if self.tracked:
            data["rates"]["open"] = round(self.open_rate, 4)
            data["rates"]["click"] = round(self.click_rate, 4)
        return data


def _rate(part: int, whole: int) -> float:
    return part / whole if whole else 0.0


def build_report(
    issue: str, tally: dict[str, int], first_sent: str, audience: int | None
) -> IssueReport:
    """One issue's report from its tally ``{kind: readers}``."""
    sent = tally.get("sent", 0)
    hard = tally.get("bounce_hard", 0)
    permanent = tally.get("failed_permanent", 0) + hard
    temporary = tally.get("failed_temporary", 0) + tally.get("bounce_soft", 0)
    uncertain = tally.get("uncertain", 0)
    confirmed = tally.get("delivered", 0) > 0
    delivered = tally["delivered"] if confirmed else max(sent - hard, 0)
    if audience is None:
        audience = (
            sent + uncertain + tally.get("failed_permanent", 0) + tally.get("failed_temporary", 0)
        )
    tracked = bool(tally.get("open", 0) or tally.get("click", 0))
    report = IssueReport(
        issue=issue,
        first_sent=first_sent,
        audience=audience,
        sent=sent,
        delivered=delivered,
        delivery_confirmed=confirmed,
        uncertain=uncertain,
        permanent=permanent,
        temporary=temporary,
        complaints=tally.get("complaint", 0),
        unsubscribes=tally.get("unsubscribe", 0),
        opens=tally.get("open", 0),
        clicks=tally.get("click", 0),
        tracked=tracked,
    )
    return _with_warnings(report)


def _with_warnings(r: IssueReport) -> IssueReport:
    found: list[str] = []
    if r.complaint_rate >= COMPLAINT_LIMIT and r.complaints:
        found.append(
            f"complaints {percent(r.complaint_rate)} reach Gmail's limit of "
            f"{percent(COMPLAINT_LIMIT)}"
        )
    if r.temporary_rate > TEMPORARY_LIMIT:
        found.append(
            f"temporary failures {percent(r.temporary_rate)} are over {percent(TEMPORARY_LIMIT, 0)}"
        )
    if r.permanent_rate > PERMANENT_LIMIT:
        found.append(
            f"permanent failures {percent(r.permanent_rate)} are over {percent(PERMANENT_LIMIT, 0)}"
        )
    if not found:
        return r
    return IssueReport(**{**asdict(r), "warnings": tuple(found)})


def percent(fraction: float, places: int = 1) -> str:
    """``0.0123`` -> ``1.2 %``; small rates get a second place (``0.25 %``)."""
    if places and 0 < fraction < 0.01:
        places = 2
    return f"{fraction * 100:.{places}f} %"


def build_reports(
    tallies: dict[str, dict[str, int]], issues: list[tuple[str, str, int | None]]
) -> list[IssueReport]:
    """Every issue with events, oldest first (issues the journal knows by first send)."""
    known = {issue: (first, size) for issue, first, size in issues}
    order = [issue for issue, _f, _s in issues]
    order += sorted(i for i in tallies if i and i not in known)
    return [
        build_report(issue, tallies.get(issue, {}), *known.get(issue, ("", None)))
        for issue in order
    ]
