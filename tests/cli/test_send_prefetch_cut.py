"""A prefetch stream cut anywhere (the child killed mid-write, the pipe closed
early) or a frame that is not what it should be: the send reads the file itself, and
the journal and plan are exactly those of a send without a child."""
from __future__ import annotations

import io
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

from newsletter.cli import send_prefetch
from newsletter.cli.send_prefetch import ListReadAhead
from newsletter.delivery.journal import Journal
from tests.cli.test_send_prefetch import Used, make_list, moved, plan, twin
from tests.support.sendkit import make_settings


@pytest.fixture(autouse=True)
def small_lists_too(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(send_prefetch, "MIN_BYTES", 1)


def _stream(home: Path) -> bytes:
    ra = ListReadAhead.start(make_settings(home))
    assert ra is not None and ra._stream is not None
    data = ra._stream.read()
    ra.close()
    return data


def stream_and_twin_plan(home: Path) -> tuple[bytes, Any]:
    """The list's whole stream as the child writes it, and the plan a send makes that
    reads the list itself, in a copy of ``home`` (as if made in ``home``)."""
    make_list(home)
    Journal(make_settings(home).state_dir / "journal.sqlite3").close()
    data = _stream(home)
    other = twin(home)
    os.chdir(other)
    baseline = moved(plan(other), home)
    os.chdir(home)
    return data, baseline


def test_cut_streams_fall_back(home: Path) -> None:
    data, baseline = stream_and_twin_plan(home)
    cuts = sorted({1, 2, 10, len(data) // 3, len(data) // 2, len(data) - 200, len(data) - 50,
                   len(data) - 10, len(data) - 2, len(data) - 1})
    for cut in cuts:
        Journal(make_settings(home).state_dir / "journal.sqlite3").close()
        (make_settings(home).state_dir / "journal.sqlite3").unlink()
        used = Used(ListReadAhead(0, io.BytesIO(data[:cut])))
        got = plan(home, used)
        assert used.took is False, cut
        assert got == baseline, cut
    # the whole stream is taken
    (make_settings(home).state_dir / "journal.sqlite3").unlink()
    used = Used(ListReadAhead(0, io.BytesIO(data)))
    assert plan(home, used) == baseline and used.took is True


def test_odd_frames(home: Path) -> None:
    make_list(home)
    baseline = plan(home, None)
    frames = [pickle.dumps(("rows", "[[1,2")), pickle.dumps("rows"), pickle.dumps(None),
              pickle.dumps(("end",)), pickle.dumps(("rows", None)), b"garbage-not-a-pickle"]
    for frame in frames:
        (make_settings(home).state_dir / "journal.sqlite3").unlink(missing_ok=True)
        used = Used(ListReadAhead(0, io.BytesIO(frame)))
        assert plan(home, used) == baseline, frame
        assert used.took is False, frame
