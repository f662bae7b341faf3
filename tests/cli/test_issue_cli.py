"""CLI: exact messages and exit codes for check, build, new, preview --open."""

from __future__ import annotations

import re
import subprocess
import sys
from email import policy
from email.parser import BytesParser
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from newsletter.cli.app import app

runner = CliRunner()


def test_check_sample_passes_with_warnings(home: Path) -> None:
    result = runner.invoke(app, ["check", "vol-2.19"])
    assert result.exit_code == 0, result.output
    assert re.fullmatch(
        r"issues/vol-2\.19\.yaml: 5 stories, HTML 1\d\.\d KB, subject 'US-Japan Alliance "
        r"Digest, Vol 2\.19 \(October 13, 2023\)': 0 errors, 19 warnings",
        result.stdout.strip(),
    )
    assert (
        "issues/vol-2.19.yaml:18: warning: story 1 detail: placeholder link [reaffirmed](#): "
        "replace it with the real URL" in result.stderr
    )


def test_check_strict_fails_on_warnings(home: Path) -> None:
    result = runner.invoke(app, ["check", "vol-2.19", "--strict"])
    assert result.exit_code == 1
    assert result.stderr.rstrip().endswith("19 warnings (--strict: warnings fail)")


def test_check_broken_file_lists_every_error_without_traceback(home: Path) -> None:
    path = home / "issues" / "vol-2.20.yaml"
    text = (home / "issues" / "vol-2.19.yaml").read_text()
    text = text.replace("date: 2023-10-13", "date: 2023-13-45").replace("  alt:", "  alts:")
    path.write_text(text)
    result = runner.invoke(app, ["check", str(path)])
    assert result.exit_code == 1
    assert result.stderr == (
        f"error: {path}:5: date: not a date: '2023-13-45' "
        "(write it as YYYY-MM-DD, e.g. 2023-10-13)\n"
        f"{path}:9: hero.alts: unknown key 'alts' (did you mean 'alt'?)\n"
        "2 errors\n"
    )
    assert "Traceback" not in result.output


def test_unknown_issue_name(home: Path) -> None:
    result = runner.invoke(app, ["build", "vol-9.9"])
    assert result.exit_code == 1
    assert result.stderr == (
        "error: issues/vol-9.9.yaml: no issue named 'vol-9.9'\n"
        "1 error\nhint: issues here: vol-2.19\n"
    )


def test_build_writes_the_three_files(home: Path) -> None:
    result = runner.invoke(app, ["build", "vol-2.19"])
    assert result.exit_code == 0, result.output
    out = home / "build" / "vol-2.19"
    assert result.stdout.splitlines()[0] == "built vol-2.19 into build/vol-2.19/"
    assert "19 warnings (run `newsletter check vol-2.19` to see them)" in result.stderr
    for name in ("email.html", "email.txt", "email.eml", "vol-2.19-hero.png"):
        assert (out / name).stat().st_size > 0
    html = (out / "email.html").read_text()
    assert 'src="vol-2.19-hero.png"' in html and "%%" not in html
    assert "mailto:newsletter@example.org?subject=unsubscribe" in html
    msg = BytesParser(policy=policy.default).parsebytes((out / "email.eml").read_bytes())
    assert msg.defects == [] and msg["To"] == "Sample Reader <reader@example.org>"
    assert msg.get_content_type() == "multipart/alternative"


def test_build_out_folder(home: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "issues/vol-2.19.yaml", "--out", str(tmp_path / "x")])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "x" / "email.eml").exists()


def test_new_scaffolds_next_volume(home: Path) -> None:
    result = runner.invoke(app, ["new"])
    assert result.exit_code == 0, result.output
    created = home / "issues" / "vol-2.20.yaml"
    assert result.stdout.strip() == (
        f"created {Path('issues') / 'vol-2.20.yaml'} from vol-2.19.yaml: fill it in, then run "
        "`newsletter check vol-2.20`"
    )
    text = created.read_text()
    assert 'volume: "2.20"' in text and "date: 2023-10-27" in text
    again = runner.invoke(app, ["new"])  # latest is now 2.20, which is not valid yet
    assert again.exit_code == 1
    assert "issues/vol-2.20.yaml:" in again.stderr
    check = runner.invoke(app, ["check", "vol-2.20"])
    assert check.exit_code == 1 and "story 1 headline: must not be empty" in check.stderr


def test_new_refuses_to_overwrite(home: Path) -> None:
    result = runner.invoke(app, ["new", "2.19"])
    assert result.exit_code == 1
    assert result.stderr.startswith("error: issues/vol-2.19.yaml: already exists; not overwritten")


def test_preview_open_writes_page(home: Path) -> None:
    result = runner.invoke(app, ["preview", "vol-2.19", "--open", "--no-browser"])
    assert result.exit_code == 0, result.output
    page = home / "build" / "vol-2.19" / "preview.html"
    assert 'width="375"' in page.read_text() and 'src="email.html"' in page.read_text()


def test_config_error_exit_code(home: Path, monkeypatch: object) -> None:
    import pytest as _pytest

    mp = _pytest.MonkeyPatch()
    mp.setenv("NEWSLETTER_FROM", "bogus")
    try:
        result = runner.invoke(app, ["check", "vol-2.19"])
    finally:
        mp.undo()
    assert result.exit_code == 3
    assert result.stderr.startswith("error: invalid setting: NEWSLETTER_FROM: not a valid mailbox")


def test_every_command_has_help() -> None:
    import typer.main

    def walk(cmd: Any, path: list[str]) -> None:
        assert cmd.help, f"`newsletter {' '.join(path)}` has no help"
        for name, sub in getattr(cmd, "commands", {}).items():
            walk(sub, [*path, name])

    walk(typer.main.get_command(app), [])


def test_console_script_runs_as_module(home: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "newsletter", "check", "vol-2.19"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert "0 errors, 19 warnings" in proc.stdout


def test_preview_serves_desktop_and_phone_views_on_loopback(home: Path) -> None:
    import httpx

    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "preview", "vol-2.19", "--port", "0", "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        match = re.search(r"previewing at (http://127\.0\.0\.1:\d+/preview\.html)", line)
        assert match, line
        page = httpx.get(match.group(1), timeout=10)
        assert page.status_code == 200
        assert 'width="800"' in page.text and 'width="375"' in page.text
        base = match.group(1).rsplit("/", 1)[0]
        email = httpx.get(f"{base}/email.html", timeout=10)
        assert email.status_code == 200 and "Defense chiefs Austin" in email.text
        assert httpx.get(f"{base}/vol-2.19-hero.png", timeout=10).status_code == 200
    finally:
        proc.terminate()
        proc.communicate(timeout=10)
