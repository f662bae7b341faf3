"""The archive in Japanese: a Japanese issue's page, and the whole chrome when
NEWSLETTER_LANGUAGE=ja."""

from __future__ import annotations

from pathlib import Path

from newsletter.archive.site import build_archive
from newsletter.config import Settings, load_settings
from tests.conftest import GOLDEN_SETTINGS

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "issues" / "ja-sample.yaml"


def _with_japanese_issue(home: Path) -> None:
    # published: archived although it was never sent from this home
    text = SAMPLE.read_text(encoding="utf-8").replace(
        "language: ja\n", "language: ja\npublished: true\n"
    )
    (home / "issues" / "vol-3.1.yaml").write_text(text, encoding="utf-8")


def test_japanese_issue_page_in_an_english_archive(home: Path, settings: Settings) -> None:
    _with_japanese_issue(home)
    out = build_archive(settings).out_dir
    page = (out / "vol-3.1.html").read_text(encoding="utf-8")
    assert '<html lang="ja">' in page
    for text in ("見出し", "詳細", "すべての号", "2024年4月12日", "前の号：Vol. 2.19"):
        assert text in page, text
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in index and "Archive of past issues" in index
    english = (out / "vol-2.19.html").read_text(encoding="utf-8")
    assert '<html lang="en">' in english and "Headlines" in english and "見出し" not in english


def test_whole_archive_in_japanese(home: Path) -> None:
    _with_japanese_issue(home)
    settings = load_settings(None, **GOLDEN_SETTINGS, language="ja")
    out = build_archive(settings).out_dir
    index = (out / "index.html").read_text(encoding="utf-8")
    assert '<html lang="ja">' in index
    for text in ("過去の号の一覧", "最新号：Vol. 3.1", "Atomフィード", "本文へスキップ"):
        assert text in index, text
    assert "Archive of past issues" not in index
    feed = (out / "feed.xml").read_text(encoding="utf-8")
    assert 'xml:lang="ja"' in feed and "の全号（全文）" in feed
