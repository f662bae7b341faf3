"""Broken issue files: every problem located as path:line: field: message, all at once."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from newsletter.compose.issuefile import load_issue, parse_issue_text
from newsletter.compose.lint import lint_issue
from newsletter.compose.scaffold import next_volume, scaffold_issue
from newsletter.errors import IssueFileError

GOOD = """\
series: Test Digest
volume: "1.2"
date: 2024-01-05
hero:
  src: https://img.example.org/hero.png
  alt: A harbour
  width: 600
  credit: "Image Source: [Photo desk](https://example.org/photos)"
stories:
  - headline: Ministers meet in Tokyo
    detail: >-
      **Ministers met in Tokyo** on Monday and
      [agreed](https://example.org/agreed) on things.
  - headline: Trade talks continue
    detail: The **trade talks** continue this week in Tokyo.
footer:
  about: A summary compiled by [us](https://example.org).
  subscribe: "To subscribe, contact {contact}"
"""


def errors_of(text: str) -> list[str]:
    with pytest.raises(IssueFileError) as info:
        parse_issue_text(text, "vol-1.2.yaml")
    return [str(p) for p in info.value.problems]


def test_good_file_loads_with_lines() -> None:
    issue = parse_issue_text(GOOD, "vol-1.2.yaml")
    assert issue.volume == "1.2"
    assert issue.date == dt.date(2024, 1, 5)
    assert issue.line_of("stories", 1, "detail") == 15
    assert lint_issue(issue) == []


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            GOOD.replace('volume: "1.2"', 'volume: "1.2'),
            "vol-1.2.yaml:8: YAML syntax: a line does not line up with the ones above it, or a "
            "quote is not closed (in the block that starts on line 1)",
        ),
        (
            GOOD.replace("  alt: A harbour", " alt: A harbour"),
            "vol-1.2.yaml:6: YAML syntax: a line does not line up with the ones above it, or a "
            "quote is not closed (in the block that starts on line 1)",
        ),
        (
            GOOD.replace("series: Test Digest", "series: Test: Digest"),
            "vol-1.2.yaml:1: YAML syntax: a value contains ': ' — put the whole value in quotes",
        ),
        (
            GOOD.replace("  width: 600", "\twidth: 600"),
            "vol-1.2.yaml:7: YAML syntax: a tab or special character: indent with spaces and "
            "quote values that start with @, `, %, | or >",
        ),
    ],
)
def test_yaml_syntax_errors(text: str, expected: str) -> None:
    assert errors_of(text) == [expected]


def test_unknown_key_with_suggestion() -> None:
    text = GOOD.replace("  alt: A harbour", "  alt: A harbour\n  widht: 300")
    assert errors_of(text) == [
        "vol-1.2.yaml:7: hero.widht: unknown key 'widht' (did you mean 'width'?)"
    ]


def test_seed_style_headlines_list_gets_a_hint() -> None:
    text = GOOD + "headlines:\n  - one\n"
    assert errors_of(text) == [
        "vol-1.2.yaml:19: headlines: unknown key 'headlines'; write each headline with its "
        "detail under stories: (- headline: ... / detail: ...)"
    ]


def test_missing_fields_are_all_reported() -> None:
    text = GOOD.replace("series: Test Digest\n", "").replace(
        "  - headline: Trade talks continue\n", "  - headlin: Trade talks continue\n"
    )
    assert errors_of(text) == [
        "vol-1.2.yaml:1: series: required field is missing",
        "vol-1.2.yaml:13: story 2 headline: required field is missing",
        "vol-1.2.yaml:13: story 2 headlin: unknown key 'headlin' (did you mean 'headline'?)",
    ]


def test_headline_without_detail_is_a_mismatch() -> None:
    text = GOOD.replace("    detail: The **trade talks** continue this week in Tokyo.\n", "")
    assert errors_of(text) == ["vol-1.2.yaml:14: story 2 detail: required field is missing"]


def test_invalid_dates() -> None:
    assert errors_of(GOOD.replace("2024-01-05", "2023-02-30")) == [
        "vol-1.2.yaml:3: date: not a date: '2023-02-30' (write it as YYYY-MM-DD, e.g. 2023-10-13)"
    ]
    assert errors_of(GOOD.replace("2024-01-05", "October 13, 2023")) == [
        "vol-1.2.yaml:3: date: not a date: 'October 13, 2023' "
        "(write it as YYYY-MM-DD, e.g. 2023-10-13)"
    ]


def test_wrong_types() -> None:
    text = GOOD.replace("  width: 600", "  width: wide").replace(
        "stories:\n", "stories: none\nx_stories:\n"
    )
    problems = errors_of(text)
    assert problems[0] == (
        "vol-1.2.yaml:7: hero.width: Input should be a valid integer, "
        "unable to parse string as an integer"
    )
    assert problems[1].startswith("vol-1.2.yaml:9: stories: Input should be a valid list, got str")


def test_volume_shape_and_float_volume_kept_as_written() -> None:
    assert errors_of(GOOD.replace('"1.2"', '"one"')) == [
        "vol-1.2.yaml:2: volume: volume 'one' must look like 2.19 (volume.number)"
    ]
    issue = parse_issue_text(GOOD.replace('"1.2"', "2.10"), "x.yaml")
    assert issue.volume == "2.10"


def test_empty_relative_and_bad_scheme_links_located_on_their_line() -> None:
    text = (
        GOOD.replace("(https://example.org/agreed)", "()")
        .replace("[us](https://example.org)", "[us](about.html)")
        .replace("[Photo desk](https://example.org/photos)", "[Photo desk](javascript:alert(1))")
    )
    assert errors_of(text) == [
        "vol-1.2.yaml:8: hero.credit: link target 'javascript:alert(1': "
        "only https, http and mailto links work",
        "vol-1.2.yaml:13: story 1 detail: empty link target in '[agreed]()': "
        "write [text](https://...)",
        "vol-1.2.yaml:17: footer.about: relative link 'about.html': email needs absolute "
        "links such as https://...",
    ]


def test_unbalanced_bold_and_empty_text() -> None:
    text = GOOD.replace("The **trade talks** continue", "The **trade talks continue").replace(
        "headline: Ministers meet in Tokyo", 'headline: ""'
    )
    assert errors_of(text) == [
        "vol-1.2.yaml:10: story 1 headline: must not be empty",
        "vol-1.2.yaml:15: story 2 detail: unclosed ** (bold) at character 5",
    ]


def test_duplicate_key() -> None:
    text = GOOD.replace('volume: "1.2"\n', 'volume: "1.2"\nvolume: "1.3"\n')
    assert errors_of(text) == ["vol-1.2.yaml:3: volume: duplicate key (first written on line 2)"]


def test_no_stories_and_not_a_mapping_and_empty() -> None:
    text = (
        GOOD.split("stories:")[0] + "stories: []\n" + GOOD.split("footer:")[1].join(["footer:", ""])
    )
    assert "stories: needs at least one story (a headline with its detail)" in errors_of(text)[0]
    assert errors_of("- a\n- b\n") == [
        "vol-1.2.yaml:1: expected a mapping of keys (series:, volume:, ...)"
    ]
    assert errors_of("# nothing\n") == ["vol-1.2.yaml:1: the file is empty"]


def test_lint_warnings() -> None:
    text = (
        GOOD.replace("(https://example.org/agreed)", "(#)")
        .replace("  alt: A harbour\n", "")
        .replace("  width: 600\n", "")
        .replace("headline: Trade talks continue", "headline: Weather report for Osaka")
        .replace('volume: "1.2"\n', 'volume: "1.2"\nsubject: ' + "x" * 80 + "\n")
    )
    issue = parse_issue_text(text, "vol-1.2.yaml")
    assert [str(p) for p in lint_issue(issue)] == [
        "vol-1.2.yaml:3: warning: subject: subject is 80 characters; inboxes cut it near 78",
        "vol-1.2.yaml:5: warning: hero.alt: image has no alt text "
        "(screen readers and blocked images show nothing)",
        "vol-1.2.yaml:5: warning: hero.width: image has no width: Outlook shows it at its full "
        "pixel size",
        "vol-1.2.yaml:12: warning: story 1 detail: placeholder link [agreed](#): "
        "replace it with the real URL",
        "vol-1.2.yaml:13: warning: story 2 headline: headline shares no words with its "
        "detail: is it paired with the right one?",
    ]


def test_volume_must_match_file_name(tmp_path: Path) -> None:
    path = tmp_path / "vol-1.3.yaml"
    path.write_text(GOOD)
    with pytest.raises(IssueFileError) as info:
        load_issue(path)
    assert [str(p) for p in info.value.problems] == [
        f"{path}:2: volume: volume '1.2' does not match the file name 'vol-1.3.yaml'"
    ]
    other = tmp_path / "draft.yaml"
    other.write_text(GOOD)
    assert load_issue(other).volume == "1.2"


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "vol-1.2.yaml"
    path.write_bytes(GOOD.encode() + "note: caf\xe9\n".encode("latin-1"))
    with pytest.raises(IssueFileError) as info:
        load_issue(path)
    assert str(info.value.problems[0]) == f"{path}:19: not UTF-8 text (save the file as UTF-8)"


def test_shipped_sample_is_valid_and_faithful() -> None:
    issue = load_issue(Path(__file__).resolve().parent.parent.parent / "issues" / "vol-2.19.yaml")
    assert (issue.series, issue.volume, issue.date) == (
        "US-Japan Alliance Digest",
        "2.19",
        dt.date(2023, 10, 13),
    )
    assert len(issue.stories) == 5
    warnings = lint_issue(issue)
    # the seed's 18 "#" links, each flagged, and nothing else
    labels = [p.message.split("](#)")[0].removeprefix("placeholder link [") for p in warnings]
    assert labels == [
        "OSD Public Affairs", "reaffirmed", "deterrence", "announced", "rejected", "legal",
        "hosted", "teleconference", "concluded", "joint statement", "said", "engaged",
        "response", "conducted", "first", "announced", "interview", "Sasakawa USA's",
    ]  # fmt: skip
    assert all(p.message.startswith("placeholder link [") for p in warnings)


def test_next_volume_and_scaffold() -> None:
    assert next_volume("2.19") == "2.20"
    assert next_volume("2.9") == "2.10"
    issue = parse_issue_text(GOOD, "vol-1.2.yaml")
    slug, text = scaffold_issue(issue)
    assert slug == "vol-1.3"
    assert 'volume: "1.3"' in text and "date: 2024-01-19" in text
    problems = errors_of(text)
    assert any("story 1 headline: must not be empty" in p for p in problems)
