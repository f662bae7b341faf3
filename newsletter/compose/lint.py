"""Lint: warnings for a valid issue, things that work but probably should not ship.

Placeholder links, a hero image without alt text or width, a subject inboxes cut, a
story without a bold lead or whose headline shares no words with its detail, a footer
that does not say where to write, HTML that Gmail clips. Each warning is located like an
error (``path:line: field.path: message``), at the line of the words it is about.
"""

from __future__ import annotations

import re
from pathlib import Path

from newsletter.compose.issuefile import Path_, format_path, line_within
from newsletter.compose.linebreak import display_width
from newsletter.compose.markup import is_placeholder_url, iter_links, parse_inline, plain_text
from newsletter.compose.models import Issue
from newsletter.errors import Problem

SUBJECT_LIMIT = 78


_STOP = set(
    [
        "a",
        "an",
        "and",
        "the",
        "of",
        "in",
        "on",
        "for",
        "to",
        "at",
        "by",
        "with",
        "from",
        "as",
        "is",
        "are",
        "was",
        "be",
        "its",
        "it",
        "this",
        "that",
        "us",
        "u.s.",
        "new",
        "meet",
        "meets",
    ]
)


# Runs of kanji and katakana (with the prolonged sound mark): Japanese content words.
# Hiragana is left out: it is mostly particles and endings (の, は, した) that any two
# Japanese sentences share.
_CJK_RUN = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\u30a0-\u30ff\uf900-\ufaff々〆ヵヶ]+")


def _words(text: str) -> set[str]:
    """Comparable words: English words, and character bigrams of CJK runs.

    Japanese is written without spaces, so 岸田首相 is compared as 岸田, 田首, 首相: two
    texts naming the same person or thing share a bigram whatever surrounds it.
    """
    lowered = text.lower()
    words = {w for w in re.findall(r"[a-z0-9][a-z0-9'-]+", lowered) if w not in _STOP}
    for run in _CJK_RUN.findall(lowered):
        if len(run) == 1:
            words.add(run)
        words.update(run[i : i + 2] for i in range(len(run) - 1))
    return words


def _size(text: str) -> str:
    """How long a line looks: CJK characters take two columns."""
    width = display_width(text)
    if width == len(text):
        return f"{width} characters"
    return f"{width} columns wide ({len(text)} characters)"


def lint_issue(issue: Issue, path: str | Path | None = None) -> list[Problem]:
    """Warnings for a valid issue: things that work but probably should not ship."""
    display = str(path) if path is not None else issue.source
    found: list[Problem] = []

    def warn(field: Path_, message: str, needle: str = "") -> None:
        line = issue.line_of(*field)
        line = line_within(issue.text, issue.spans.get(field), needle, line)
        found.append(Problem(display, line, format_path(field), message, "warning"))

    fields: list[tuple[Path_, str]] = []
    if issue.hero is not None and issue.hero.credit:
        fields.append((("hero", "credit"), issue.hero.credit))
    for i, story in enumerate(issue.stories):
        fields.append((("stories", i, "detail"), story.detail))
    fields += [
        (("footer", "about"), issue.footer.about),
        (("footer", "subscribe"), issue.footer.subscribe),
    ]
    for field, text in fields:
        for link in iter_links(parse_inline(text)):
            if is_placeholder_url(link.url):
                label = plain_text(link.children)
                warn(
                    field,
                    f"placeholder link [{label}]({link.url}): replace it with the real URL",
                    f"[{label}]({link.url})",
                )

    if issue.hero is not None:
        if not issue.hero.alt.strip():
            warn(
                ("hero", "alt"),
                "image has no alt text (screen readers and blocked images show nothing)",
            )
        if issue.hero.width is None:
            warn(("hero", "width"), "image has no width: Outlook shows it at its full pixel size")
    subject = issue.effective_subject
    if display_width(subject) > SUBJECT_LIMIT:
        warn(
            ("subject",),
            f"subject is {_size(subject)}; inboxes cut it near {SUBJECT_LIMIT}",
        )
    for i, story in enumerate(issue.stories):
        nodes = story.detail_nodes()
        if not any(type(n).__name__ == "Strong" for n in nodes):
            warn(("stories", i, "detail"), "detail has no **bold lead**")
        if not (_words(story.headline) & _words(plain_text(nodes))):
            warn(
                ("stories", i, "headline"),
                "headline shares no words with its detail: is it paired with the right one?",
            )
    if "{contact}" not in issue.footer.subscribe:
        warn(
            ("footer", "subscribe"), "no {contact} placeholder: readers are not told where to write"
        )
    return sorted(found, key=lambda p: p.line or 0)


def check_html_size(issue: Issue, html: str, path: str | Path | None = None) -> list[Problem]:
    """Gmail clips messages whose HTML exceeds 102 KB."""
    size = len(html.encode("utf-8"))
    if size <= 102 * 1024:
        return []
    display = str(path) if path is not None else issue.source
    return [
        Problem(
            display, None, "", f"HTML is {size / 1024:.0f} KB: Gmail clips above 102 KB", "warning"
        )
    ]
