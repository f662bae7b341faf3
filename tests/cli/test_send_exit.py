"""A send ends without the interpreter's last walk over every object (gc.freeze), and
still leaves its databases whole: every SQLite file closed, its WAL in the file."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.support.sendkit import send_env, write_subscribers


def test_a_send_leaves_no_wal_behind(home: Path) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 300)
    done = subprocess.run([sys.executable, "-m", "newsletter", "send", "vol-2.19", "--yes"],
                          cwd=home, env=send_env(), capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    state = home / ".newsletter"
    assert (state / "ledger.sqlite3").exists() and (state / "journal.sqlite3").exists()
    left = sorted(p.name for p in state.iterdir() if p.name.endswith(("-wal", "-shm")))
    assert left == []
