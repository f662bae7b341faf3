"""A busy list during `signups process` is retried next run, not filed for review (and
then called a duplicate): issue 14, "a transient lock timeout is retried next run"."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience import signups
from newsletter.audience.inbound.mailfiles import FolderSource
from newsletter.audience.signups import process_source
from newsletter.config import Settings
from newsletter.errors import LockTimeoutError

DATA = Path(__file__).resolve().parents[1] / "data" / "inbound"


def test_a_lock_timeout_leaves_the_message_for_the_next_run(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (settings.subscribers_file).unlink(missing_ok=True)
    folder = tmp_path / "mail"
    folder.mkdir()
    shutil.copy(DATA / "01-plain-please-add-me.eml", folder)
    real = signups.act_on

    def busy(*args: Any, **kwargs: Any) -> Any:
        raise LockTimeoutError("subscribers/subscribers.csv: locked by another writer for 10 s")

    monkeypatch.setattr(signups, "act_on", busy)
    (first,) = process_source(FolderSource(folder), settings)
    assert first.action == "retry"
    assert first.detail.startswith("busy, left for the next run: ")
    assert not first.review
    assert signups.summarize([first]) == "1 message: 1 retry"

    monkeypatch.setattr(signups, "act_on", real)
    (second,) = process_source(FolderSource(folder), settings)
    assert second.action == "confirmation sent", second.detail
    (third,) = process_source(FolderSource(folder), settings)
    assert third.action == "duplicate"  # now it is one: it was handled
