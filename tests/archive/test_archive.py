"""The web archive: site layout, Atom feed, determinism, change locality, links, CLI."""

from __future__ import annotations

import datetime as dt
import itertools
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import feedparser
import pytest
from typer.testing import CliRunner

from newsletter.archive.site import archive_dir, build_archive
from newsletter.cli.app import app
from newsletter.config import Settings, load_settings
from tests.conftest import GOLDEN_SETTINGS

runner = CliRunner()
ATOM = "{http://www.w3.org/2005/Atom}"
FIRST_HEADLINE = "Defense chiefs Austin, Kihara meet to discuss next alliance initiatives"
#: A headline that needs escaping in HTML and again in the feed's XML.
TRICKY = """Tariffs <25% & "fair" trade: Japan's view"""
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


# Fixtures ---------------------------------------------------------------------------
def write_variant(
    home: Path, volume: str, date: str, *, replace: dict[str, str] | None = None
) -> Path:
    """issues/vol-<volume>.yaml made from vol-2.19 by editing its YAML text."""
    text = (home / "issues" / "vol-2.19.yaml").read_text(encoding="utf-8")
    text = text.replace('volume: "2.19"', f'volume: "{volume}"').replace(
        "date: 2023-10-13", f"date: {date}"
    )
    for old, new in (replace or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    path = home / "issues" / f"vol-{volume}.yaml"
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def three(home: Path) -> Path:
    """A home with vol-2.18 (https hero), vol-2.19 (the sample), vol-2.20 (tricky headline)."""
    write_variant(
        home,
        "2.18",
        "2023-09-29",
        replace={
            "src: assets/vol-2.19-hero.png": "src: https://images.example.org/vol-2.18.jpg",
            "US-Japan business leaders call on govts": "Business leaders urge govts",
        },
    )
    write_variant(
        home,
        "2.20",
        "2023-10-27",
        replace={
            f"- headline: {FIRST_HEADLINE}": "- headline: '" + TRICKY.replace("'", "''") + "'"
        },
    )
    return home


def site_bytes(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


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
    assert re.findall(r"<h2[^>]*>([^<]+)</h2>", page) == ["Headlines", "Details"]


# Feed -------------------------------------------------------------------------------
def _feed(out: Path) -> ET.Element:
    return ET.fromstring((out / "feed.xml").read_bytes())


def test_feed_follows_rfc4287(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    feed = _feed(out)
    assert feed.tag == f"{ATOM}feed"
    assert feed.findtext(f"{ATOM}id") == "tag:example.org,2023-09-29:archive"
    assert feed.findtext(f"{ATOM}title") == "US-Japan Alliance Digest"
    assert feed.findtext(f"{ATOM}updated") == "2023-10-27T00:00:00Z"
    assert feed.findtext(f"{ATOM}author/{ATOM}name") == "US-Japan Alliance Digest"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links == {
        "self": "https://digest.example.org/archive/feed.xml",
        "alternate": "https://digest.example.org/archive/",
    }
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == 3
    ids = [e.findtext(f"{ATOM}id") for e in entries]
    assert ids == [
        "tag:example.org,2023-10-27:vol-2.20",
        "tag:example.org,2023-10-13:vol-2.19",
        "tag:example.org,2023-09-29:vol-2.18",
    ]
    for entry in entries:
        for child in ("id", "title", "updated", "content"):
            assert (entry.findtext(f"{ATOM}{child}") or "").strip(), child
        updated = entry.findtext(f"{ATOM}updated") or ""
        assert RFC3339.match(updated), updated
        dt.datetime.fromisoformat(updated.replace("Z", "+00:00"))
        (alternate,) = entry.findall(f"{ATOM}link[@rel='alternate']")
        slug = (entry.findtext(f"{ATOM}id") or "").rsplit(":", 1)[1]
        assert alternate.get("href") == f"https://digest.example.org/archive/{slug}.html"
        assert entry.find(f"{ATOM}content").get("type") == "html"  # type: ignore[union-attr]
    feed_updated = feed.findtext(f"{ATOM}updated") or ""
    assert RFC3339.match(feed_updated)
    assert feed_updated == max(e.findtext(f"{ATOM}updated") or "" for e in entries)


def test_feed_content_escaping_survives_tricky_headline(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    entry = _feed(out).findall(f"{ATOM}entry")[0]
    content = entry.findtext(f"{ATOM}content") or ""
    # the XML layer is undone once: what is left is HTML, escaped once for HTML
    assert (
        '<a href="https://digest.example.org/archive/vol-2.20.html#story-1">'
        "Tariffs &lt;25% &amp; &#34;fair&#34; trade: Japan&#39;s view</a>" in content
    )

    class Text(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.chunks: list[str] = []

        def handle_data(self, data: str) -> None:
            self.chunks.append(data)

    parser = Text()
    parser.feed(content)
    assert TRICKY in parser.chunks
    assert 'src="https://digest.example.org/archive/assets/vol-2.20/vol-2.19-hero.png"' in content


def test_feed_parses_with_feedparser_without_bozo(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    parsed = feedparser.parse((out / "feed.xml").read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")
    assert parsed.version == "atom10"
    assert parsed.feed.title == "US-Japan Alliance Digest"
    assert [e.link for e in parsed.entries] == [
        f"https://digest.example.org/archive/vol-{v}.html" for v in ("2.20", "2.19", "2.18")
    ]
    first = parsed.entries[0]
    assert first.title == "US-Japan Alliance Digest, Vol 2.20 (October 27, 2023)"
    assert first.content[0].type == "text/html"
    assert "Tariffs &lt;25% &amp;" in first.content[0].value
    assert first.updated_parsed[:3] == (2023, 10, 27)


def test_feed_without_public_url_is_relative_with_xml_base(three: Path) -> None:
    settings = load_settings(None, sender="Digest <digest@example.org>")
    out = build_archive(settings).out_dir
    feed = _feed(out)
    assert feed.get("{http://www.w3.org/XML/1998/namespace}base") == "./"
    links = {link.get("rel"): link.get("href") for link in feed.findall(f"{ATOM}link")}
    assert links == {"alternate": "index.html"}  # no rel=self without an absolute URL
    hrefs = [e.find(f"{ATOM}link").get("href") for e in feed.findall(f"{ATOM}entry")]  # type: ignore[union-attr]
    assert hrefs == ["vol-2.20.html", "vol-2.19.html", "vol-2.18.html"]
    content = feed.findall(f"{ATOM}entry")[1].findtext(f"{ATOM}content") or ""
    assert '<a href="vol-2.19.html#story-1">' in content
    assert 'src="assets/vol-2.19/vol-2.19-hero.png"' in content
    assert "canonical" not in (out / "vol-2.19.html").read_text()
    parsed = feedparser.parse((out / "feed.xml").read_bytes())
    assert parsed.bozo == 0, parsed.get("bozo_exception")


def test_feed_ids_are_stable_across_edits(three: Path, settings: Settings) -> None:
    out = build_archive(settings).out_dir
    before = [e.findtext(f"{ATOM}id") for e in _feed(out).findall(f"{ATOM}entry")]
    path = three / "issues" / "vol-2.19.yaml"
    path.write_text(path.read_text().replace("Seven vessels", "Eight vessels"))
    build_archive(settings)
    after = [e.findtext(f"{ATOM}id") for e in _feed(out).findall(f"{ATOM}entry")]
    assert before == after and len(set(after)) == 3


# Determinism and change locality ----------------------------------------------------
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


# Errors and the CLI -----------------------------------------------------------------
def test_cli_builds_and_reports_each_file(three: Path) -> None:
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "archived 3 issues into build/archive/: 8 written, 0 unchanged\n"
        "  written   archive.css\n"
        "  written   assets/vol-2.19/vol-2.19-hero.png\n"
        "  written   assets/vol-2.20/vol-2.19-hero.png\n"
        "  written   feed.xml\n"
        "  written   index.html\n"
        "  written   vol-2.18.html\n"
        "  written   vol-2.19.html\n"
        "  written   vol-2.20.html\n"
    )
    again = runner.invoke(app, ["archive"])
    assert again.exit_code == 0
    assert again.stdout.splitlines()[0] == (
        "archived 3 issues into build/archive/: 0 written, 8 unchanged"
    )
    assert "  unchanged feed.xml" in again.stdout.splitlines()


def test_cli_out_option(three: Path) -> None:
    result = runner.invoke(app, ["archive", "--out", "site/archive"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("archived 3 issues into site/archive/: 8 written")
    assert (three / "site" / "archive" / "vol-2.19.html").is_file()
    assert not (three / "build").exists()


def _break_vol_2_20(home: Path) -> Path:
    return write_variant(home, "2.20", "2023-13-45")


def test_cli_invalid_issue_fails_with_located_error(three: Path) -> None:
    _break_vol_2_20(three)
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr == (
        "error: issues/vol-2.20.yaml:5: date: not a date: '2023-13-45' "
        "(write it as YYYY-MM-DD, e.g. 2023-10-13)\n"
        "1 error\n"
        "hint: fix the issue file, or run `newsletter archive --skip-invalid` "
        "to build the archive without it\n"
    )
    assert not (three / "build").exists()


def test_cli_skip_invalid_lists_what_it_skipped(three: Path) -> None:
    assert runner.invoke(app, ["archive"]).exit_code == 0
    _break_vol_2_20(three)
    result = runner.invoke(app, ["archive", "--skip-invalid"])
    assert result.exit_code == 0, result.output
    assert result.stderr == (
        "skipped issues/vol-2.20.yaml (1 error):\n"
        "  issues/vol-2.20.yaml:5: date: not a date: '2023-13-45' "
        "(write it as YYYY-MM-DD, e.g. 2023-10-13)\n"
    )
    lines = result.stdout.splitlines()
    assert lines[0] == ("archived 2 issues into build/archive/: 3 written, 3 unchanged, 1 skipped")
    # the skipped issue keeps its last good page; nothing links to it any more
    assert "  kept      vol-2.20.html" in lines
    assert "  written   vol-2.19.html" in lines
    index = (three / "build" / "archive" / "index.html").read_text()
    assert "vol-2.20.html" not in index


def test_volume_must_match_file_name(three: Path) -> None:
    text = (three / "issues" / "vol-2.19.yaml").read_text()
    (three / "issues" / "vol-2.21.yaml").write_text(text)
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stderr.splitlines()[:2] == [
        "error: issues/vol-2.21.yaml:4: volume: volume '2.19' does not match the file name "
        "'vol-2.21.yaml'",
        "1 error",
    ]


def test_missing_hero_file_is_located(three: Path) -> None:
    path = three / "issues" / "vol-2.20.yaml"
    path.write_text(path.read_text().replace("assets/vol-2.19-hero.png", "assets/nope.png"))
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stderr.startswith(
        "error: issues/vol-2.20.yaml:8: hero.src: image file not found: issues/assets/nope.png\n"
        "1 error\n"
    )


def test_every_invalid_file_is_reported_at_once(three: Path) -> None:
    _break_vol_2_20(three)
    path = three / "issues" / "vol-2.18.yaml"
    path.write_text(path.read_text().replace("  alt:", "  alts:"))
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert "issues/vol-2.18.yaml:9: hero.alts: unknown key 'alts'" in result.stderr
    assert "issues/vol-2.20.yaml:5: date: not a date" in result.stderr
    assert "\n2 errors\n" in result.stderr


def test_no_issues_is_an_error(home: Path) -> None:
    (home / "issues" / "vol-2.19.yaml").unlink()
    result = runner.invoke(app, ["archive"])
    assert result.exit_code == 1
    assert result.stderr == "error: issues/: no issue files (vol-X.Y.yaml) to archive\n"


def test_all_invalid_with_skip_is_an_error(home: Path) -> None:
    _break = write_variant(home, "2.19", "2023-02-30")
    assert _break.name == "vol-2.19.yaml"
    result = runner.invoke(app, ["archive", "--skip-invalid"])
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "error: issues/: every issue file has errors; nothing to archive\n"
    )


def test_library_uses_golden_settings_contact(three: Path) -> None:
    settings = load_settings(None, **GOLDEN_SETTINGS)
    html = (build_archive(settings).out_dir / "index.html").read_text()
    assert "mailto:digest@example.org" in html
