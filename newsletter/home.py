"""The newsletter's home folder (``NEWSLETTER_HOME``), found without loading every setting.

Commands that only read the project's files (``status``, ``subscribers list|stats|check``)
need nothing but where those files are; validating every setting would import pydantic
and the address validator first, most of their start-up time. The rule is the one
:mod:`newsletter.config` applies: the environment, then ``.env``, then the current
directory.
"""

from __future__ import annotations

import os
from pathlib import Path

VARIABLE = "NEWSLETTER_HOME"
#: the send journal's file in the state folder (``status`` and ``report`` read it too)
JOURNAL_NAME = "journal.sqlite3"


def _from_env_file(path: Path, name: str) -> str | None:
    """``name``'s value in a dotenv file: ``[export] NAME=value``, quotes and a trailing
    `` # comment`` allowed; the last assignment wins, as python-dotenv reads it."""
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    value: str | None = None
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("export "):
            line = line[len("export ") :].lstrip()
        key, sep, rest = line.partition("=")
        if not sep or key.strip() != name:
            continue
        rest = rest.strip()
        if rest[:1] in ("'", '"') and rest[:1] in rest[1:]:
            value = rest[1 : rest.index(rest[0], 1)]
        else:
            value = rest.split(" #", 1)[0].strip()
    return value


def read_home(env_file: str | Path | None = ".env") -> Path:
    """The home folder: ``NEWSLETTER_HOME`` from the environment, else from ``.env``,
    else the current directory (the same answer as ``load_settings().home``)."""
    value = os.environ.get(VARIABLE)
    if value is None and env_file is not None:
        value = _from_env_file(Path(env_file), VARIABLE)
    return Path(value) if value else Path(".")


def state_dir(home: Path) -> Path:
    """Private state under ``home``: the send journal, inbound records, backups."""
    return home / ".newsletter"


def subscribers_file(home: Path) -> Path:
    """The admins' subscriber list under ``home``."""
    return home / "subscribers" / "subscribers.csv"
