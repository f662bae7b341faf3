"""A second record that an issue went out, kept apart from the journal.

The journal is what makes a send exactly-once; if it is deleted, truncated, or loses its
``-wal`` file after a crash, the next send would silently mail everyone again. So each
real send also notes, in the build folder (``build/.sends.json``), that it
started and how many it had sent when it ended; the outbox folder is evidence too. When
the journal knows less than this evidence, :func:`evidence_gate` refuses the send until
the editor says ``--journal-lost``.
"""


import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsletter.cli.send_gates import Gate
from newsletter.errors import SendRefusedError
from newsletter.files import write_atomic

if TYPE_CHECKING:
    from newsletter.config import Settings

SENDS_FILE = ".sends.json"


def _path(settings: "Settings") -> Path:
    return settings.build_dir / SENDS_FILE  # not under build/archive/: `serve` publishes that


def _read(settings: "Settings") -> dict[str, Any]:
    try:
        data = json.loads(_path(settings).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def note_send(
    settings: "Settings", slug: str, sent: int, *, run: tuple[int, str] | None = None
) -> None:
    """Record that ``slug`` has reached at least ``sent`` readers; with ``run`` (its id and
    start in the journal), that this run is about to hand off its first recipients. A run
    that hands off nothing notes nothing: it is no evidence of a send."""
    try:
        with _locked(settings):
            data = _read(settings)
            entry = data.get(slug) if isinstance(data.get(slug), dict) else None
            if entry is None and run is None and sent <= 0:
                return
            now = datetime.now(UTC).isoformat(timespec="seconds")
            entry = entry or {"started_at": now, "sent": 0}
            entry["sent"] = max(int(entry.get("sent", 0)), sent)
            if run is not None:
                entry["run"], entry["run_started_at"] = run
            entry["updated_at"] = now
            data[slug] = entry
            _write(settings, data)
    except OSError as exc:
        if run is None:
            raise
        raise SendRefusedError(  # (in the claim's transaction: nothing is claimed)
            f"{slug}: not sending: cannot write the send record {_path(settings)}: "
            f"{exc.strerror or exc}",
            hint="it is the evidence that a send began, kept apart from the journal: "
            f"make {settings.build_dir} writable, then run the command again",
        ) from None


def note_at_first_hand_off(
    settings: "Settings", slug: str, sent: int
) -> Callable[[int, str], None]:
    """For :attr:`.Journal.before_first_hand_off`: each run is noted inside the transaction
    that claims its first recipients, before any leaves (a note that fails claims
    nothing). Noted before the loop, a send killed (or refused by SendGrid) before its
    first hand-off left a record the journal could not account for, and the next run
    refused to resume."""

    def note(run: int, started_at: str) -> None:
        note_send(settings, slug, sent, run=(run, started_at))

    return note


def forget_send(settings: "Settings", slug: str) -> None:
    """A send that was cancelled before delivery (a SendGrid schedule) is no evidence."""
    with _locked(settings):
        data = _read(settings)
        if data.pop(slug, None) is not None:
            _write(settings, data)


@contextmanager
def _locked(settings: "Settings") -> Iterator[None]:
    """One writer of the record at a time: sends of two issues at once each read it,
    change their own entry and write it back, and would drop the other's."""
    from filelock import FileLock

    settings.build_dir.mkdir(parents=True, exist_ok=True)
    with FileLock(str(_path(settings)) + ".lock", timeout=60):
        yield


def _write(settings: "Settings", data: dict[str, Any]) -> None:
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(_path(settings), text.encode("utf-8"))


def evidence_gate(
    settings: "Settings",
    slug: str,
    journal_sent: int,
    *,
    journal_lost: bool,
    knows_run: Callable[[int, str], bool] | None = None,
) -> Gate | None:
    """A refusal when the outbox or the send record shows more of ``slug`` went out than
    the journal knows (``journal_sent`` counts its sent and uncertain rows), or the record
    names the last run that handed off and ``knows_run`` says the journal lacks it (a
    journal replaced, restored from before that run, or that lost it with its -wal)."""
    found: list[str] = []
    outbox = settings.outbox_dir / slug
    copies = len(list(outbox.glob("*.eml"))) if outbox.is_dir() else 0
    if copies > journal_sent:
        found.append(f"{outbox}/ holds {copies:,} messages")
    entry = _read(settings).get(slug)
    if isinstance(entry, dict):
        recorded = int(entry.get("sent", 0))
        run, run_start = entry.get("run"), entry.get("run_started_at")
        lost_run = ""
        if isinstance(run, int) and isinstance(run_start, str) and knows_run is not None:
            if not knows_run(run, run_start):
                lost_run = f", and its run {run} of {run_start} is not in the journal"
            unknown = bool(lost_run)
        else:  # a record without its run (an older version's): a start with nothing sent
            unknown = journal_sent == 0 and bool(entry.get("started_at"))
        if recorded > journal_sent or unknown:
            found.append(
                f"a send started {entry.get('started_at')} and reached {recorded:,} readers "
                f"({_path(settings)}){lost_run}"
            )
    if not found:
        return None
    message = (
        f"the send journal knows of {journal_sent:,} sent, but "
        + " and ".join(found)
        + ": the journal may have been deleted or damaged, and sending now could give "
        "readers a second copy"
    )
    if journal_lost:
        return Gate(message + "; sending anyway (--journal-lost)")
    return Gate(
        message,
        refuses=True,
        hint=f"restore {settings.state_dir}/journal.sqlite3 from a backup, or pass "
        "--journal-lost to send to everyone the journal does not list as sent",
    )
