"""The web archive in a real browser (headless Chromium): phone and desktop widths, no
request leaves the site, readable and accessible, works from disk and from a subpath."""

from __future__ import annotations

import functools
import itertools
import shutil
import threading
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from newsletter.archive.site import build_archive
from newsletter.compose.issuefile import list_issue_files, load_issue
from newsletter.config import load_settings
from tests.conftest import GOLDEN_SETTINGS, ROOT
from tests.support.archivekit import write_tricky_issue, write_variant

pytestmark = pytest.mark.browser
PAGES = ["index.html", "vol-2.18.html", "vol-2.19.html", "vol-2.20.html"]

CONTRAST_JS = """() => {
  const parse = c => {
    const p = c.match(/rgba?\\(([^)]+)\\)/)[1].split(/[\\s,\\/]+/).filter(Boolean).map(Number);
    return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
  };
  const lum = ([r, g, b]) => {
    const f = v => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    };
    return 0.2126 * f(r) + 0.7152 * f(g) + 0.0722 * f(b);
  };
  const background = el => {
    for (; el; el = el.parentElement) {
      const c = parse(getComputedStyle(el).backgroundColor);
      if (c[3] > 0) return c;
    }
    return [255, 255, 255, 1];
  };
  const low = [];
  let checked = 0;
  for (const el of document.querySelectorAll('body *')) {
    if (![...el.childNodes].some(n => n.nodeType === 3 && n.textContent.trim())) continue;
    const style = getComputedStyle(el);
    const box = el.getBoundingClientRect();
    if (style.visibility === 'hidden' || box.width === 0 || box.bottom < 0) continue;
    const a = lum(parse(style.color)), b = lum(background(el));
    const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
    const size = parseFloat(style.fontSize), bold = parseInt(style.fontWeight) >= 700;
    const need = size >= 24 || (bold && size >= 18.66) ? 3 : 4.5;
    checked += 1;
    if (ratio < need) {
      low.push(`${el.className} ${ratio.toFixed(2)}: ${el.textContent.slice(0, 30)}`);
    }
  }
  return [checked, low];
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[str]]]:
    """A three-issue archive built from a copy of the sample; and each page's headlines."""
    home = tmp_path_factory.mktemp("home")
    shutil.copytree(ROOT / "issues", home / "issues")
    write_variant(
        home,
        "2.18",
        "2023-09-29",
        replace={"src: assets/vol-2.19-hero.png": "src: https://images.example.org/2.18.jpg"},
    )
    write_tricky_issue(home)
    settings = load_settings(None, home=home, **GOLDEN_SETTINGS)
    out = build_archive(settings, home / "www" / "deep" / "archive").out_dir
    headlines = {
        f"{p.stem}.html": [s.headline for s in load_issue(p).stories]
        for p in list_issue_files(home / "issues")
    }
    headlines["index.html"] = [h for hs in reversed(headlines.values()) for h in hs]
    return out, headlines


def _open(browser: Any, url: str, width: int) -> tuple[Any, list[str], list[str]]:
    page = browser.new_page(viewport={"width": width, "height": 900})
    requests: list[str] = []
    failed: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("requestfailed", lambda r: failed.append(r.url))
    page.on("response", lambda r: failed.append(r.url) if r.status >= 400 else None)
    page.goto(url)
    page.wait_for_load_state("load")
    return page, requests, failed


@pytest.mark.parametrize("width", [375, 1280])
@pytest.mark.parametrize("name", PAGES)
def test_page_fits_shows_every_headline_and_requests_nothing_outside(
    browser: Any, site: tuple[Path, dict[str, list[str]]], width: int, name: str
) -> None:
    out, headlines = site
    page, requests, failed = _open(browser, (out / name).as_uri(), width)
    try:
        scroll_width, inner_width = page.evaluate(
            "[document.documentElement.scrollWidth, window.innerWidth]"
        )
        assert scroll_width <= inner_width, f"horizontal scroll at {width}px"
        links = page.locator(".headlines a")
        assert links.all_inner_texts() == headlines[name]
        for i in range(links.count()):
            link = links.nth(i)
            assert link.is_visible(), headlines[name][i]
            box = link.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= width + 1
        content = page.locator(".page").bounding_box()
        assert content is not None and content["width"] <= 680
        assert content["width"] == (min(width, 680))
        masthead = page.locator("header.masthead").evaluate(
            "e => getComputedStyle(e).backgroundColor"
        )
        assert masthead == "rgb(11, 37, 69)", "stylesheet not applied"
        for image in page.locator("img").all():
            assert image.evaluate("i => i.complete && i.naturalWidth > 0"), "image missing"
            img_box = image.bounding_box()
            assert img_box is not None and img_box["width"] <= min(width, 680)
        assert requests, "no request recorded"
        outside = [u for u in requests if not u.startswith("file://")]
        assert outside == [], f"requests outside file://: {outside}"
        assert failed == []
    finally:
        page.close()


@pytest.mark.parametrize("name", ["index.html", "vol-2.19.html"])
def test_accessible_structure_focus_and_contrast(
    browser: Any, site: tuple[Path, dict[str, list[str]]], name: str
) -> None:
    out, _ = site
    page, _, _ = _open(browser, (out / name).as_uri(), 375)
    try:
        assert page.evaluate("document.documentElement.lang") == "en"
        for role in ("banner", "navigation", "main", "contentinfo"):
            assert page.get_by_role(role).count() >= 1, role
        levels = page.evaluate(
            "[...document.querySelectorAll('h1,h2,h3,h4,h5,h6')].map(h => +h.tagName[1])"
        )
        assert levels[0] == 1 and levels.count(1) == 1
        assert all(b - a <= 1 for a, b in itertools.pairwise(levels))
        assert page.evaluate("[...document.images].every(i => i.alt.trim().length > 0)")
        # the skip link is the first stop, visible when focused, and lands on <main>
        page.keyboard.press("Tab")
        skip = page.locator("a.skip-link")
        assert skip.evaluate("a => a === document.activeElement")
        box = skip.bounding_box()
        assert box is not None and box["y"] >= 0, "skip link stays off screen when focused"
        assert skip.evaluate("a => getComputedStyle(a).outlineStyle") != "none"
        page.keyboard.press("Enter")
        assert page.evaluate("document.activeElement.id") == "main"
        # every other link shows a focus ring
        page.keyboard.press("Tab")
        ring = page.evaluate(
            "(() => { const s = getComputedStyle(document.activeElement);"
            " return [document.activeElement.tagName, s.outlineStyle, s.outlineWidth]; })()"
        )
        assert ring[0] == "A" and ring[1] != "none" and float(ring[2][:-2]) >= 2
        checked, low = page.evaluate(CONTRAST_JS)
        assert checked > 10
        assert low == [], f"contrast below WCAG AA: {low}"
    finally:
        page.close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def served(site: tuple[Path, dict[str, list[str]]]) -> Iterator[str]:
    """The site's parent folders on a local HTTP server: the archive sits at a subpath."""
    out, _ = site
    root = out.parent.parent  # www/: the archive is at /deep/archive/
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/deep/archive/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def test_works_from_a_subpath_of_a_web_server(
    browser: Any, served: str, site: tuple[Path, dict[str, list[str]]]
) -> None:
    _, headlines = site
    page, requests, failed = _open(browser, served, 1280)  # the folder URL serves index.html
    try:
        assert page.locator(".headlines a").all_inner_texts() == headlines["index.html"]
        page.get_by_role("link", name="Vol 2.19", exact=True).click()
        page.wait_for_load_state("load")
        assert page.url == served + "vol-2.19.html"
        page.get_by_role("link", name="Next: Vol 2.20").click()
        page.wait_for_load_state("load")
        assert page.url == served + "vol-2.20.html"
        page.locator(".headlines a").first.click()
        assert page.url == served + "vol-2.20.html#story-1"
        assert page.locator("#story-1").is_visible()
        page.get_by_role("link", name="All issues").first.click()
        page.wait_for_load_state("load")
        assert page.url == served + "index.html"
        origin = served.split("/deep/")[0] + "/"
        outside = [u for u in requests if not u.startswith(origin)]
        assert outside == [], f"requests outside the local server: {outside}"
        assert failed == []
    finally:
        page.close()
