"""Issue files for the archive tests: variants of the sample issue, and a site read back."""

from __future__ import annotations

from pathlib import Path

from newsletter.cli.send import journal_path
from newsletter.config import load_settings
from newsletter.delivery.journal import Journal
from newsletter.delivery.transports.base import Outcome

FIRST_HEADLINE = "Defense chiefs Austin, Kihara meet to discuss next alliance initiatives"
#: A headline that needs escaping in HTML and again in the feed's XML.
TRICKY = """Tariffs <25% & "fair" trade: Japan's view"""


def write_variant(
    home: Path, volume: str, date: str, *, replace: dict[str, str] | None = None
) -> Path:
    """issues/vol-<volume>.yaml made from vol-2.19 by editing its YAML text."""
    text = (home / "issues" / "vol-2.19.yaml").read_text(encoding="utf-8")
    text = text.replace('volume: "2.19"', f'volume: "{volume}"').replace(
        "date: 2023-10-13", f"date: {date}"
    )
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = home / "issues" / f"vol-{volume}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def write_tricky_issue(home: Path) -> Path:
    """issues/vol-2.20.yaml: vol-2.19 two weeks later, its first headline :data:`TRICKY`."""
    return write_variant(
        home,
        "2.20",
        "2023-10-27",
        replace={
            f"- headline: {FIRST_HEADLINE}": "- headline: '" + TRICKY.replace("'", "''") + "'"
        },
    )


def site_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def mark_sent(home: Path, slug: str, email: str = "reader@example.org") -> None:
    """Record in the home's send journal that ``slug`` reached one reader."""
    settings = load_settings(None)
    assert settings.state_dir.resolve().is_relative_to(home.resolve())
    with Journal(journal_path(settings)) as journal:
        journal.sync(slug, [(email, email, "")])
        journal.record(slug, [Outcome.sent(email, "m1")])


def make_draft(home: Path, volume: str, date: str) -> Path:
    """issues/vol-<volume>.yaml as an unsent draft (no `published: true`)."""
    return write_variant(home, volume, date, replace={"\npublished: true\n": "\n"})
