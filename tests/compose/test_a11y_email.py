"""The email (an issue and the confirmation) in headless Chromium at phone and desktop
widths, light and dark: axe-core finds no serious or critical WCAG A/AA violation, and
every visible text meets 4.5:1 (3:1 when large), computed from the rendered styles."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.confirm_mail import render_confirmation
from newsletter.compose.build import build_issue
from newsletter.config import Settings
from newsletter.tokens import CONFIRM_TTL, make_token
from tests.support.a11y import axe_violations, low_contrast, text_contrast

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def emails(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from newsletter.config import load_settings
    from tests.conftest import GOLDEN_SETTINGS, ROOT

    out = tmp_path_factory.mktemp("build")
    settings: Settings = load_settings(None, **GOLDEN_SETTINGS)
    issue = build_issue(ROOT / "issues" / "vol-2.19.yaml", settings, out).out_dir / "email.html"
    token = make_token(settings.require_secret(), "confirm", "ann@example.com", ttl=CONFIRM_TTL)
    confirm = out / "confirm.html"
    confirm.write_text(render_confirmation("ann@example.com", token, settings).html, "utf-8")
    return {"issue": issue, "confirmation": confirm}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("name", ["issue", "confirmation"])
def test_email_is_accessible(
    browser: Any, emails: dict[str, Path], name: str, width: int, scheme: str
) -> None:
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(emails[name].as_uri())
        metas = page.evaluate(
            "['color-scheme', 'supported-color-schemes'].map("
            "n => document.querySelector(`meta[name=${n}]`).content)"
        )
        assert metas == ["light dark", "light dark"]
        texts = text_contrast(page)
        assert len(texts) > 5  # the check saw the email's text
        assert low_contrast(page) == []
        assert axe_violations(page) == []
        # dark emulation really gets the dark styles (not the client's own inversion)
        container = page.locator("table.container").first.evaluate(
            "t => getComputedStyle(t).backgroundColor"
        )
        assert container == {"light": "rgb(255, 255, 255)", "dark": "rgb(22, 32, 44)"}[scheme]
        brand = page.locator(".masthead").first.evaluate("e => getComputedStyle(e).backgroundColor")
        assert brand == "rgb(11, 37, 69)"  # the navy masthead in both
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner
    finally:
        context.close()
