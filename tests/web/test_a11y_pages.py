"""Every page a reader meets on the site, in headless Chromium at 375 and 1280 px, light
and dark: axe-core finds no serious or critical WCAG A/AA violation, every visible text
meets 4.5:1 (3:1 when large) from the rendered styles, and nothing scrolls sideways."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from newsletter.web import create_app
from tests.support.a11y import (
    axe_violations,
    focus_rings,
    low_contrast,
    text_contrast,
    weak_focus,
)
from tests.support.eventkeys import keypair
from tests.support.webserver import confirm_path, running, unsubscribe_path, web_settings

pytestmark = pytest.mark.browser


@pytest.fixture
def site(home: Path) -> Iterator[tuple[str, Settings]]:
    """A server whose list has pat (pending) and ann (active)."""
    settings = web_settings(keypair()[1])
    store = SubscriberStore.from_settings(settings)
    store.add("pat@example.com", status="pending")
    store.add("ann@example.com", status="active")
    with running(create_app(settings)) as url:
        yield url, settings


Path_ = Callable[[Settings], str]
PAGES: dict[str, Path_] = {
    "signup": lambda s: "/subscribe",
    "confirm-ask": lambda s: confirm_path(s, "pat@example.com"),
    "confirm-used": lambda s: confirm_path(s, "ann@example.com"),
    "confirm-expired": lambda s: confirm_path(s, "pat@example.com", now=time.time() - 8 * 86400),
    "unsubscribe-ask": lambda s: unsubscribe_path(s, "ann@example.com"),
    "bad-link": lambda s: "/confirm/x.y",
    "not-found": lambda s: "/nothing-here",
}


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("name", sorted(PAGES))
def test_page_is_accessible(
    browser: Any, site: tuple[str, Settings], name: str, width: int, scheme: str
) -> None:
    url, settings = site
    context = browser.new_context(viewport={"width": width, "height": 900}, color_scheme=scheme)
    page = context.new_page()
    try:
        page.goto(url + PAGES[name](settings))
        assert page.evaluate("document.documentElement.lang") == "en"
        assert len(text_contrast(page)) >= 3  # the check saw the page's text
        assert low_contrast(page) == []
        assert axe_violations(page) == []
        scroll, inner = page.evaluate("[document.documentElement.scrollWidth, innerWidth]")
        assert scroll <= inner
    finally:
        context.close()


@pytest.mark.parametrize("name", ["signup", "confirm-ask", "confirm-used", "unsubscribe-ask"])
def test_focus_is_visible_everywhere(browser: Any, site: tuple[str, Settings], name: str) -> None:
    """Every Tab stop shows a ring of at least 2px and 3:1 against its surroundings
    (the masthead's red ring on navy was 2.1:1)."""
    url, settings = site
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    try:
        page.goto(url + PAGES[name](settings))
        assert len(focus_rings(page)) >= 2
        page.goto(url + PAGES[name](settings))
        assert weak_focus(page) == []
    finally:
        context.close()
