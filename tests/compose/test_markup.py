from __future__ import annotations

import pytest

from newsletter.compose.markup import (
    Emphasis,
    Link,
    LinkRefs,
    MarkupError,
    Strong,
    Text,
    parse_inline,
    plain_text,
    to_html,
    to_text,
)


def test_parses_bold_links_and_nesting() -> None:
    nodes = parse_inline("a **bold [x](https://e.org/a?b=1&c=2)** and *it*")
    assert nodes == (
        Text("a "),
        Strong((Text("bold "), Link((Text("x"),), "https://e.org/a?b=1&c=2"))),
        Text(" and "),
        Emphasis((Text("it"),)),
    )


def test_html_is_escaped() -> None:
    html = to_html(parse_inline('<script>"x"</script> [a&b](https://e.org/?q="1")'))
    assert str(html) == (
        "&lt;script&gt;&#34;x&#34;&lt;/script&gt; "
        '<a href="https://e.org/?q=&#34;1&#34;">a&amp;b</a>'
    )


def test_whitespace_collapses_and_escapes_work() -> None:
    assert plain_text(parse_inline("a\n  b \\*c\\*")) == "a b *c*"


def test_text_numbers_links_and_reuses_numbers() -> None:
    refs = LinkRefs()
    text, used = to_text(parse_inline("[a](https://x.org) [b](#) [c](https://x.org)"), refs)
    assert text == "a [1] b c [1]"
    assert used == [1]
    assert refs.urls == ["https://x.org"]


def test_mailto_with_address_as_text_adds_no_reference() -> None:
    refs = LinkRefs()
    text, used = to_text(parse_inline("[d@example.org](mailto:d@example.org)"), refs)
    assert (text, used) == ("d@example.org", [])


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("**open", "unclosed ** (bold)"),
        ("[x](https://e.org", "unclosed ( in link target"),
        ("[x] y", "link text [..] is not followed by (url)"),
        ("[never closed", "unclosed [ (link text)"),
    ],
)
def test_malformed_markup_is_an_error(source: str, message: str) -> None:
    with pytest.raises(
        MarkupError,
        match=message.replace("(", r"\(")
        .replace(")", r"\)")
        .replace("*", r"\*")
        .replace("[", r"\[")
        .replace("]", r"\]")
        .replace(".", r"\."),
    ):
        parse_inline(source)


def test_lone_asterisk_is_text() -> None:
    assert parse_inline("a * b") == (Text("a * b"),)
