"""The archive's Atom feed: RFC 4287, escaping, feed readers, relative links, stable ids."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import feedparser

from newsletter.archive.site import build_archive
from newsletter.config import Settings, load_settings
from tests.support.archivekit import TRICKY

ATOM = "{http://www.w3.org/2005/Atom}"
RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


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
