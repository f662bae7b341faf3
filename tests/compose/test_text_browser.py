"""The email's HTML in a text browser (w3m -dump): the preheader reads as one plain
sentence, never as a line of padding junk (figure spaces and joiners printed as blanks,
or as "?" where the terminal is not UTF-8)."""

from __future__ import annotations

import shutil
import subprocess
import unicodedata
from pathlib import Path

import pytest

from newsletter.audience.confirm_mail import render_confirmation
from newsletter.compose.issuefile import load_issue
from newsletter.compose.render import RenderedIssue, render_issue
from newsletter.config import Settings
from newsletter.tokens import CONFIRM_TTL, make_token

W3M = shutil.which("w3m")
JA_SAMPLE = Path(__file__).resolve().parent.parent / "data" / "issues" / "ja-sample.yaml"


@pytest.fixture
def w3m() -> str:
    if W3M is None:
        pytest.fail("w3m not found: run `bash scripts/system-packages.sh` (it installs it)")
    return W3M


def dump(w3m: str, html: str, charset: str, tmp_path: Path) -> str:
    page = tmp_path / "email.html"
    page.write_text(html, encoding="utf-8")
    out = subprocess.run(
        [w3m, "-dump", "-T", "text/html", "-cols", "80", "-I", "UTF-8", "-O", charset, str(page)],
        capture_output=True,
        check=True,
        timeout=30,
        env={"LANG": "C.UTF-8", "HOME": str(tmp_path)},
    )
    return out.stdout.decode(charset, errors="strict")


def _invisible(ch: str) -> bool:
    """A character a reader sees as nothing or as a blank: format, combining, and
    spaces other than the plain one."""
    category = unicodedata.category(ch)
    return category in ("Cf", "Mn", "Me") or (category == "Zs" and ch not in (" ", "\u3000"))


def rendered_mails(settings: Settings, home: Path) -> dict[str, RenderedIssue]:
    token = make_token(settings.require_secret(), "confirm", "ann@example.com", ttl=CONFIRM_TTL)
    return {
        "issue": render_issue(load_issue(home / "issues" / "vol-2.19.yaml"), settings),
        "issue-ja": render_issue(load_issue(JA_SAMPLE), settings),
        "confirmation": render_confirmation("ann@example.com", token, settings),
    }


def preheader_lines(text: str, preheader: str) -> tuple[list[str], str]:
    """The dump's first lines, as many as hold the preheader's characters (Japanese
    wraps anywhere, so not its words), and the line after."""
    want = len("".join(preheader.split()))
    lines = text.splitlines()
    got = 0
    for n, line in enumerate(lines):
        got += len("".join(line.split()))
        if got >= want:
            return lines[: n + 1], lines[n + 1] if n + 1 < len(lines) else ""
    return lines, ""


@pytest.mark.parametrize("name", ["issue", "issue-ja", "confirmation"])
def test_the_preheader_is_one_clean_sentence(
    name: str, w3m: str, settings: Settings, home: Path, tmp_path: Path
) -> None:
    rendered = rendered_mails(settings, home)[name]
    text = dump(w3m, rendered.html, "UTF-8", tmp_path)
    preheader = " ".join(rendered.preheader.split())
    head, after = preheader_lines(text, preheader)
    assert "".join("".join(head).split()) == "".join(preheader.split()), head
    assert [ch for line in head for ch in line if _invisible(ch)] == [], head
    # the old padding printed as blank lines after it; the next line is the page's own
    assert after == "" or (after.strip() and not all(_invisible(ch) for ch in after.strip()))
    assert [line for line in head if not line.strip()] == []


@pytest.mark.parametrize("name", ["issue", "confirmation"])
def test_no_question_marks_on_an_ascii_terminal(
    name: str, w3m: str, settings: Settings, home: Path, tmp_path: Path
) -> None:
    """Where the terminal is not UTF-8 the padding printed as rows of "??"; the
    preheader's own characters may still become "?" (a middle dot), never more."""
    rendered = rendered_mails(settings, home)[name]
    text = dump(w3m, rendered.html, "US-ASCII", tmp_path)
    head, _after = preheader_lines(text, rendered.preheader)
    own = sum(not ch.isascii() for ch in rendered.preheader)
    assert "".join(head).count("?") <= own + rendered.preheader.count("?"), head
