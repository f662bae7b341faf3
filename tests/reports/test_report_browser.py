"""The HTML report behind `newsletter serve`, in headless Chromium at phone and desktop
widths: no sideways scrolling, every chart drawn and visible, nothing fetched from
anywhere but the page itself, nothing refused by its content policy."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from newsletter.reports.eventstore import Event, EventStore
from newsletter.web import create_app
from tests.support.eventkeys import keypair
from tests.support.webserver import running, web_settings

pytestmark = pytest.mark.browser

TOKEN = "browser-report-token-0123"


def seed_events(state_dir: Path) -> None:
    """Twelve issues, a growing list, a few bounces and complaints, tracked opens."""
    with EventStore.in_state_dir(state_dir) as store:
        for n in range(1, 13):
            issue = f"vol-2.{n:02d}"
            sent = f"2026-{(n - 1) // 2 + 1:02d}-{1 + 14 * ((n - 1) % 2):02d}T09:00:00Z"
            readers = 40 + 3 * n
            store.note_issue(issue, sent, readers)
            events = [Event(issue, f"r{i}@example.net", "sent", sent, "test")
                      for i in range(readers)]  # fmt: skip
            events += [Event(issue, f"r{i}@example.net", "delivered", sent, "test")
                       for i in range(readers - n % 3)]  # fmt: skip
            events += [Event(issue, f"r{i}@example.net", "bounce_hard", sent, "test")
                       for i in range(n % 3)]  # fmt: skip
            events += [Event(issue, f"r{i}@example.net", "open", sent, "test")
                       for i in range(readers // 2)]  # fmt: skip
            if n == 7:
                events.append(Event(issue, "r5@example.net", "complaint", sent, "test"))
            store.add(events)


@pytest.mark.parametrize("width", [375, 1280])
def test_report_page_at_phone_and_desktop_widths(home: Path, browser: Any, width: int) -> None:
    settings = web_settings(keypair()[1], report_token=TOKEN)
    seed_events(settings.state_dir)
    with running(create_app(settings)) as base:
        context = browser.new_context(
            viewport={"width": width, "height": 900},
            http_credentials={"username": "editor", "password": TOKEN},
        )
        try:
            page = context.new_page()
            requests: list[str] = []
            errors: list[str] = []
            page.on("request", lambda request: requests.append(request.url))
            page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
            response = page.goto(base + "/reports")
            assert response is not None and response.status == 200
            assert requests == [base + "/reports"], f"other requests: {requests}"
            assert errors == [], f"console errors (CSP?): {errors}"
            scroll, inner = page.evaluate(
                "[document.documentElement.scrollWidth, window.innerWidth]"
            )
            assert scroll <= inner, f"horizontal overflow: {scroll} > {inner}"
            charts = page.locator("figure svg")
            assert charts.count() == 3
            for i in range(3):
                chart = charts.nth(i)
                chart.scroll_into_view_if_needed()
                assert chart.is_visible()
                box = chart.bounding_box()
                assert box is not None
                assert 200 <= box["width"] <= inner and box["height"] >= 100, box
                # drawn: bars or lines for the twelve issues, not an empty frame
                assert chart.locator(".series").count() >= 1
                assert chart.locator("text", has_text="vol-2.12").count() >= 1
            assert page.locator("tbody tr").count() == 12
            assert page.locator("td.warn").count() >= 1  # vol-2.07's complaint, 2 % bounces
            assert "@example" not in page.content()
        finally:
            context.close()
