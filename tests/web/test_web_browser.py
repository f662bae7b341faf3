"""The pages of `newsletter serve` in headless Chromium: forms, buttons, phone widths."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from newsletter.audience.subscribers import SubscriberStore
from newsletter.config import Settings
from newsletter.web import create_app
from tests.support.eventkeys import keypair
from tests.support.webserver import (
    running,
    unsubscribe_path,
    wait_for_confirmation,
    web_settings,
)

pytestmark = pytest.mark.browser

STATUS_LOGGED = "Failed to load resource: the server responded with a status of 4"
LONG = "a.rather.long.local.part.for.testing.wrapping@a-long-subdomain.example.org"


@pytest.fixture
def wsettings(home: Path) -> Settings:
    return web_settings(keypair()[1])


@pytest.fixture
def base_url(wsettings: Settings) -> Iterator[str]:
    with running(create_app(wsettings)) as url:
        yield url


class Visit:
    """One browser page that records every request and console error it sees."""

    def __init__(self, browser: Any, base_url: str, width: int) -> None:
        self.base_url = base_url
        self.context = browser.new_context(viewport={"width": width, "height": 800})
        self.page = self.context.new_page()
        self.requests: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requests.append(request.url))
        self.page.on("console", self._console)

    def _console(self, msg: Any) -> None:
        # an error page's own status is logged too; anything else (CSP!) is a failure
        if msg.type == "error" and not msg.text.startswith(STATUS_LOGGED):
            self.errors.append(msg.text)

    def check(self) -> None:
        """Nothing left 127.0.0.1, nothing broke the CSP, no sideways scrolling."""
        outside = [url for url in self.requests if not url.startswith(self.base_url)]
        assert outside == [], f"external requests: {outside}"
        assert self.errors == [], f"console errors (CSP?): {self.errors}"
        scroll, inner = self.page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll <= inner, f"horizontal overflow: {scroll} > {inner}"
        assert self.page.evaluate("document.documentElement.lang") == "en"
        assert self.page.locator("main#main").count() == 1
        assert self.page.locator("header").count() == 1
        assert self.page.locator("footer").count() == 1
        assert self.page.evaluate("getComputedStyle(document.body).backgroundColor") == (
            "rgb(238, 241, 245)"
        )

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def visit(browser: Any, base_url: str) -> Iterator[Visit]:
    page = Visit(browser, base_url, 375)
    try:
        yield page
    finally:
        page.close()


def test_signup_then_confirm_from_the_email(visit: Visit, home: Path, wsettings: Settings) -> None:
    page = visit.page
    page.goto(visit.base_url + "/subscribe")
    visit.check()
    masthead = page.locator(".masthead").evaluate("e => getComputedStyle(e).backgroundColor")
    assert masthead == "rgb(11, 37, 69)"  # the email's navy
    page.get_by_label("Email address").fill("reader@example.net")
    page.get_by_label("Name (optional)").fill("山田 花子")
    page.get_by_role("button", name="Subscribe").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    visit.check()

    link = wait_for_confirmation(home, "reader@example.net")
    store = SubscriberStore.from_settings(wsettings)
    page.goto(visit.base_url + link)
    page.get_by_role("heading", name="Confirm your subscription").wait_for()
    visit.check()
    pending = store.get("reader@example.net")
    assert pending is not None and pending.status == "pending"  # opening the link is not enough
    page.get_by_role("button", name="Confirm subscription").click()
    page.get_by_role("heading", name="You are subscribed").wait_for()
    visit.check()
    active = store.get("reader@example.net")
    assert active is not None and active.status == "active" and active.name == "山田 花子"


def test_unsubscribe_button_and_resubscribe(visit: Visit, home: Path, wsettings: Settings) -> None:
    store = SubscriberStore.from_settings(wsettings)
    store.add(LONG)
    page = visit.page
    page.goto(visit.base_url + unsubscribe_path(wsettings, LONG))
    page.get_by_role("heading", name="Unsubscribe").wait_for()
    visit.check()
    unchanged = store.get(LONG)
    assert unchanged is not None and unchanged.status == "active"
    page.get_by_role("button", name="Unsubscribe").click()
    page.get_by_role("heading", name="You are unsubscribed").wait_for()
    visit.check()
    gone = store.get(LONG)
    assert gone is not None and gone.status == "unsubscribed"

    page.get_by_role("button", name="Subscribe again").click()
    page.get_by_role("heading", name="Check your inbox").wait_for()
    visit.check()
    wait_for_confirmation(home, LONG)
    # the row stays unsubscribed until the mailed confirmation is used (review finding:
    # it used to become "pending", which anyone could trigger)
    back = store.get(LONG)
    assert back is not None and back.status == "unsubscribed"


def test_error_pages_and_keyboard(browser: Any, base_url: str, wsettings: Settings) -> None:
    for width in (375, 1024):
        visit = Visit(browser, base_url, width)
        try:
            page = visit.page
            response = page.goto(base_url + "/u/damaged-token")
            assert response is not None and response.status == 400
            assert page.get_by_role("heading", name="This link does not work").is_visible()
            visit.check()
            page.goto(base_url + "/nowhere")
            visit.check()
            page.goto(base_url + "/subscribe")
            page.keyboard.press("Tab")
            focused = page.evaluate("document.activeElement.textContent")
            assert focused == "Skip to content"
            assert page.locator(".skip-link").is_visible()
            page.keyboard.press("Enter")
            page.keyboard.press("Tab")
            page.keyboard.press("Tab")
            # after the skip link and the title link: the email field (the honeypot is skipped)
            active_id = page.evaluate("document.activeElement.id")
            assert active_id in ("email", "name")
        finally:
            visit.close()
