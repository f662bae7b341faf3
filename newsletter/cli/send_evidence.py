"""A second record that an issue went out, kept apart from the journal.

The journal is what makes a send exactly-once; if it is deleted, truncated, or loses its
``-wal`` file after a crash, the next send would silently mail everyone again. So each
real send also notes, in the build folder (``build/.sends.json``), that it
started and how many it had sent when it ended; the outbox folder is evidence too. When
the journal knows less than this evidence, :func:`evidence_gate` refuses the send until
the editor says ``--journal-lost``.
"""


import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from newsletter.cli.send_gates import Gate
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


def note_send(settings: "Settings", slug: str, sent: int, *, started: bool = False) -> None:
    """Record that ``slug`` has reached at least ``sent`` readers; ``started``: that its
    first recipients are about to be handed off (nothing noted yet: nothing went out)."""
    data = _read(settings)
    entry = data.get(slug) if isinstance(data.get(slug), dict) else None
    if entry is None and not started and sent <= 0:
        return  # no hand-off ever began: not evidence of a send
    now = datetime.now(UTC).isoformat(timespec="seconds")
    entry = entry or {"started_at": now, "sent": 0}
    entry["sent"] = max(int(entry.get("sent", 0)), sent)
    entry["updated_at"] = now
    data[slug] = entry
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(_path(settings), text.encode("utf-8"))


def note_at_first_hand_off(settings: "Settings", slug: str, sent: int) -> Callable[[], None]:
    """For :attr:`.Journal.before_first_hand_off`: the send is noted as started once its
    first recipients are committed in flight, just before they leave. Noted earlier, a
    send killed (or refused by SendGrid) before its first hand-off left a note that the
    journal could not match, and the next run refused to resume."""
    done = False

    def note() -> None:
        nonlocal done
        if not done:
            note_send(settings, slug, sent, started=True)
            done = True

    return note


def forget_send(settings: "Settings", slug: str) -> None:
    """A send that was cancelled before delivery (a SendGrid schedule) is no evidence."""
    data = _read(settings)
    if data.pop(slug, None) is not None:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        write_atomic(_path(settings), text.encode("utf-8"))


def evidence_gate(
    settings: "Settings",
    slug: str,
    journal_sent: int,
    *,
    journal_lost: bool,
    ever_claimed: Callable[[], bool] = lambda: False,
) -> Gate | None:
    """A refusal when the outbox or the send record shows more of ``slug`` went out than
    the journal knows (``journal_sent`` counts its sent and uncertain rows).
    ``ever_claimed``: whether this journal put a row of ``slug`` in flight; a started
    send it knows of, whose requests were all refused (a bad API key), is no loss."""
    found: list[str] = []
    outbox = settings.outbox_dir / slug
    copies = len(list(outbox.glob("*.eml"))) if outbox.is_dir() else 0
    if copies > journal_sent:
        found.append(f"{outbox}/ holds {copies:,} messages")
    entry = _read(settings).get(slug)
    if isinstance(entry, dict):
        recorded = int(entry.get("sent", 0))
        started = journal_sent == 0 and entry.get("started_at") and not ever_claimed()
        if recorded > journal_sent or started:
            found.append(
                f"a send started {entry.get('started_at')} and reached {recorded:,} readers "
                f"({_path(settings)})"
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
