"""The README's commands run as written, in order, on a fresh copy of the repository's
home (issues/, templates/, subscribers/, examples/), with the built-in defaults."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
COMMAND = re.compile(r"^\$ (.+?)(?:\s+#.*)?$")
#: What the README says these do when they are not a plain success.
EXIT = {
    "newsletter check issues/vol-2.20.yaml": 1,  # the scaffold `new` wrote: its problems
    "newsletter send vol-2.19": 4,  # asks first; without a terminal it refuses
    "newsletter doctor": 1,  # the shipped defaults cannot send for real
    "newsletter subscribers import examples/new-list.csv --dry-run": 1,  # a broken row
}
#: Commands that serve until stopped: they must come up and stay up.
SERVES = {"newsletter preview vol-2.19"}


def readme_commands() -> list[str]:
    commands: list[str] = []
    fence: str | None = None
    for line in README.read_text(encoding="utf-8").splitlines():
        if line.startswith("```"):
            fence = line[3:].strip() if fence is None else None
            continue
        if fence == "console" and (match := COMMAND.match(line)):
            commands.append(match.group(1))
    return commands


def test_the_readme_has_its_walkthrough() -> None:
    commands = readme_commands()
    assert commands[:2] == ["newsletter check vol-2.19", "newsletter build vol-2.19"]
    assert all(c.startswith(("newsletter ", "python3 -c ")) for c in commands), commands
    assert len(commands) > 30
    assert set(EXIT) | SERVES <= set(commands)


@pytest.mark.slow
def test_every_readme_command_runs_as_written(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    for name in ("issues", "templates", "subscribers", "examples"):
        shutil.copytree(ROOT / name, home / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SENDGRID_"))}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    failures: list[str] = []
    for command in readme_commands():
        if command in SERVES:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {command}"], cwd=home, env=env,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
            )  # fmt: skip
            time.sleep(3)
            alive = proc.poll() is None
            proc.terminate()
            _out, err = proc.communicate(timeout=30)
            if not alive:
                failures.append(f"{command}: stopped at once ({proc.returncode}): {err[-300:]}")
            continue
        done = subprocess.run(
            ["bash", "-c", command], cwd=home, env=env, capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=120,
        )  # fmt: skip
        expected = EXIT.get(command, 0)
        if done.returncode != expected or "Traceback" in done.stderr:
            failures.append(
                f"{command}: exit {done.returncode}, expected {expected}\n"
                f"{done.stdout[-400:]}{done.stderr[-600:]}"
            )
    assert not failures, "\n\n".join(failures)
