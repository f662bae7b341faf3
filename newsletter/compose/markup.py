"""Inline Markdown for issue text fields: ``**bold**``, ``*italic*``, ``[text](url)``.

Deliberately small: a digest's text fields are single paragraphs, and both the HTML and
the plaintext renderer need the same tree (the plaintext turns links into numbered
references), so a full Markdown engine would only add surprises. Pure functions.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Union

from markupsafe import Markup, escape

from newsletter.compose.linebreak import fold_lines, is_wide


@dataclass(frozen=True, slots=True)
class Text:
    text: str


@dataclass(frozen=True, slots=True)
class Strong:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Emphasis:
    children: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Link:
    children: tuple[Node, ...]
    url: str


Node = Union[Text, Strong, Emphasis, Link]  # noqa: UP007 (used at runtime in dataclasses)


class MarkupError(ValueError):
    """Unbalanced or malformed inline markup; ``offset`` is where it starts."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(message)
        self.offset = offset


_ESCAPABLE = set("\\*_[]()`#")


@functools.lru_cache(maxsize=2048)
def parse_inline(source: str) -> tuple[Node, ...]:
    """Parse one paragraph of inline Markdown into a tree; whitespace is collapsed.

    A line break between two CJK characters folds to nothing (Japanese has no spaces
    between words), any other whitespace to one space. The tree is immutable, so each
    paragraph is parsed once however often the models, the renderer and the linter ask.
    """
    text = fold_lines(source).strip()
    nodes, _ = _parse(text, 0, closer=None)
    return nodes


def _parse(src: str, pos: int, closer: str | None) -> tuple[tuple[Node, ...], int]:
    out: list[Node] = []
    buf: list[str] = []

    def flush() -> None:
        if buf:
            out.append(Text("".join(buf)))
            buf.clear()

    while pos < len(src):
        ch = src[pos]
        if ch == "\\" and pos + 1 < len(src) and src[pos + 1] in _ESCAPABLE:
            buf.append(src[pos + 1])
            pos += 2
            continue
        # `*` closes emphasis only when it is not the start of `**`
        if (
            closer is not None
            and src.startswith(closer, pos)
            and not (closer == "*" and src.startswith("**", pos))
        ):
            flush()
            return tuple(out), pos + len(closer)
        if src.startswith("**", pos):
            flush()
            children, end = _parse(src, pos + 2, "**")
            if end < 0:
                raise MarkupError("unclosed ** (bold)", pos)
            out.append(Strong(children))
            pos = end
            continue
        if ch == "*" and pos + 1 < len(src) and not src[pos + 1].isspace():
            flush()
            children, end = _parse(src, pos + 1, "*")
            if end < 0:
                raise MarkupError("unclosed * (italic)", pos)
            out.append(Emphasis(children))
            pos = end
            continue
        if ch == "[":
            flush()
            children, end = _parse(src, pos + 1, "]")
            if end < 0:
                raise MarkupError("unclosed [ (link text)", pos)
            if end >= len(src) or src[end] != "(":
                raise MarkupError("link text [..] is not followed by (url)", pos)
            close = src.find(")", end)
            if close < 0:
                raise MarkupError("unclosed ( in link target", end)
            out.append(Link(children, src[end + 1 : close].strip()))
            pos = close + 1
            continue
        buf.append(ch)
        pos += 1
    flush()
    if closer is not None:
        return tuple(out), -1
    return tuple(out), pos


def iter_links(nodes: tuple[Node, ...]) -> list[Link]:
    """Every link in document order, nested ones included."""
    found: list[Link] = []
    for node in nodes:
        if isinstance(node, Link):
            found.append(node)
            found.extend(iter_links(node.children))
        elif isinstance(node, Strong | Emphasis):
            found.extend(iter_links(node.children))
    return found


def plain_text(nodes: tuple[Node, ...]) -> str:
    """The words only: no markup, no URLs."""
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            parts.append(node.text)
        else:
            parts.append(plain_text(node.children))
    return "".join(parts)


def to_html(nodes: tuple[Node, ...], *, link_style: str = "") -> Markup:
    """Render to escaped HTML. ``link_style`` is an inline style for <a> (email clients)."""
    parts: list[str] = []
    for node in nodes:
        if isinstance(node, Text):
            parts.append(str(escape(node.text)))
        elif isinstance(node, Strong):
            parts.append(f"<strong>{to_html(node.children, link_style=link_style)}</strong>")
        elif isinstance(node, Emphasis):
            parts.append(f"<em>{to_html(node.children, link_style=link_style)}</em>")
        else:
            style = f' style="{escape(link_style)}"' if link_style else ""
            inner = to_html(node.children, link_style=link_style)
            parts.append(f'<a href="{escape(node.url)}"{style}>{inner}</a>')
    return Markup("".join(parts))


def is_placeholder_url(url: str) -> bool:
    return url == "#" or url.startswith("#")


@dataclass
class LinkRefs:
    """Numbered link references for plaintext, shared across a whole document."""

    urls: list[str] = field(default_factory=list)

    def number(self, url: str) -> int:
        if url not in self.urls:
            self.urls.append(url)
        return self.urls.index(url) + 1


def to_text(nodes: tuple[Node, ...], refs: LinkRefs) -> tuple[str, list[int]]:
    """Render to plain text; real links become ``text [n]``.

    Returns the text and the reference numbers it used, in order, so the caller can
    print them beneath the paragraph. Placeholder ``#`` links and mailto links whose
    text is the address itself add no reference (there is nothing more to follow).
    """
    parts: list[str] = []
    used: list[int] = []
    for node in nodes:
        if isinstance(node, Text):
            parts.append(node.text)
            continue
        inner, inner_used = to_text(node.children, refs)
        parts.append(inner)
        used.extend(inner_used)
        if isinstance(node, Link) and not is_placeholder_url(node.url):
            if node.url.startswith("mailto:") and node.url[7:].split("?")[0] == inner.strip():
                continue
            n = refs.number(node.url)
            # Japanese sets the marker without a space: 公式サイト[2]を参照
            parts.append(f"[{n}]" if inner and is_wide(inner[-1]) else f" [{n}]")
            if n not in used:
                used.append(n)
    return "".join(parts), used
