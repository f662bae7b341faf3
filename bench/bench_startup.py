"""Start-up benchmark: whole-process time of CLI commands as a user runs them, as ratios
against ``python -c pass`` (the same interpreter), from one run.

Each command runs ``--repeat`` times in a fresh process, in rounds that run every
command once; the best time counts (the machine's other load only ever adds). Commands
run in a scratch home with vol-2.19 and a small subscriber list, after one run of
`send` so `status` has a journal to read. Each `check` is a cold one: the issue file is
edited (a comment line changes) just before it, as an editor's check follows an edit.

Goals (issue 11): ``--help``, ``status``, ``subscribers stats`` within 4x of
``python -c pass``; ``check vol-2.19`` within 0.5 s.

Usage: .venv/bin/python bench/bench_startup.py [--repeat 15] [--importtime]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

COMMANDS: list[tuple[str, list[str], float | None, float | None]] = [
    # label, arguments, goal as a ratio to `python -c pass`, goal in seconds
    ("newsletter --help", ["--help"], 4.0, None),
    ("newsletter status vol-2.19", ["status", "vol-2.19"], 4.0, None),
    ("newsletter subscribers stats", ["subscribers", "stats"], 4.0, None),
    ("newsletter check vol-2.19", ["check", "vol-2.19"], None, 0.5),
    ("newsletter send --help", ["send", "--help"], None, None),
]


#: the least a Typer command costs: a one-command app that takes one argument (Typer
#: 0.2x coerces every argument through pydantic, so running any command imports it)
TYPER_FLOOR = """
import typer
app = typer.Typer(add_completion=False, rich_markup_mode=None)
@app.command()
def status(issue: str) -> None:
    print(issue)
@app.command()
def other() -> None:
    pass
app()
"""


def run_once(argv: list[str], cwd: Path, env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=cwd, env=env, capture_output=True)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.exit(f"{' '.join(argv)} failed: {proc.stderr.decode()}")
    return elapsed


def edit_issue(home: Path, round_no: int) -> None:
    """Change vol-2.19.yaml as an edit would (its last line, a comment, says the round)."""
    path = home / "issues" / "vol-2.19.yaml"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    if lines and lines[-1].startswith("# bench edit"):
        lines.pop()
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    path.write_text("".join(lines) + f"# bench edit {round_no}\n", encoding="utf-8")


def best_of_each(
    commands: list[list[str]], repeat: int, cwd: Path, env: dict[str, str]
) -> list[float]:
    """Each command's best time over ``repeat`` rounds; a round runs every command once,
    so a burst of load on the shared machine hits the anchor and the commands alike."""
    best = [float("inf")] * len(commands)
    for round_no in range(repeat):
        for i, argv in enumerate(commands):
            if "check" in argv:
                edit_issue(cwd, round_no)
            best[i] = min(best[i], run_once(argv, cwd, env))
    return best


def make_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="nl-startup-"))
    for name in ("issues", "templates", "subscribers"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, home / name)
    return home


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument(
        "--importtime", action="store_true", help="also list each command's slowest imports"
    )
    args = ap.parse_args()
    home = make_home()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("NEWSLETTER_", "SMTP_"))}
    env["PYTHONPATH"] = str(ROOT)  # this checkout's package, whatever is installed
    # as a user runs it: pip compiles an installed package's bytecode, and Python caches
    # it for a source checkout, unless PYTHONDONTWRITEBYTECODE (set in some sandboxes)
    # makes every run compile every module again
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "newsletter")],
                   check=True, capture_output=True)  # fmt: skip
    cli = [sys.executable, "-c", "from newsletter.cli.app import console_main; console_main()"]
    try:
        sent = subprocess.run([*cli, "send", "vol-2.19", "--yes"], cwd=home, env=env,
                              capture_output=True)  # fmt: skip
        if sent.returncode != 0:
            sys.exit(f"send failed: {sent.stderr.decode()}")
        runs = [
            [sys.executable, "-c", "pass"],
            [sys.executable, "-c", TYPER_FLOOR, "status", "x"],
            *([*cli, *argv] for _, argv, _, _ in COMMANDS),
        ]
        anchor, floor, *took_each = best_of_each(runs, args.repeat, home, env)
        print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}, "
              f"best of {args.repeat} rounds, whole process")  # fmt: skip
        print(f"  {'python -c pass (anchor)':32} {anchor * 1000:7.0f} ms    1.00 x")
        print(f"  {'bare Typer app, one command run':32} {floor * 1000:7.0f} ms  "
              f"{floor / anchor:6.2f} x  (the floor any Typer command pays)")  # fmt: skip
        for (label, argv, ratio_goal, seconds_goal), took in zip(COMMANDS, took_each, strict=True):
            goal = ""
            if ratio_goal is not None:
                ok = "met" if took / anchor <= ratio_goal else "NOT met"
                goal = f"  goal <= {ratio_goal:.0f} x: {ok}"
            elif seconds_goal is not None:
                ok = "met" if took <= seconds_goal else "NOT met"
                goal = f"  goal <= {seconds_goal} s: {ok}"
            print(f"  {label:32} {took * 1000:7.0f} ms  {took / anchor:6.2f} x{goal}")
            if args.importtime:
                timed = [sys.executable, "-X", "importtime", *cli[1:], *argv]
                proc = subprocess.run(timed, cwd=home, env=env, capture_output=True, text=True)
                rows = [line.split("|") for line in proc.stderr.splitlines()[1:] if "|" in line]
                top = sorted(rows, key=lambda r: -int(r[1]))[:6]
                for row in top:
                    print(f"      {int(row[1]) / 1000:7.1f} ms  {row[2].strip()}")
    finally:
        shutil.rmtree(home, ignore_errors=True)


if __name__ == "__main__":
    main()
