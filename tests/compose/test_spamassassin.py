"""Email quality: SpamAssassin with local rules only (no network tests) scores it clean."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from newsletter.compose.build import build_issue
from newsletter.config import Settings

SPAMASSASSIN = shutil.which("spamassassin")


@pytest.fixture
def spamassassin() -> str:
    if SPAMASSASSIN is None:
        pytest.fail("spamassassin not found: run `bash scripts/test.sh` (it installs it)")
    return SPAMASSASSIN


def test_sample_email_scores_clean(
    spamassassin: str, home: Path, settings: Settings, tmp_path: Path
) -> None:
    result = build_issue(home / "issues" / "vol-2.19.yaml", settings, tmp_path / "out")
    eml = (result.out_dir / "email.eml").read_bytes()
    proc = subprocess.run(
        [spamassassin, "-L", "-t"],
        input=eml,
        capture_output=True,
        timeout=120,
        check=False,
        env={**os.environ, "HOME": str(tmp_path)},
    )
    report = proc.stdout.decode("utf-8", "replace")
    found = re.search(r"Content analysis details:\s+\((-?[\d.]+) points", report)
    assert found, report[-2000:]
    fired = re.findall(r"^\s*(-?\d+\.\d+)\s+([A-Z0-9_]+)", report, re.M)
    positive = [(rule, float(points)) for points, rule in fired if float(points) > 0]
    assert float(found.group(1)) <= 0.5, f"SpamAssassin rules fired: {positive}"
