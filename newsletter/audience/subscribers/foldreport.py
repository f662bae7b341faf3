"""What one fold of the consent ledger into the CSV did (:class:`FoldReport`).

Its own module so that a command whose fold finds nothing to do reports that without
loading the fold's code (:mod:`.fold`, :mod:`.importledger`): start-up time.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class FoldReport:
    """What one fold did."""

    applied: int = 0  # changes written into the file for the first time
    folded: int = 0  # ledger changes this fold covered (applied or found already true)
    wrote: bool = False  # whether the file was rewritten (one backup)
    reapplied: list[str] = field(default_factory=list)  # "file:line: email: what", said aloud
    conflicts: list[str] = field(default_factory=list)  # machine changes a hand edit overrode

    def summary(self, display: str) -> str:
        parts = [f"{self.folded} ledger change(s) folded into {display}"]
        if self.reapplied:
            parts.append(f"{len(self.reapplied)} re-applied after a hand edit undid them")
        if self.conflicts:
            parts.append(f"{len(self.conflicts)} left as edited by hand")
        return "; ".join(parts)
