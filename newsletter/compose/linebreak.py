"""Script-aware plain text: display width, line wrapping with kinsoku, line folding.

A terminal shows a CJK character in two columns, so lines are measured by display width
(East Asian Width, via ``wcwidth``), not by ``len``. Japanese has no spaces between
words: a line may break between any two CJK characters, except that none may start with
closing punctuation or small kana (``。、」）ゃ``...) and none may end with an opening
bracket (``「（``...): kinsoku shori, after JIS X 4051's strict rule set. Runs of other
characters (English words, URLs, ``[1]``) are never broken. Pure functions.
"""

from __future__ import annotations

import functools
import re
import unicodedata

#: may not begin a line: closing brackets, stops and commas, small kana, iteration marks
NO_START = frozenset(
    ")]}）〕］｝〉》」』】〙〗〟’”｠»"
    "、。，．,.:;!?！？：；・‥…"
    "ーゝゞ々〻ヽヾ"
    "ぁぃぅぇぉっゃゅょゎゕゖァィゥェォッャュョヮヵヶㇰㇱㇲㇳㇴㇵㇶㇷㇸㇹㇺㇻㇼㇽㇾㇿ"
    "゠〜～"
)
#: may not end a line: opening brackets and quotes
NO_END = frozenset("([{（〔［｛〈《「『【〘〖〝‘“｟«")

# Whitespace that separates words; the ideographic space (U+3000) is a wide character
# that Japanese text means to keep.
_SPACE = re.compile(r"[^\S\u3000]+")


@functools.lru_cache(maxsize=4096)
def char_width(ch: str) -> int:
    """Columns a character takes in a terminal: 2 for CJK, 0 for combining marks."""
    # imported on the first character that is not printable ASCII: wcwidth's tables take
    # about 10 ms to load, and an English issue may have no such character
    from wcwidth import wcwidth

    return max(wcwidth(ch), 0)


def display_width(text: str) -> int:
    """Columns ``text`` takes in a terminal (a CJK character counts 2)."""
    if text.isascii() and text.isprintable():
        return len(text)  # U+0020..U+007E: one column each (tested against wcwidth)
    return sum(char_width(ch) for ch in text)


def is_wide(ch: str) -> bool:
    """A character that Japanese and Chinese set without spaces around it."""
    return unicodedata.east_asian_width(ch) in ("W", "F")


def joins_without_space(before: str, after: str) -> bool:
    """Whether a line break between these two characters folds to nothing.

    CSS Text 3's segment-break rule: between two East Asian wide, fullwidth or halfwidth
    characters, neither of them Hangul (Korean separates words with spaces).
    """

    def east_asian(ch: str) -> bool:
        return unicodedata.east_asian_width(ch) in ("W", "F", "H") and not _is_hangul(ch)

    return east_asian(before) and east_asian(after)


def _is_hangul(ch: str) -> bool:
    code = ord(ch)
    return 0x1100 <= code <= 0x11FF or 0x3130 <= code <= 0x318F or 0xAC00 <= code <= 0xD7AF


def fold_lines(text: str) -> str:
    """Collapse whitespace to one space, dropping a line break between CJK characters."""

    def fold(match: re.Match[str]) -> str:
        start, end = match.span()
        joins = start > 0 and end < len(text) and joins_without_space(text[start - 1], text[end])
        return "" if joins and "\n" in match.group(0) else " "

    return _SPACE.sub(fold, text)


def _units(word: str) -> list[str]:
    """A run without spaces, cut where a line may break: around each wide character."""
    units: list[str] = []
    narrow = ""
    for ch in word:
        if is_wide(ch):
            if narrow:
                units.append(narrow)
                narrow = ""
            units.append(ch)
        else:
            narrow += ch
    if narrow:
        units.append(narrow)
    return units


def _may_break(left: str, right: str) -> bool:
    """May a line break between two adjacent units (no space between them)?"""
    if right[0] in NO_START or left[-1] in NO_END:
        return False
    # a narrow run glued to wide text may move to the next line, except closing
    # punctuation (")." after 首相) which stays with what it closes
    return is_wide(left[-1]) or is_wide(right[0])


def _groups(word: str) -> list[str]:
    """The unbreakable pieces of a space-free run, in order."""
    groups: list[str] = []
    for unit in _units(word):
        if groups and not _may_break(groups[-1], unit):
            groups[-1] += unit
        else:
            groups.append(unit)
    return groups


def wrap_text(text: str, width: int, *, first: str = "", indent: str = "") -> list[str]:
    """Lines of at most ``width`` columns (prefixes included), breaking only where allowed.

    ``first`` prefixes the first line, ``indent`` the others. A piece that cannot break
    and is wider than the line (a long URL) gets a line of its own rather than a cut.
    Whitespace becomes one space; a space that ends up at a line break is dropped.
    """
    lines: list[str] = []
    line = first
    line_width = display_width(first)
    empty = True  # nothing but the prefix so far
    for w_index, word in enumerate(_SPACE.split(text.strip())):
        if not word:
            continue
        for g_index, group in enumerate(_groups(word)):
            glue = " " if (g_index == 0 and w_index > 0 and not empty) else ""
            needed = display_width(glue) + display_width(group)
            if not empty and line_width + needed > width:
                lines.append(line)
                line, line_width, empty = indent, display_width(indent), True
                glue, needed = "", display_width(group)
            line += glue + group
            line_width += needed
            empty = False
    if not empty:
        lines.append(line)
    return lines
