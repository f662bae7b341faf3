"""Rendering vol-2.19: golden files compared whole, plus the properties that matter.

Regenerate the golden files on purpose with:  REGEN_GOLDEN=1 pytest tests/compose/test_render.py
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.compose.issuefile import load_issue
from newsletter.compose.markup import iter_links, parse_inline
from newsletter.compose.render import (
    PLACEHOLDER_UNSUBSCRIBE,
    RenderedIssue,
    detail_leads,
    render_issue,
)
from newsletter.config import Settings, load_settings
from tests.conftest import GOLDEN, regen_golden


@pytest.fixture
def rendered(settings: Settings, home: Path) -> RenderedIssue:
    return render_issue(load_issue(home / "issues" / "vol-2.19.yaml"), settings)


@pytest.mark.parametrize(("name", "attr"), [("vol-2.19.html", "html"), ("vol-2.19.txt", "text")])
def test_golden(rendered: RenderedIssue, name: str, attr: str) -> None:
    actual = getattr(rendered, attr)
    path = GOLDEN / name
    if regen_golden():
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} changed; if on purpose: REGEN_GOLDEN=1 pytest tests/compose/test_render.py"
    )


def test_html_has_every_part_of_the_seed(rendered: RenderedIssue, home: Path) -> None:
    issue = load_issue(home / "issues" / "vol-2.19.yaml")
    html = rendered.html
    for story in issue.stories:
        assert story.headline.replace("&", "&amp;") in html
    for lead in detail_leads(issue):
        assert lead and re.search(rf"<strong[^>]*>{re.escape(lead)}</strong>", html)
    assert 'Image Source: <a href="#"' in html and ">OSD Public Affairs</a>" in html
    assert "Vol: 2.19" in html and "October 13, 2023" in html
    assert ">Headlines</h2>" in html and ">Details</h2>" in html
    assert "compiled by" in html and "mailto:digest@example.org" in html
    links = [link for s in issue.stories for link in iter_links(parse_inline(s.detail))]
    assert len(links) == 16
    assert html.count('href="#"') == 16 + 2  # details + credit + footer


def test_html_is_email_safe(rendered: RenderedIssue) -> None:
    html = rendered.html
    assert len(html.encode()) < 102 * 1024
    assert 'class="preheader"' in html and "display:none" in html
    assert re.search(r'<img [^>]*alt="Defense Minister Kihara', html)
    assert 'width="600"' in html and "max-width:600px" in html
    # premailer kept the phone rules and their !important
    assert "@media only screen and (max-width: 620px)" in html
    assert "width: 100% !important" in html
    # styles were inlined
    assert re.search(r'<td class="detail"[^>]*style="[^"]*font-size:15px', html)
    assert f'href="{PLACEHOLDER_UNSUBSCRIBE}"' in html
    assert 'href="https://digest.example.org/archive/vol-2.19.html"' in html
    assert "<script" not in html


def test_plaintext_is_readable_alone(rendered: RenderedIssue) -> None:
    text = rendered.text
    for line in text.splitlines():
        assert len(line) <= 78 or re.match(r"^\s*(\[\d+\] )?\S+$", line) or "://" in line, line
    assert "HEADLINES" in text and "DETAILS" in text
    assert text.index("Defense chiefs Austin") < text.index("Defense Minister Kihara met")
    assert "Unsubscribe: " + PLACEHOLDER_UNSUBSCRIBE in text
    assert "View in browser: https://digest.example.org/archive/vol-2.19.html" in text
    assert "contact digest@example.org" in text
    assert "**" not in text and "](#)" not in text


def test_plaintext_numbers_real_links(home: Path, settings: Settings) -> None:
    path = home / "issues" / "vol-2.19.yaml"
    source = path.read_text().replace("[reaffirmed](#)", "[reaffirmed](https://example.org/a)")
    source = source.replace(
        "[hosted](#)", "[hosted](https://example.org/very/long/" + "x" * 90 + ")"
    )
    path.write_text(source)
    text = render_issue(load_issue(path), settings).text
    assert "reaffirmed [1]" in text and "  [1] https://example.org/a" in text
    assert "hosted [2]" in text and "  [2] https://example.org/very/long/" + "x" * 90 in text


def test_autoescape_protects_the_html(home: Path, settings: Settings) -> None:
    path = home / "issues" / "vol-2.19.yaml"
    source = path.read_text().replace(
        "headline: Defense chiefs Austin",
        "headline: <script>alert(1)</script> Defense chiefs Austin",
    )
    path.write_text(source)
    html = render_issue(load_issue(path), settings).html
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_hosted_assets_and_no_public_url(home: Path) -> None:
    settings = load_settings(None, assets_url="https://cdn.example.org/digest")
    rendered = render_issue(load_issue(home / "issues" / "vol-2.19.yaml"), settings)
    assert rendered.images == ()
    assert 'src="https://cdn.example.org/digest/vol-2.19-hero.png"' in rendered.html
    assert rendered.view_url is None and "View in browser" not in rendered.html


def test_missing_image_is_a_located_error(home: Path, settings: Settings) -> None:
    from newsletter.errors import IssueFileError

    (home / "issues" / "assets" / "vol-2.19-hero.png").unlink()
    with pytest.raises(IssueFileError) as info:
        render_issue(load_issue(home / "issues" / "vol-2.19.yaml"), settings)
    assert str(info.value.problems[0]).startswith(
        str(home / "issues" / "vol-2.19.yaml") + ":8: hero.src: image file not found: "
    )
