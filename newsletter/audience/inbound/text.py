"""The readable text of an inbound message: what the sender wrote now.

Pure functions used by the classifier and the review queue::

    decode_bytes                 bytes in a declared (or guessed) charset -> str, never raises
    body_text / html_to_text     the body as text (text/plain preferred; HTML converted)
    strip_quoted                 only the new text: no quotes, forwards, Outlook header
                                 blocks or signatures
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from email.errors import MessageError
from email.message import Message
from html.parser import HTMLParser

__all__ = [
    "all_text",
    "body_text",
    "child_parts",
    "decode_bytes",
    "html_to_text",
    "part_text",
    "strip_quoted",
]

# Errors the stdlib header and MIME parsers are known to raise on hostile input.
PARSE_ERRORS = (MessageError, ValueError, IndexError, AttributeError, TypeError, LookupError)


# ------------------------------------------------------------------- body to text

_CHARSET_ALIASES = {
    "shift_jis": "cp932",
    "shift-jis": "cp932",
    "sjis": "cp932",
    "x-sjis": "cp932",
    "ms_kanji": "cp932",
    "windows-31j": "cp932",
    "iso-2022-jp": "iso2022_jp_ext",
    "euc-jp": "euc_jis_2004",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "ks_c_5601-1987": "cp949",
    "iso-8859-1": "cp1252",
    "latin1": "cp1252",
    "us-ascii": "utf-8",  # mislabelled 8-bit mail is common; ASCII is a subset anyway
    "ascii": "utf-8",
}
_JAPANESE_FALLBACKS = {
    "iso2022_jp_ext": ("iso2022_jp", "iso2022_jp_2", "iso2022_jp_2004"),
    "cp932": ("shift_jis_2004",),
    "euc_jis_2004": ("euc_jp", "cp932"),
}


def decode_bytes(data: bytes, charset: str | None) -> str:
    """Decode body bytes by their declared charset; never raises (errors="replace")."""
    declared = (charset or "").strip().strip('"').lower()
    name = _CHARSET_ALIASES.get(declared, declared) or "utf-8"
    try:
        codecs.lookup(name)
    except LookupError:
        name = "utf-8"
    for candidate in (name, *_JAPANESE_FALLBACKS.get(name, ()), "utf-8"):
        try:
            return data.decode(candidate)
        except (UnicodeDecodeError, LookupError):
            continue
    return data.decode(name, errors="replace")


def _part_bytes(part: Message) -> bytes:
    try:
        payload = part.get_payload(decode=True)
    except PARSE_ERRORS:
        payload = None
    if isinstance(payload, bytes):
        return payload
    raw = part.get_payload()
    if isinstance(raw, str):
        return raw.encode("utf-8", errors="surrogateescape")
    return b""


def part_text(part: Message) -> str:
    try:
        charset = part.get_content_charset()
    except PARSE_ERRORS:
        charset = None
    text = decode_bytes(_part_bytes(part), charset)
    # surrogateescape leftovers from a raw 8-bit payload become replacement characters
    return text.encode("utf-8", errors="replace").decode("utf-8", errors="replace")


def _is_attachment(part: Message) -> bool:
    try:
        disposition = part.get_content_disposition()
    except PARSE_ERRORS:
        return False
    return disposition == "attachment"


def child_parts(part: Message) -> list[Message]:
    payload = part.get_payload()
    return [p for p in payload if isinstance(p, Message)] if isinstance(payload, list) else []


def body_text(part: Message) -> str:
    """The readable text of a message: text/plain preferred, HTML converted to text.

    Attachments and attached messages (``message/rfc822``) are left out.
    """
    ctype = part.get_content_type()
    if part.is_multipart():
        children = child_parts(part)
        if ctype == "multipart/alternative":
            texts = [(c.get_content_type(), body_text(c)) for c in children]
            for wanted in ("text/plain", "text/html"):
                for child_type, text in texts:
                    if child_type == wanted and text.strip():
                        return text
            return next((text for _, text in texts if text.strip()), "")
        if ctype in ("multipart/related", "multipart/report", "multipart/signed"):
            children = children[:1]
        if ctype.startswith("message/"):
            return ""
        return "\n".join(
            t for c in children if not _is_attachment(c) and (t := body_text(c)).strip()
        )
    if _is_attachment(part):
        return ""
    if ctype == "text/plain":
        return part_text(part)
    if ctype == "text/html":
        return html_to_text(part_text(part))
    return ""


def all_text(msg: Message) -> Iterator[str]:
    """Every text part, attached messages included, raw (HTML source kept for links)."""
    for part in msg.walk():
        if not part.is_multipart() and part.get_content_maintype() == "text":
            yield part_text(part)


class _TextExtractor(HTMLParser):
    _BLOCK = frozenset(
        {
            *("address", "article", "aside", "blockquote", "center", "dd", "div", "dl", "dt"),
            *("footer", "form", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr", "li"),
            *("ol", "p", "pre", "section", "table", "tbody", "td", "th", "thead", "tr", "ul"),
        }
    )
    _SKIP = frozenset({"head", "script", "style", "title", "template", "noscript"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.lines: list[tuple[int, str]] = []
        self._line: list[str] = []
        self._line_depth = 0
        self._quote = 0
        self._skip = 0

    def _newline(self) -> None:
        text = " ".join("".join(self._line).split())
        self.lines.append((self._line_depth, text))
        self._line = []
        self._line_depth = self._quote

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip += 1
        elif tag == "br":
            self._newline()
        elif tag in self._BLOCK:
            self._newline()
            if tag == "blockquote":
                self._quote += 1
                self._line_depth = self._quote

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip = max(0, self._skip - 1)
        elif tag in self._BLOCK:
            self._newline()
            if tag == "blockquote":
                self._quote = max(0, self._quote - 1)
                self._line_depth = self._quote

    def handle_data(self, data: str) -> None:
        if self._skip:
            return
        if not self._line or not "".join(self._line).strip():
            self._line_depth = self._quote
        self._line.append(data)

    def text(self) -> str:
        self._newline()
        out: list[str] = []
        for depth, line in self.lines:
            if not line:
                continue
            out.append(("> " * depth + line) if depth and line else line)
        return "\n".join(out).strip()


def html_to_text(html: str) -> str:
    """Readable text from HTML (stdlib parser): blocks become lines, <blockquote> "> "."""
    parser = _TextExtractor()
    try:
        parser.feed(html)
        parser.close()
    except (AssertionError, ValueError):  # pragma: no cover - html.parser is lenient
        pass
    return parser.text()


# ---------------------------------------------------------------- quote stripping

_FORWARD_OR_ORIGINAL = re.compile(
    r"""^(?:
        -{2,}\s*[^-]{0,60}?\s*-{2,}                 # ---- Original Message ---- / Forwarded
      | begin\ forwarded\ message\s*:?
      | forwarded\ message\s*:?
      | 転送されたメッセージ\s*[:：]?
      | 元のメッセージ
      | [-=_*~━─―＿＝]{3,}                          # separator line (Outlook's ____, sig ===)
      | --                                           # "-- " signature delimiter
    )$""",
    re.IGNORECASE | re.VERBOSE,
)
_ATTRIBUTION = re.compile(
    r"""(?:
        ^on\b.{0,250}\b(?:wrote|writes)\s*:?$
      | .{0,250}\b(?:wrote|writes)\s*:$
      | .{0,250}(?:a\ écrit|schrieb|escribió)\s*:?$
      | .{0,250}(?:さんは書きました|は書きました|が書きました|のメッセージ)\s*[:：]?$
      | ^\d{4}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.{0,200}[:：]$
      | ^\d{4}/\d{1,2}/\d{1,2}.{0,200}[:：]$
    )""",
    re.IGNORECASE | re.VERBOSE,
)
_OUTLOOK_FROM = re.compile(r"^\*?(?:from|差出人|送信者|von|de)\s*\*?\s*[:：]", re.IGNORECASE)
_OUTLOOK_NEXT = re.compile(
    r"^\*?(?:sent|date|to|subject|cc|送信日時|日付|宛先|件名|gesendet|envoyé)\s*\*?\s*[:：]",
    re.IGNORECASE,
)


def _is_quote_line(line: str) -> bool:
    return line.startswith((">", "＞"))


def _attribution_at(lines: list[str], i: int) -> int:
    """How many lines an attribution ("On ... wrote:") starting at ``i`` spans, or 0."""
    joined = ""
    for span in range(3):
        if i + span >= len(lines):
            break
        part = lines[i + span].strip()
        if not part or _is_quote_line(part):
            break
        joined = f"{joined} {part}".strip()
        if span and not re.match(r"^on\b", joined, re.IGNORECASE):
            break
        if _ATTRIBUTION.match(joined):
            return span + 1
    return 0


def strip_quoted(text: str) -> str:
    """Only what the sender wrote now.

    Drops ">" quoted lines, and cuts at the first attribution ("On ... wrote:",
    "... さんは書きました:"), forwarded or original-message marker, Outlook header block
    ("From: ... Sent: ..."), separator line or "-- " signature. An attribution followed
    by ">" quotes only drops the attribution, so bottom-posted replies keep their text.
    """
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.strip()
        if _is_quote_line(stripped):
            i += 1
            continue
        if stripped and _FORWARD_OR_ORIGINAL.match(stripped):
            break
        if _OUTLOOK_FROM.match(stripped) and any(
            _OUTLOOK_NEXT.match(following.strip()) for following in lines[i + 1 : i + 5]
        ):
            break
        span = _attribution_at(lines, i)
        if span:
            following = next((s.strip() for s in lines[i + span :] if s.strip()), "")
            if _is_quote_line(following):
                i += span
                continue
            break
        out.append(line.rstrip())
        i += 1
    return "\n".join(out).strip()
