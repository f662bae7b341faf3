"""Problems are worded for the editor: stories counted from 1, an empty hero explained."""

from __future__ import annotations

import pytest

from newsletter.compose.issuefile import format_path, parse_issue_text
from newsletter.errors import IssueFileError

ISSUE = """\
series: Digest
volume: "1.2"
date: 2023-10-13
hero:
  src: ""
  alt: A picture
stories:
  - headline: One
    detail: First story.
  - headline: Two
    detail: ""
footer:
  about: About.
  subscribe: Write to {contact}.
"""


def test_stories_are_counted_as_a_person_counts_them() -> None:
    assert format_path(("stories", 0, "detail")) == "story 1 detail"
    assert format_path(("stories", 3)) == "story 4"
    assert format_path(("hero", "src")) == "hero.src"
    assert format_path(("other", 1, "x")) == "other[2].x"


def test_an_empty_hero_src_says_the_block_may_go() -> None:
    with pytest.raises(IssueFileError) as info:
        parse_issue_text(ISSUE, "vol-1.2.yaml")
    assert [str(p) for p in info.value.problems] == [
        "vol-1.2.yaml:5: hero.src: must not be empty: name an image file or an https:// URL, "
        "or remove the whole hero: block for an issue without an image",
        "vol-1.2.yaml:11: story 2 detail: must not be empty",
    ]
