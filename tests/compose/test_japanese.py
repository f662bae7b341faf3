"""A Japanese issue: golden files, display width, kinsoku, folding with mixed scripts, lint.

Regenerate the golden files on purpose with:  REGEN_GOLDEN=1 pytest tests/compose/test_japanese.py
"""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import pytest

from newsletter.compose.issuefile import load_issue, parse_issue_text
from newsletter.compose.linebreak import NO_END, NO_START, display_width, fold_lines, wrap_text
from newsletter.compose.lint import lint_issue
from newsletter.compose.markup import parse_inline, plain_text
from newsletter.compose.render import RenderedIssue, render_issue
from newsletter.config import Settings
from tests.conftest import GOLDEN, regen_golden

SAMPLE = Path(__file__).resolve().parent.parent / "data" / "issues" / "ja-sample.yaml"


@pytest.fixture
def rendered(settings: Settings) -> RenderedIssue:
    return render_issue(load_issue(SAMPLE), settings)


@pytest.mark.parametrize(("name", "attr"), [("ja-sample.html", "html"), ("ja-sample.txt", "text")])
def test_golden(rendered: RenderedIssue, name: str, attr: str) -> None:
    actual = getattr(rendered, attr)
    path = GOLDEN / name
    if regen_golden():
        path.write_text(actual, encoding="utf-8")
    assert actual == path.read_text(encoding="utf-8"), (
        f"{name} changed; if on purpose: REGEN_GOLDEN=1 pytest tests/compose/test_japanese.py"
    )


def test_plaintext_fits_78_columns_and_keeps_kinsoku(rendered: RenderedIssue) -> None:
    lines = rendered.text.splitlines()
    for line in lines:
        if "https://" in line:
            continue  # a URL is never broken, so it may be longer
        assert display_width(line) <= 78, line
    for before, after in itertools.pairwise(lines):
        body = after.lstrip(" -")
        if before.strip() and body:
            assert body[0] not in NO_START, (before, after)
            assert before.rstrip()[-1] not in NO_END, (before, after)
    # the wrapped Japanese lines use the width: a character-count wrap would stop at 39
    assert max(display_width(line) for line in lines if "https://" not in line) > 70


def test_fixed_strings_and_lang_in_japanese(rendered: RenderedIssue) -> None:
    assert '<html lang="ja"' in rendered.html
    for word in ("見出し", "詳細", "ブラウザで表示", "配信停止"):
        assert word in rendered.html
    assert "Headlines" not in rendered.html and "Unsubscribe" not in rendered.html
    assert rendered.subject == "日米同盟ダイジェスト Vol. 3.1（2024年4月12日）"
    assert "見出し\n======\n" in rendered.text  # underline as wide as the heading


def test_url_kept_whole_even_when_wider_than_a_line() -> None:
    url = "https://www.example.jp/" + "a" * 90
    lines = wrap_text(f"詳しくは {url} を参照。", 40)
    assert url in lines


@pytest.mark.parametrize(
    ("text", "forbidden_start"),
    [("あ" * 38 + "です。", "。"), ("あ" * 38 + "か」と", "」"), ("あ" * 38 + "いっしょ", "ょ")],
)
def test_kinsoku_moves_a_character_rather_than_start_a_line_with_punctuation(
    text: str, forbidden_start: str
) -> None:
    lines = wrap_text(text, 78)
    assert len(lines) == 2
    assert not lines[1].startswith(forbidden_start)
    assert "".join(lines) == text


def test_no_line_ends_with_an_opening_bracket() -> None:
    lines = wrap_text("あ" * 38 + "「引用」", 78)
    assert not lines[0].endswith("「")
    assert "".join(lines) == "あ" * 38 + "「引用」"


def test_english_wraps_as_before() -> None:
    words = "The alliance partners reaffirmed their strategic alignment " * 4
    for line in wrap_text(words, 40):
        assert len(line) <= 40
        assert not line.startswith(" ") and not line.endswith(" ")


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("方針を\n国会で表明", "方針を国会で表明"),  # CJK-CJK: no space
        ("首相は\nG7で発言", "首相は G7で発言"),  # CJK-Latin: a space, as CSS does
        ("the G7\nsummit", "the G7 summit"),
        ("岸田首相は\n  「方針」を", "岸田首相は「方針」を"),
        ("한국어\n문장", "한국어 문장"),  # Hangul keeps its word spaces
        ("同じ行の 空白", "同じ行の 空白"),  # a space written on one line stays
    ],
)
def test_fold_lines_mixed_scripts(source: str, expected: str) -> None:
    assert fold_lines(source) == expected


ISSUE = """\
series: テスト
volume: "1.1"
date: 2024-01-05
stories:
  - headline: 方針を
      国会で表明
    detail: >-
      **首相は**
      防衛費の方針を
      国会で表明した。G7の
      議論を踏まえ、Kishida
      said so.
  - headline: "引用の
      テスト"
    detail: |
      **改行**を含む
      段落です。
footer:
  about: x
"""


def test_yaml_folding_joins_japanese_lines_without_spaces() -> None:
    issue = parse_issue_text(ISSUE, "t.yaml")
    assert issue.stories[0].headline == "方針を国会で表明"
    assert issue.stories[0].detail == (
        "**首相は**防衛費の方針を国会で表明した。G7の議論を踏まえ、Kishida said so."
    )
    assert issue.stories[1].headline == "引用のテスト"
    assert plain_text(parse_inline(issue.stories[1].detail)) == "改行を含む段落です。"


def test_lint_compares_japanese_by_bigrams() -> None:
    issue = load_issue(SAMPLE)
    assert not [p for p in lint_issue(issue) if "shares no words" in p.message]

    def unpaired(text: str) -> list[int | None]:
        """The lines of the headlines lint finds unpaired."""
        problems = lint_issue(parse_issue_text(text, "t.yaml"))
        return [p.line for p in problems if "shares no words" in p.message]

    first_headline = 5
    assert first_headline not in unpaired(ISSUE)  # 方針, 国会 appear in the detail
    swapped = ISSUE.replace("headline: 方針を\n      国会で表明", "headline: 天気予報\n      晴れ")
    assert first_headline in unpaired(swapped)


def test_japanese_subject_and_name_encode_per_rfc2047(
    rendered: RenderedIssue, settings: Settings
) -> None:
    from email import policy
    from email.parser import BytesParser

    from newsletter.compose.message import MessageBuilder, Recipient

    raw = MessageBuilder(rendered, settings).to_bytes(Recipient("taro@example.jp", "山田 太郎"))
    head = raw.split(b"\r\n\r\n", 1)[0]
    assert head.isascii()
    folded = re.findall(rb"^(?:Subject|To): .*(?:\r\n[ \t].*)*", head, re.MULTILINE)
    assert len(folded) == 2
    for header in folded:  # encoded words folded within the line limit
        assert max(len(line) for line in header.split(b"\r\n")) <= 78, header
    assert b"=?utf-8?" in head.lower()
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    assert str(msg["Subject"]) == "日米同盟ダイジェスト Vol. 3.1（2024年4月12日）"
    assert msg["To"].addresses[0].display_name == "山田 太郎"
    text = msg.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "配信停止：https://" in text


def test_scaffold_keeps_the_language() -> None:
    from newsletter.compose.scaffold import scaffold_issue

    slug, text = scaffold_issue(load_issue(SAMPLE))
    assert slug == "vol-3.2" and "\nlanguage: ja\n" in text


def test_link_reference_hugs_japanese_text() -> None:
    from newsletter.compose.markup import LinkRefs, to_text

    text, used = to_text(
        parse_inline("詳細は[公式サイト](https://example.org/)を参照。"), LinkRefs()
    )
    assert text == "詳細は公式サイト[1]を参照。" and used == [1]
    english, _ = to_text(parse_inline("see [the site](https://example.org/)."), LinkRefs())
    assert english == "see the site [1]."


def test_display_width_agrees_with_wcwidth_on_ascii_and_beyond() -> None:
    from wcwidth import wcwidth

    printable = "".join(chr(c) for c in range(0x20, 0x7F))
    # the quick path (printable ASCII, no wcwidth) gives what wcwidth gives
    assert all(wcwidth(ch) == 1 for ch in printable)
    assert display_width(printable) == len(printable) == 95
    for text in ["tab\there", "bell\a", "日本語 text", "e\u0301", "\x00", "·", "", "ｶﾀｶﾅ"]:
        assert display_width(text) == sum(max(wcwidth(ch), 0) for ch in text), text
