"""The send's progress bar: drawn on a terminal (through the console made on first use),
nothing at all elsewhere."""

from __future__ import annotations

import io

import pytest

from newsletter.cli import send_run
from newsletter.console import _LazyConsole


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
