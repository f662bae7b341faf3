"""Rebuilding the archive: byte-identical output, and only what changed is written."""

from __future__ import annotations

from pathlib import Path

from newsletter.archive.site import build_archive
from newsletter.config import Settings
from tests.support.archivekit import site_bytes


def test_rebuild_is_byte_identical(three: Path, settings: Settings) -> None:
    first = build_archive(settings, three / "a")
    second = build_archive(settings, three / "b")
    assert site_bytes(first.out_dir) == site_bytes(second.out_dir)
    assert "Z" in (three / "a" / "feed.xml").read_text()  # dates come from the issues
    again = build_archive(settings, three / "a")
    assert again.written == [] and len(again.unchanged) == 8


def test_unchanged_files_keep_their_mtime(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    old = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file()}
    for p in old:  # make any rewrite visible even on coarse-mtime filesystems
        import os

        os.utime(p, ns=(1_000_000_000, 1_000_000_000))
    build_archive(settings)
    assert all(p.stat().st_mtime_ns == 1_000_000_000 for p in old)
    assert not list(out.rglob("*.tmp"))


def test_editing_a_detail_changes_only_that_page_and_the_feed(
    three: Path, settings: Settings
) -> None:
    out = build_archive(settings).out_dir
    before = site_bytes(out)
    path = three / "issues" / "vol-2.18.yaml"
    path.write_text(path.read_text().replace("Seven vessels", "Eight vessels"))
    result = build_archive(settings)
    assert result.written == ["feed.xml", "vol-2.18.html"]
    changed = {k for k, v in site_bytes(out).items() if before[k] != v}
    assert changed == {"feed.xml", "vol-2.18.html"}


def test_editing_a_headline_changes_that_page_the_index_and_the_feed(
    three: Path, settings: Settings
) -> None:
    build_archive(settings)
    path = three / "issues" / "vol-2.19.yaml"
    path.write_text(path.read_text().replace("exercises resume", "exercises return"))
    assert build_archive(settings).written == ["feed.xml", "index.html", "vol-2.19.html"]


def test_removed_issue_loses_its_page_and_neighbours_relink(
    three: Path, settings: Settings
) -> None:
    out = build_archive(settings).out_dir
    (three / "issues" / "vol-2.20.yaml").unlink()
    result = build_archive(settings)
    assert result.removed == ["assets/vol-2.20/vol-2.19-hero.png", "vol-2.20.html"]
    assert not (out / "assets" / "vol-2.20").exists()
    assert 'rel="next"' not in (out / "vol-2.19.html").read_text()
    assert sorted(result.written) == ["feed.xml", "index.html", "vol-2.19.html"]
