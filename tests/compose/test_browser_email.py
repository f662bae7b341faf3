"""The built email in a real browser (headless Chromium) at phone and desktop widths."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsletter.compose.build import build_issue
from newsletter.compose.render import detail_leads
from newsletter.config import Settings

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str], list[str]]:
    from newsletter.compose.issuefile import load_issue
    from newsletter.config import load_settings
    from tests.conftest import GOLDEN_SETTINGS, ROOT

    out = tmp_path_factory.mktemp("build")
    settings: Settings = load_settings(None, **GOLDEN_SETTINGS)
    issue_path = ROOT / "issues" / "vol-2.19.yaml"
    result = build_issue(issue_path, settings, out)
    issue = load_issue(issue_path)
    return result.out_dir / "email.html", [s.headline for s in issue.stories], detail_leads(issue)


@pytest.mark.parametrize("width", [375, 600, 1024])
def test_no_horizontal_scroll_and_everything_visible(
    browser: Any, built: tuple[Path, list[str], list[str]], width: int
) -> None:
    html_path, headlines, leads = built
    page = browser.new_page(viewport={"width": width, "height": 900})
    try:
        page.goto(html_path.as_uri())
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width, f"horizontal scroll at {width}px"
        targets = [("td.headline", h) for h in headlines] + [
            ("td.detail strong", lead) for lead in leads
        ]
        for selector, text in targets:
            locator = page.locator(selector, has_text=text)
            assert locator.count() == 1, f"{text!r} not found once in {selector}"
            assert locator.is_visible(), f"not visible at {width}px: {text}"
            box = locator.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1, text
        image = page.locator("img.hero-img")
        assert image.evaluate("img => img.complete && img.naturalWidth > 0"), "hero image missing"
        img_box = image.bounding_box()
        assert img_box is not None and img_box["width"] <= min(width, 600) + 1
        # the hidden preheader really is hidden
        assert not page.locator(".preheader").is_visible()
    finally:
        page.close()


def test_container_is_600px_on_desktop_and_full_width_on_phone(
    browser: Any, built: tuple[Path, list[str], list[str]]
) -> None:
    html_path, _, _ = built
    widths = {}
    for viewport in (375, 1024):
        page = browser.new_page(viewport={"width": viewport, "height": 900})
        page.goto(html_path.as_uri())
        widths[viewport] = page.locator("table.container").evaluate(
            "t => t.getBoundingClientRect().width"
        )
        page.close()
    assert widths[1024] == 600
    assert widths[375] == 375


@pytest.mark.parametrize("width", [375, 600])
def test_japanese_email_fits_and_says_lang_ja(
    browser: Any, tmp_path: Path, settings: Settings, width: int
) -> None:
    sample = Path(__file__).resolve().parent.parent / "data" / "issues" / "ja-sample.yaml"
    html_path = build_issue(sample, settings, tmp_path / "build").out_dir / "email.html"
    page = browser.new_page(viewport={"width": width, "height": 900}, locale="ja-JP")
    try:
        page.goto(html_path.as_uri())
        assert page.evaluate("document.documentElement.lang") == "ja"
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width, f"horizontal scroll at {width}px"
        heading = page.locator("h2.section-title", has_text="見出し")
        assert heading.is_visible()
        box = page.locator("td.detail").first.bounding_box()
        assert box is not None and box["x"] + box["width"] <= width + 1
    finally:
        page.close()
