"""The send's progress bar: drawn on a terminal (through the console made on first use),
nothing at all elsewhere."""

from __future__ import annotations

import io
import os
import pty
import subprocess
import sys
from pathlib import Path

import pytest

from newsletter.cli import send_run
from newsletter.console import _LazyConsole

ROOT = Path(__file__).resolve().parents[2]


def test_a_terminal_gets_a_bar_through_the_lazy_console(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(send_run, "err_console", _LazyConsole(file=out, force_terminal=True))
    with send_run._progress() as bar:
        task = bar.add_task("sending", total=10)
        bar.advance(task, 4)
    assert "sending" in out.getvalue() and "4/10" in out.getvalue()


def test_no_terminal_no_bar(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    monkeypatch.setattr(send_run, "err_console", _LazyConsole(file=out))
    with send_run._progress() as bar:
        task = bar.add_task("sending", total=10)
        bar.advance(task, 4)
    assert isinstance(bar, send_run._NoBar) and out.getvalue() == ""


def test_a_send_typed_at_a_terminal_draws_its_bar_and_sends(home: Path) -> None:
    # the whole command on a real pseudo-terminal: the unit tests above replace the
    # console, and a send at a terminal once crashed before its first hand-off
    main, sub = pty.openpty()
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    proc = subprocess.Popen([sys.executable, "-m", "newsletter", "send", "vol-2.19", "--yes"],
                            stdin=sub, stdout=sub, stderr=sub, env=env, cwd=home)  # fmt: skip
    os.close(sub)
    seen = b""
    while True:
        try:
            data = os.read(main, 4096)
        except OSError:  # EIO: the terminal's other end closed
            break
        if not data:
            break
        seen += data
    os.close(main)
    assert proc.wait(timeout=60) == 0, seen.decode(errors="replace")
    text = seen.decode(errors="replace")
    assert "sending" in text and "4/4" in text
    assert "sent to 4 recipients" in text
    assert len(list((home / "outbox").rglob("*.eml"))) == 4
