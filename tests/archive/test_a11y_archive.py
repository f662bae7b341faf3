"""The archive's index and issue pages in headless Chromium at 375 and 1280 px, light
and dark: axe-core finds no serious or critical WCAG A/AA violation, every visible text
meets 4.5:1 (3:1 when large), the focus ring is visible at every Tab stop, and nothing
scrolls sideways."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsletter.archive.site import build_archive
from newsletter.config import Settings
from tests.support.a11y import (
    axe_violations,
    focus_rings,
    low_contrast,
    text_contrast,
    weak_focus,
)

pytestmark = pytest.mark.browser


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("name", ["index.html", "vol-2.19.html"])
def test_archive_page_is_accessible(
    browser: Any, three: Path, settings: Settings, name: str, width: int, scheme: str
) -> None:
    out = build_archive(settings).out_dir.resolve()
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto((out / name).as_uri())
        assert len(text_contrast(page)) > 10
        assert low_contrast(page) == []
        assert axe_violations(page) == []
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner
        page.goto((out / name).as_uri())
        assert len(focus_rings(page, tabs=8)) == 8  # every Tab landed somewhere
        page.goto((out / name).as_uri())
        assert weak_focus(page, tabs=8) == []
    finally:
        context.close()
