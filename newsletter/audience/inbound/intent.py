"""What the sender's own words ask for: subscribe, unsubscribe, and for whom.

Reads the normalised new text (and an original subject) of a message a person wrote:
the request phrases in English and Japanese, negated ones left out (:func:`read_intent`);
whether the sender means themselves (:data:`SELF`) or others (:data:`OTHERS`); a refusal
(:data:`REFUSAL`) or a mere question (:data:`QUESTION`); and the addresses named in the
request, up to the valediction (:func:`named_addresses`). Pure: the classifier decides.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from newsletter.audience.inbound.safety import clean_address

__all__ = [
    "MAX_NAMED_ADDRESSES",
    "OTHERS",
    "QUESTION",
    "REFUSAL",
    "REPLY_PREFIX",
    "SELF",
    "Intent",
    "in_domains",
    "named_addresses",
    "normalise",
    "read_intent",
]

# more others than this in one request is a bulk request: a human checks (and no single
# message mails ten confirmations to ten colleagues)
MAX_NAMED_ADDRESSES = 3


_CJK = "\u3000-\u30ff\u3400-\u9fff\uf900-\ufaff\uff00-\uffef"
_CJK_GAP = re.compile(rf"(?<=[{_CJK}])\s+(?=[{_CJK}])")


def normalise(text: str) -> str:
    """Casefolded NFKC text on one line; a line break inside Japanese text (a wrapped
    request) leaves no space behind, as it would not in the sentence."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return _CJK_GAP.sub("", " ".join(text.split()))


_ADDR = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_OBJ = r"(?:digest|newsletter|news letter|issues?|list|mailings?|updates|e-?mails?)"
_PEOPLE = (
    r"(?:colleagues?|co-?workers?|friends?|team|staff|boss|assistant|address|e-?mail|partner|"
    r"wife|husband|manager|director|students?|members?|name|supervisor|deputy|inbox|mailbox|"
    r"account|alias)\b"
)
_NEGATION = re.compile(r"(?:\bnot|n't|\bnever|\bno)\s+(?:\w+\s+){0,2}$")

_UNSUBSCRIBE = [
    re.compile(p)
    for p in (
        r"\bun-?sub?scribe\b",
        rf"\bremove\s+(?:me|us|myself|my\s+(?:[\w-]+\s+)?(?:name|address|e-?mail)|{_ADDR})\b",
        r"\bremove\b[^.!?]{0,60}\bfrom\s+(?:your|the|this)\s+(?:[\w-]+\s+){0,2}"
        r"(?:list|digest|newsletter)",
        r"\bstop\s+(?:sending|e-?mailing|mailing)\b",
        rf"\btake\s+(?:me|us|myself|{_ADDR}|my\s+[\w-]+(?:\s+[\w-]+)?)\s+off\b",
        r"\bopt(?:\s|-)?out\b",
        r"\b(?:no longer|don't|do not)\s+(?:wish|want|need)\s+to\s+(?:receive|get)\b",
        r"\bcancel\s+(?:my|the|this|our)\s+subscription\b",
        r"\bdelete\s+(?:me|us|my\s+(?:address|e-?mail))\b",
        r"配信(?:を|の)?(?:停止|中止|解除|不要|止め|とめ|やめ|終了|お断り)",
        r"購読(?:を|の)?(?:停止|中止|解除|やめ|止め|取り?消|終了|キャンセル)",
        r"登録(?:を|の)?(?:解除|削除|取り?消|抹消|キャンセル)",
        r"解除",
        r"退会",
        r"送らないで",
        r"送付(?:を|の)?(?:停止|中止|不要)",
        r"受信(?:を|の)?(?:停止|拒否|不要)",
        r"リストから(?:削除|外|はず)",
    )
]
_SUBSCRIBE_STRONG = [
    re.compile(p)
    for p in (
        rf"\b(?:please\s+)?add\s+(?:me|us|myself|the\s+following|these|him|her|them|{_ADDR})\b",
        r"\b(?:please\s+)?add\s+(?:my|our)\s+(?:[\w-]+\s+){0,3}?" + _PEOPLE,
        r"\b(?:please\s+)?add\b(?:[^.!?]|\.(?=\w)){0,80}\bto\s+(?:your|the|this)\s+"
        r"(?:[\w-]+\s+){0,2}(?:list|digest|newsletter|distribution)",
        r"\badd\b(?:[^.!?]|\.(?=\w)){0,40}?\b(?:my|our)\s+(?:[\w-]+\s+){0,2}?" + _PEOPLE,
        r"\b(?:send|forward|mail)\b(?:[^.!?]|\.(?=\w)){0,40}\bto\s+(?:my|our)\s+"
        r"(?:[\w-]+\s+){0,2}?" + _PEOPLE,
        r"\bsign\s+(?:me|us|myself|[\w-]+)\s+up\b",
        r"\bkeep\s+(?:me|us)\s+(?:posted|informed|updated|in the loop)\b",
        r"\bsubscribe\s+(?:me|us|myself|my\s+[\w-]+|him|her|them|[\w.+-]+@)",
        r"\bplease\s+subscribe\b",
        r"\b(?:like|love|want|wish|keen|interested|happy|request)\b[^.!?]{0,30}?"
        r"\b(?:subscrib\w*|sign(?:ing)?\s+up)\b",
        r"\b(?:like|love|want|wish|keen|interested|happy)\b[^.!?]{0,40}?"
        r"\b(?:receive|receiving|get|getting|join|joining|be added|being added|be on|"
        rf"be included)\b(?:\s+it\b|[^.!?]{{0,50}}?\b{_OBJ})",
        r"\bsubscription\s+request\b",
        r"\brequest(?:ing)?\s+(?:a\s+)?subscription\b",
        r"\bhow\s+(?:do|can|could|may)\s+i\s+(?:subscribe|sign up|join)\b",
        rf"\b(?:put|include)\s+(?:me|us|myself|my\s+[\w-]+|{_ADDR})\b[^.!?]{{0,40}}\b"
        r"(?:list|digest|newsletter|distribution)\b",
        rf"\b(?:send|forward|mail|e-?mail)\s+(?:me|us|him|her|them)\b[^.!?]{{0,40}}\b{_OBJ}",
        r"購読(?:を|の)?(?:希望|お願い|申し?込|したい|させて|いたしたく|開始)",
        r"配信(?:を|の)?(?:希望|お願い|して(?:ください|下さい|いただ|ほしい|欲しい)|いただ|申し?込)",
        r"登録(?:を|の)?(?:お願い|希望|して(?:ください|下さい|いただ|ほしい|欲しい)|したい|いただ"
        r"|申し?込)",
        r"(?:受け取り|受信し|拝読し|読み)たい",
        r"送(?:って|付して)(?:ください|下さい|いただ|ほしい|欲しい)",
        r"追加(?:を|して|お願い|いただ)",
        r"(?:メーリング|配信)リストに(?:加え|入れ|追加|登録)",
        r"申し?込み?(?:ます|たい|を?お願い|希望)",
    )
]
# a bare "sign up" is as often an imperative aimed at us (a vendor's) as a request
_SUBSCRIBE_WEAK = [
    re.compile(p) for p in (r"\bsubscribe\b", r"\bsign(?:\s|-)?up\b", r"購読(?!して(?:い|お)|中)")
]
SELF = [
    re.compile(p)
    for p in (
        r"\b(?:add|sign|subscribe|include|put|remove|unsubscribe|take|drop|delete)\s+"
        r"(?:me|myself|us)\b",
        r"\b(?:me|myself)\s+(?:and|as well|too|also)\b",
        r"\b(?:and|&|as well as|plus)\s+(?:me|myself)\b",
        r"\bi(?:'d| would| want| wish|'m| am)\b[^.!?]{0,40}\b(?:subscribe|receive|join|sign up|"
        r"be added|be removed|unsubscribe|stop receiving|be taken off|opt out)",
        r"\bmy subscription\b",
        r"\b(?:can|could|may) i\b",
        r"(?:私|わたくし|自分|僕)(?:も|と|を|が|宛)",
    )
]
OTHERS = re.compile(
    r"\b(?:colleagues?|co-?workers?|friends?|team|staff|boss|assistant|him|her|them|below|"
    r"following|attached|these people)\b|同僚|部下|上司|知人|友人|下記|以下"
)
REFUSAL = re.compile(
    r"\b(?:did not|didn't|never)\s+(?:ask|request|sign|subscribe|want)|\bnot me\b|"
    r"覚えがない|申し込んでいません|心当たり"
)
QUESTION = re.compile(r"[?？]|(?:ですか|ますか|でしょうか)")
REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|tr|sv|vs|antw|転送|返信)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.IGNORECASE
)


def _matches(patterns: list[re.Pattern[str]], text: str) -> list[re.Match[str]]:
    found = []
    for pattern in patterns:
        for match in pattern.finditer(text):
            if not _NEGATION.search(text[max(0, match.start() - 30) : match.start()]):
                found.append(match)
    return sorted(found, key=lambda m: m.start())


def _mask(text: str, matches: list[re.Match[str]]) -> str:
    chars = list(text)
    for match in matches:
        chars[match.start() : match.end()] = " " * (match.end() - match.start())
    return "".join(chars)


@dataclass(frozen=True, slots=True)
class Intent:
    """The request phrases found in a text (the first of each kind)."""

    subscribe: str | None  # the phrase that asked, None if none
    subscribe_strong: bool
    unsubscribe: str | None


def read_intent(text: str) -> Intent:
    unsub = _matches(_UNSUBSCRIBE, text)
    rest = _mask(text, unsub)
    strong = _matches(_SUBSCRIBE_STRONG, rest)
    weak = strong or _matches(_SUBSCRIBE_WEAK, rest)
    return Intent(
        subscribe=weak[0].group(0) if weak else None,
        subscribe_strong=bool(strong),
        unsubscribe=unsub[0].group(0) if unsub else None,
    )


# ------------------------------------------------------------------ addresses


def in_domains(address: str, domains: frozenset[str]) -> bool:
    domain = address.rsplit("@", 1)[-1].lower()
    return any(domain == d or domain.endswith("." + d) for d in domains)


_VALEDICTION = re.compile(
    r"^(?:(?:best|kind|warm|many)?\s*(?:regards|wishes)|best|thanks?(?: you)?(?: so much)?|"
    r"thx|cheers|sincerely(?: yours)?|yours(?: sincerely| truly)?|respectfully|"
    r"よろしくお願い(?:いた|致)?します|宜しくお願い(?:いた|致)?します|以上)[\s,.!。、]*$",
    re.IGNORECASE,
)


# A match may only start where a run of local-part characters starts (the lookbehind):
# without it, a long run with no "@" is rescanned from every one of its characters
# (quadratic: 100,000 letters took ~17 s).
_NAMED_ADDRESS = re.compile(
    r"(?<![A-Za-z0-9.!#$%&'*+/=?^_`{|}~-])"
    r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9-]{1,63}(?:\.[A-Za-z0-9-]{1,63}){1,10}"
    r"(?![A-Za-z0-9-])"
)


_SIGNATURE_LINE = re.compile(
    r"^(?:--|—|_{2,}|sent from my\b|(?:e|e-?mail|mail|alt|tel|phone|mobile|m|t|f|fax|"
    r"assistant|press|office|web|direct|代表|メール|電話)\s*[:：])",
    re.IGNORECASE,
)


def named_addresses(
    text: str, *, exclude: set[str], domains: frozenset[str], signature: tuple[str, ...] = ()
) -> list[str]:
    """Addresses written in the request, up to where a signature starts: a standalone
    valediction ("Thanks,"), a "--" line, a labelled contact line ("Assistant: ..."), or
    a line that is the sender's name (``signature``: the From's display name and words)."""
    names = {n.casefold() for n in signature if len(n) > 1}
    region: list[str] = []
    for line in text.split("\n"):
        bare = line.strip()
        if region and (
            _VALEDICTION.match(bare) or _SIGNATURE_LINE.match(bare) or bare.casefold() in names
        ):
            break
        region.append(line)
    found: list[str] = []
    normalised = unicodedata.normalize("NFKC", "\n".join(region))
    for match in _NAMED_ADDRESS.finditer(normalised):
        address = clean_address(match.group(0).strip(".'"))
        if address is None or in_domains(address, domains):
            continue
        key = address.lower()
        if key in exclude or key in (a.lower() for a in found):
            continue
        found.append(address)
    return found
