"""Issue files for the archive tests: variants of the sample issue, and a site read back."""

from __future__ import annotations

from pathlib import Path

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
