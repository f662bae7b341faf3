"""A second record that an issue went out, kept apart from the journal.

The journal is what makes a send exactly-once; if it is deleted, truncated, or loses its
``-wal`` file after a crash, the next send would silently mail everyone again. So each
real send also notes, in the build folder (``build/.sends.json``), that it
started and how many it had sent when it ended; the outbox folder is evidence too. When
the journal knows less than this evidence, :func:`evidence_gate` refuses the send until
the editor says ``--journal-lost``.
"""


import json
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


def note_send(settings: "Settings", slug: str, sent: int) -> None:
    """Record that ``slug`` has reached at least ``sent`` readers (0: a send started)."""
    data = _read(settings)
    entry = data.get(slug) if isinstance(data.get(slug), dict) else None
    now = datetime.now(UTC).isoformat(timespec="seconds")
    entry = entry or {"started_at": now, "sent": 0}
    entry["sent"] = max(int(entry.get("sent", 0)), sent)
    entry["updated_at"] = now
    data[slug] = entry
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    write_atomic(_path(settings), text.encode("utf-8"))


def forget_send(settings: "Settings", slug: str) -> None:
    """A send that was cancelled before delivery (a SendGrid schedule) is no evidence."""
    data = _read(settings)
    if data.pop(slug, None) is not None:
        text = json.dumps(data, indent=2, sort_keys=True) + "\n"
        write_atomic(_path(settings), text.encode("utf-8"))


def evidence_gate(
    settings: "Settings", slug: str, journal_sent: int, *, journal_lost: bool
) -> Gate | None:
    """A refusal when the outbox or the send record shows more of ``slug`` went out than
    the journal knows (``journal_sent`` counts its sent and uncertain rows)."""
    found: list[str] = []
    outbox = settings.outbox_dir / slug
    copies = len(list(outbox.glob("*.eml"))) if outbox.is_dir() else 0
    if copies > journal_sent:
        found.append(f"{outbox}/ holds {copies:,} messages")
    entry = _read(settings).get(slug)
    if isinstance(entry, dict):
        recorded = int(entry.get("sent", 0))
        if recorded > journal_sent or (journal_sent == 0 and entry.get("started_at")):
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
