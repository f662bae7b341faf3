"""A send ends without the interpreter's last walk over every object (gc.freeze), and
still leaves its databases whole: every SQLite file closed, its WAL in the file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.sendkit import SEND_SETTINGS, write_subscribers

ROOT = Path(__file__).resolve().parents[2]
ENV_NAMES = {
    "sender": "NEWSLETTER_FROM",
    "contact": "NEWSLETTER_CONTACT",
    "public_url": "NEWSLETTER_PUBLIC_URL",
    "secret_key": "NEWSLETTER_SECRET_KEY",
}


def test_a_send_leaves_no_wal_behind(home: Path) -> None:
    write_subscribers(home / "subscribers" / "subscribers.csv", 300)
    env = {k: v for k, v in os.environ.items() if not k.startswith("NEWSLETTER_")}
    env.update({ENV_NAMES[k]: str(v) for k, v in SEND_SETTINGS.items()})
    env["PYTHONPATH"] = str(ROOT)
    done = subprocess.run([sys.executable, "-m", "newsletter", "send", "vol-2.19", "--yes"],
                          cwd=home, env=env, capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    state = home / ".newsletter"
    assert (state / "ledger.sqlite3").exists() and (state / "journal.sqlite3").exists()
    left = sorted(p.name for p in state.iterdir() if p.name.endswith(("-wal", "-shm")))
    assert left == []
