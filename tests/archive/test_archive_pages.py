"""The archive's pages: the site's layout, the index, each issue's page, the links."""

from __future__ import annotations

import itertools
import re
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

from newsletter.archive.site import archive_dir, build_archive
from newsletter.config import Settings, load_settings
from tests.conftest import GOLDEN_SETTINGS
from tests.support.archivekit import FIRST_HEADLINE, site_bytes


# Layout and pages -------------------------------------------------------------------
def test_archive_dir_is_build_archive(settings: Settings) -> None:
    assert archive_dir(settings) == settings.build_dir / "archive"


def test_site_layout(three: Path, settings: Settings) -> None:
    result = build_archive(settings)
    assert result.out_dir == Path("build/archive")  # the home is the working directory
    assert result.out_dir.resolve() == (three / "build" / "archive").resolve()
    assert [i.slug for i in result.issues] == ["vol-2.18", "vol-2.19", "vol-2.20"]
    assert sorted(site_bytes(result.out_dir)) == [
        "archive.css",
        "assets/vol-2.19/vol-2.19-hero.png",
        "assets/vol-2.20/vol-2.19-hero.png",
        "feed.xml",
        "index.html",
        "vol-2.18.html",
        "vol-2.19.html",
        "vol-2.20.html",
    ]
    assert result.unchanged == [] and result.removed == []
    hero = (three / "issues" / "assets" / "vol-2.19-hero.png").read_bytes()
    assert (result.out_dir / "assets/vol-2.19/vol-2.19-hero.png").read_bytes() == hero


def test_index_lists_issues_newest_first_with_headlines(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    html = (out / "index.html").read_text()
    positions = [html.index(f'href="vol-{v}.html"') for v in ("2.20", "2.19", "2.18")]
    assert positions == sorted(positions)
    assert '<time datetime="2023-10-27">October 27, 2023</time>' in html
    assert f'<a href="vol-2.19.html#story-1">{FIRST_HEADLINE}</a>' in html
    assert "Tariffs &lt;25% &amp; &#34;fair&#34; trade: Japan&#39;s view" in html
    assert '<link rel="alternate" type="application/atom+xml"' in html
    assert 'href="feed.xml"' in html


def test_issue_page_has_the_email_content_without_personal_parts(
    three: Path, settings: Settings
) -> None:
    out = build_archive(settings).out_dir
    html = (out / "vol-2.19.html").read_text()
    assert '<html lang="en">' in html
    assert '<span class="series">US-Japan Alliance Digest</span>' in html
    assert 'Vol 2.19 &middot; <time datetime="2023-10-13">October 13, 2023</time>' in html
    assert (
        '<img class="hero-img" src="assets/vol-2.19/vol-2.19-hero.png" '
        'alt="Defense Minister Kihara and Secretary of Defense Austin at the Pentagon" '
        'width="600" height="300">' in html
    )
    assert '<figcaption class="credit">Image Source: OSD Public Affairs</figcaption>' in html
    for n in range(1, 6):
        assert f'<a href="#story-{n}">' in html and f'<li id="story-{n}">' in html
    assert "<strong>Defense Minister Kihara met Secretary of Defense Austin</strong>" in html
    assert "compiled by Sasakawa USA&#39;s" in html
    assert '<a href="mailto:digest@example.org">digest@example.org</a>' in html
    assert '<a rel="prev" href="vol-2.18.html">' in html
    assert '<a rel="next" href="vol-2.20.html">' in html
    assert '<link rel="canonical" href="https://digest.example.org/archive/vol-2.19.html">' in html
    lowered = html.lower()
    assert "unsubscribe" not in lowered and "%%" not in html
    assert 'href="#"' not in html  # placeholder links keep their words, lose the dead link
    # the oldest and newest issues have one neighbour each
    first = (out / "vol-2.18.html").read_text()
    last = (out / "vol-2.20.html").read_text()
    assert 'rel="prev"' not in first and 'rel="next"' in first
    assert 'rel="next"' not in last and 'rel="prev"' in last


def test_https_hero_is_linked_not_copied(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    html = (out / "vol-2.18.html").read_text()
    assert "<img" not in html
    assert '<a href="https://images.example.org/vol-2.18.jpg">Image: Defense Minister' in html
    assert not (out / "assets" / "vol-2.18").exists()


def test_headings_and_landmarks_in_order(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    for name in ("index.html", "vol-2.19.html"):
        html = (out / name).read_text()
        levels = [int(h) for h in re.findall(r"<h([1-6])[ >]", html)]
        assert levels[0] == 1 and levels.count(1) == 1
        assert all(b - a <= 1 for a, b in itertools.pairwise(levels)), levels
        order = [html.index(tag) for tag in ("<header", "<nav", "<main", "<footer")]
        assert order == sorted(order)
        assert re.search(r'<a class="skip-link" href="#main">', html)
        assert 'id="main"' in html
    page = (out / "vol-2.19.html").read_text()
    assert re.findall(r"<h2[^>]*>([^<]+)</h2>", page) == [
        "Headlines",
        "Details",
        "Get the next issue by email",
    ]


def test_every_archive_page_offers_to_subscribe(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    assert settings.public_url
    for page in sorted(out.glob("*.html")):
        html = page.read_text()
        link = re.search(r'<a class="signup-button" href="([^"]+)">([^<]+)</a>', html)
        assert link, page.name
        assert link.group(1) == f"{settings.public_url}/subscribe"
        assert link.group(2) == "Subscribe to US-Japan Alliance Digest"
        # between the content and the footer, as its own landmark
        assert html.index("</main>") < html.index('<aside class="signup"') < html.index("<footer")
    assert len(list(out.glob("*.html"))) == 4


def test_without_a_public_url_subscribe_is_a_mail(three: Path) -> None:
    settings = load_settings(None, **{**GOLDEN_SETTINGS, "public_url": None})
    html = (build_archive(settings).out_dir / "index.html").read_text()
    contact = settings.contact_address
    assert f'class="signup-button" href="mailto:{contact}?subject=subscribe"' in html


# Links ------------------------------------------------------------------------------
class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.refs: list[tuple[str, str, str]] = []  # (tag or link rel, attribute, value)
        self.ids: set[str] = set()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "link":
            tag = f"link rel={dict(attrs).get('rel')}"
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src") and value is not None:
                self.refs.append((tag, name, value))


def _parse(path: Path) -> _Links:
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def crawl(out: Path) -> list[str]:
    """Every broken internal href/src (file missing or #anchor absent) in every page."""
    broken: list[str] = []
    pages = sorted(out.glob("*.html"))
    parsed = {page: _parse(page) for page in pages}
    for page, links in parsed.items():
        for tag, attr, value in links.refs:
            parts = urlsplit(value)
            if parts.scheme in ("http", "https", "mailto", "data"):
                # navigation may leave the site; anything the page *loads* must not
                loads = tag in ("img", "script", "iframe", "source") or (
                    tag.startswith("link") and tag not in ("link rel=canonical",)
                )
                if parts.scheme in ("http", "https") and loads:
                    broken.append(f"{page.name}: external {tag} {attr}={value}")
                continue
            assert not parts.scheme and not parts.netloc, value
            assert not value.startswith("/"), f"{page.name}: root-relative {value}"
            target = (page.parent / unquote(parts.path)).resolve() if parts.path else page
            if not target.is_file():
                broken.append(f"{page.name}: {attr}={value}: no such file")
                continue
            if parts.fragment:
                ids = parsed[target].ids if target in parsed else _parse(target).ids
                if parts.fragment not in ids:
                    broken.append(f"{page.name}: {attr}={value}: no such anchor")
    return broken


def test_every_internal_link_resolves(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    assert crawl(out) == []
    hrefs = {v for p in out.glob("*.html") for _, _, v in _parse(p).refs}
    assert {"vol-2.18.html", "vol-2.20.html", "index.html", "feed.xml", "#main"} <= hrefs


def test_crawler_catches_broken_links(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    (out / "vol-2.18.html").unlink()
    page = out / "vol-2.19.html"
    page.write_text(page.read_text().replace('href="#story-2"', 'href="#story-9"'))
    broken = crawl(out)
    assert "vol-2.19.html: href=#story-9: no such anchor" in broken
    assert "index.html: href=vol-2.18.html: no such file" in broken


def test_library_uses_golden_settings_contact(three: Path) -> None:
    settings = load_settings(None, **GOLDEN_SETTINGS)
    html = (build_archive(settings).out_dir / "index.html").read_text()
    assert "mailto:digest@example.org" in html
