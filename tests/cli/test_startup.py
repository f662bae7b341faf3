"""Commands import what they use when they use it: the import graph of a fresh process.

Speed itself is measured by bench/bench_startup.py (no timed assertions here); these
tests fail when a module-level import drags a heavy library into a command that does
not need it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.audience.subscribers import STATUSES
from newsletter.cli.subscribers.options import STATUS_HELP
from newsletter.config import load_settings
from newsletter.home import read_home
from tests.support.sendkit import write_subscribers

ROOT = Path(__file__).resolve().parent.parent.parent
#: libraries of other commands: never loaded by a command that does not use them
OTHERS = {"premailer", "starlette", "uvicorn", "sendgrid", "cryptography", "jinja2"}
_PROBE = """
import json, sys
from newsletter.cli.app import app
try:
    app(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def loaded(home: Path, *argv: str) -> set[str]:
    """Top-level modules (and newsletter's own) a fresh process has after running argv."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SMTP_"))}
    env["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], cwd=home, env=env, capture_output=True, text=True
    )
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result["code"] in (0, None), proc.stderr
    names: list[str] = result["modules"]
    return {n for n in names if n.startswith("newsletter.")} | {n.split(".")[0] for n in names}


def test_help_loads_no_library_a_command_uses(home: Path) -> None:
    mods = loaded(home, "--help")
    assert not mods & OTHERS
    # nor settings, the store, the journal or rich: --help prints Typer's text only
    heavy = {"pydantic", "pydantic_settings", "email_validator", "rich", "sqlite3", "yaml"}
    assert not mods & heavy, mods & heavy
    assert not {m for m in mods if m.startswith(("newsletter.compose", "newsletter.audience"))}


def test_status_reads_the_journal_without_settings_or_the_composer(home: Path) -> None:
    mods = loaded(home, "status", "vol-2.19")
    assert not mods & OTHERS
    assert not mods & {"pydantic_settings", "email_validator", "yaml", "filelock"}
    assert "newsletter.delivery.journal" in mods  # it did read the journal
    assert not {m for m in mods if m.startswith("newsletter.compose")}


def test_subscribers_stats_loads_the_store_only(home: Path) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 5)
    mods = loaded(home, "subscribers", "stats")
    assert not mods & OTHERS
    # sqlite3 is needed: the consent ledger is folded into the file before it is read
    assert not mods & {"pydantic_settings", "yaml"}
    assert "newsletter.audience.subscribers.store" in mods
    assert not {m for m in mods if m.startswith(("newsletter.compose", "newsletter.delivery"))}


@pytest.mark.parametrize(
    "command",
    ["send", "check", "serve", "archive", "signups", "cancel", "run-due", "report", "doctor"],
)
def test_a_command_help_loads_none_of_the_other_commands_libraries(
    home: Path, command: str
) -> None:
    mods = loaded(home, command, "--help")
    assert not mods & OTHERS, mods & OTHERS


def test_the_status_list_in_help_is_the_store_list() -> None:
    assert ", ".join(STATUSES) == STATUS_HELP


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("NEWSLETTER_HOME=site\n", "site"),
        ("export NEWSLETTER_HOME='my site'  # quoted\n", "my site"),
        ('NEWSLETTER_HOME="a"\nNEWSLETTER_HOME=b # last wins\n', "b"),
        ("NEWSLETTER_HOMEX=nope\n# NEWSLETTER_HOME=commented\n", "."),
    ],
)
def test_read_home_agrees_with_the_settings(
    home: Path, monkeypatch: pytest.MonkeyPatch, line: str, expected: str
) -> None:
    env = home / "test.env"
    env.write_text(line, encoding="utf-8")
    assert read_home(env) == Path(expected) == load_settings(env).home
    monkeypatch.setenv("NEWSLETTER_HOME", "from-env")  # the environment wins, as there
    assert read_home(env) == Path("from-env") == load_settings(env).home
