"""Gates before a real send: what could embarrass the editor, said before anything leaves.

Each :class:`Gate` is a line shown with the plan (so the confirmation prompt carries it)
and, when it ``refuses``, a refusal with exit 4 unless its override is given, whether or
not a terminal is attached: a script with ``--yes`` meets the same gates as a person.

* lint warnings: counted; ``--strict`` refuses them;
* order: an issue older than one already sent is refused unless ``--force`` (the typo
  ``vol-2.19`` for ``vol-2.20`` would send the old issue to everyone who missed it);
* date: an issue dated long ago or far ahead is a warning (the shipped sample is from 2023);
* the recipient set against the last issue sent: added, removed, and of those removed how
  many bounced or left, so a list that changed overnight is seen before the send.
"""


import datetime as dt
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from newsletter.cli.send_report import plural
from newsletter.console import console
from newsletter.errors import SendRefusedError

if TYPE_CHECKING:
    from newsletter.compose.models import Issue
    from newsletter.delivery.journal import Journal
    from newsletter.errors import Problem

#: An issue dated further back than this is probably the wrong file (or the sample).
STALE_DAYS = 31
#: ...or further ahead than this.
EARLY_DAYS = 14


@dataclass(frozen=True, slots=True)
class Gate:
    """One thing the editor should know before sending; ``refuses`` stops a real send."""

    message: str
    refuses: bool = False
    hint: str = ""


def volume_key(slug: str) -> tuple[int, int] | None:
    """``vol-2.19`` -> (2, 19): issues order by volume, then number (2.9 < 2.10)."""
    match = re.fullmatch(r"vol-(\d+)\.(\d+)", slug)
    return None if match is None else (int(match.group(1)), int(match.group(2)))


def latest_sent(sent: Iterable[str], *, besides: str) -> str | None:
    """The newest issue the journal says went out, other than ``besides``."""
    ordered = sorted((k, s) for s in sent if s != besides and (k := volume_key(s)) is not None)
    return ordered[-1][1] if ordered else None


def issue_gates(
    issue: "Issue",
    warnings: list["Problem"],
    sent: Iterable[str],
    *,
    strict: bool,
    force: bool,
    today: dt.date,
) -> list[Gate]:
    """Gates that depend on the issue itself and on what was sent before it."""
    slug = issue.slug
    gates: list[Gate] = []
    if warnings:
        count = plural(len(warnings), "warning")
        if strict:
            gates.append(
                Gate(
                    f"{count}, and --strict refuses warnings",
                    refuses=True,
                    hint=f"`newsletter check {slug}` lists them; fix them or drop --strict",
                )
            )
        else:
            gates.append(Gate(f"{count} (`newsletter check {slug}` lists them)"))
    latest = latest_sent(sent, besides=slug)
    own, newest = volume_key(slug), volume_key(latest) if latest else None
    if latest and own and newest and own < newest:
        message = f"{slug} is older than {latest}, which was already sent"
        if force:
            gates.append(Gate(message + "; sending anyway (--force)"))
        else:
            gates.append(
                Gate(
                    message,
                    refuses=True,
                    hint=f"check the issue name (did you mean a newer one?); --force sends "
                    f"{slug} anyway to everyone who has not had it",
                )
            )
    age = (today - issue.date).days
    if age > STALE_DAYS:
        gates.append(Gate(f"{slug} is dated {issue.date.isoformat()}, {age:,} days ago"))
    elif -age > EARLY_DAYS:
        gates.append(Gate(f"{slug} is dated {issue.date.isoformat()}, {-age:,} days ahead"))
    return gates


def recipient_gate(
    journal: "Journal",
    slug: str,
    sent: Iterable[str],
    statuses: Callable[[set[str]], Mapping[str, str]],
) -> Gate | None:
    """How this send's recipients differ from the last issue's (None when nothing was
    sent before). ``statuses`` maps removed addresses to their status in the list now."""
    latest = latest_sent(sent, besides=slug)
    if latest is None:
        return None
    diff = journal.recipient_diff(slug, latest)
    line = f"recipients since {latest}: {diff.added:,} added, {len(diff.removed):,} removed"
    if diff.removed:
        now = Counter(statuses(set(diff.removed)).values())
        named = [(n, s) for s, n in sorted(now.items())]
        gone = len(diff.removed) - sum(now.values())
        if gone:
            named.append((gone, "deleted from the list"))
        line += " (" + ", ".join(f"{n:,} {what}" for n, what in named) + ")"
    return Gate(line)


def show_gates(gates: list[Gate]) -> None:
    """Print every gate under the plan: warnings in yellow, refusals in red."""
    for gate in gates:
        style = "red" if gate.refuses else "yellow"
        console.print(f"check:      {gate.message}", style=style, markup=False, soft_wrap=True)


def enforce(gates: list[Gate], slug: str) -> None:
    """Refuse (exit 4) on the first refusing gate, naming every one of them."""
    refusing = [g for g in gates if g.refuses]
    if not refusing:
        return
    raise SendRefusedError(
        f"{slug}: not sending: " + "; ".join(g.message for g in refusing),
        hint="; ".join(g.hint for g in refusing if g.hint) or None,
    )
