"""What the preflight found: one :class:`Finding` per check, and the report of them all."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["ok", "warn", "fail"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One check: its area (``spf``, ``dkim``, ...), the verdict, what is wrong, the fix."""

    area: str
    status: Status
    message: str
    #: the exact DNS record or setting that fixes it (None when nothing needs fixing)
    fix: str | None = None

    def lines(self) -> list[str]:
        mark = {"ok": "ok  ", "warn": "warn", "fail": "FAIL"}[self.status]
        out = [f"{mark} {self.area}: {self.message}"]
        if self.fix:
            first, *rest = self.fix.splitlines()
            out += [f"     fix: {first}", *(f"          {line}" for line in rest)]
        return out


def ok(area: str, message: str) -> Finding:
    return Finding(area, "ok", message)


def warn(area: str, message: str, fix: str | None = None) -> Finding:
    return Finding(area, "warn", message, fix)


def fail(area: str, message: str, fix: str | None = None) -> Finding:
    return Finding(area, "fail", message, fix)


@dataclass(slots=True)
class Report:
    """Every finding, in the order checked; passes when none failed."""

    subject: str
    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[Finding]:
        return [f for f in self.findings if f.status == "fail"]

    @property
    def passed(self) -> bool:
        return not self.failures

    def lines(self) -> list[str]:
        out = [self.subject]
        for finding in self.findings:
            out += finding.lines()
        out += self.notes
        failed, warned = len(self.failures), sum(f.status == "warn" for f in self.findings)
        out.append(f"{len(self.findings)} checks: {failed} failed, {warned} warnings")
        return out

    def as_json(self) -> dict[str, Any]:
        return {
            "subject": self.subject,
            "passed": self.passed,
            "findings": [asdict(f) for f in self.findings],
            "notes": self.notes,
        }
