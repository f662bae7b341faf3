"""Classify one inbound message to the contact address: the pure core of inbound mail.

The stages, each a pure function of the message::

    parse_message(raw)            bytes -> EmailMessage, defects tolerated
    body_text / strip_quoted      the new text the sender wrote (newsletter/inbound/text.py)
    classify_message              bounce > auto > confirm > subscribe / unsubscribe > review

Nothing here sends, stores or looks anything up: the caller acts on the
:class:`Classification` (send a confirmation, suppress an address, queue for review).
A request never activates anyone: subscribe only lists who should be sent a
confirmation, and only a valid confirm token naming the From address confirms.
"""

from __future__ import annotations

import base64
import re
import time
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage, Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses
from typing import Any, Literal

from newsletter.audience.inbound.safety import clean_address, clean_header_text, clean_text
from newsletter.audience.inbound.text import (
    PARSE_ERRORS,
    all_text,
    body_text,
    child_parts,
    html_to_text,
    part_text,
    strip_quoted,
)
from newsletter.errors import TokenError
from newsletter.tokens import CONFIRM_TTL, read_token

__all__ = [
    "Classification",
    "Kind",
    "body_text",
    "classify_message",
    "confirm_token_minted",
    "html_to_text",
    "parse_message",
    "strip_quoted",
]

Kind = Literal["subscribe", "unsubscribe", "confirm", "bounce", "auto", "review"]

MAX_NAMED_ADDRESSES = 10  # more than this in one request is a bulk request: a human checks
MAX_BOUNCE_RECIPIENTS = 5  # a delivery report naming more is not acted on: a human checks
SUBJECT_LIMIT = 200
EXCERPT_LIMIT = 500
_TEXT_LIMIT = 100_000  # characters of body text examined; the rest is ignored


@dataclass(frozen=True, slots=True)
class Classification:
    """What one inbound message asks for, and why we think so."""

    kind: Kind
    sender: str | None  # the From address (validated, lowercased domain), None if unusable
    addresses: tuple[str, ...]  # who the request is for; bounce: the failed recipients
    reason: str  # one human sentence: why this kind
    token_email: str | None = None  # confirm: the email a valid confirm token names
    message_id: str | None = None  # sanitised Message-ID, for idempotence records
    subject: str = ""  # sanitised, bounded
    excerpt: str = ""  # the start of the new (unquoted) text, for the review queue
    original_message_id: str | None = None  # bounce: Message-ID of the mail that failed
    token_minted: float | None = None  # confirm: when the confirm token was made (Unix)


# --------------------------------------------------------------------------- parsing


def parse_message(raw: bytes) -> EmailMessage:
    """Parse raw bytes with ``policy.default``; defects are recorded, never raised."""
    msg = BytesParser(policy=policy.default).parsebytes(raw)
    if not isinstance(msg, EmailMessage):  # pragma: no cover - policy.default guarantees it
        raise TypeError("expected an EmailMessage")
    return msg


def _raw_header(msg: Message, name: str) -> str | None:
    lname = name.lower()
    for key, value in msg.raw_items():
        if key.lower() == lname:
            return str(value)
    return None


def _header(msg: Message, name: str) -> Any:
    """The header object, or its raw text when the stdlib parser chokes on it."""
    try:
        return msg.get(name)
    except PARSE_ERRORS:
        return _raw_header(msg, name)


def _header_text(msg: Message, name: str, *, limit: int = SUBJECT_LIMIT) -> str:
    return clean_header_text(_header(msg, name), limit=limit)


def _has_header(msg: Message, name: str) -> bool:
    return any(key.lower() == name.lower() for key in msg)


def _sender(msg: Message) -> str | None:
    value = _header(msg, "From")
    if value is None:
        return None
    addresses = getattr(value, "addresses", None)
    if addresses:
        try:
            return clean_address(addresses[0].addr_spec)
        except PARSE_ERRORS:
            pass
    raw = " ".join((_raw_header(msg, "From") or "").split())
    angle = re.search(r"<([^<>\s]+@[^<>\s]+)>$", raw)
    if angle:  # "display name the parser refused <addr>": the address is what counts
        return clean_address(angle.group(1))
    pairs = getaddresses([raw])
    return clean_address(pairs[0][1]) if pairs and pairs[0][1] else None


def _message_id(value: object) -> str | None:
    text = clean_header_text(value, limit=300)
    match = re.search(r"<[^<>\s]{1,250}>", text)
    if match:
        return match.group(0)
    if text and " " not in text and len(text) <= 250:
        return text
    return None


# ----------------------------------------------------------------- intent matching


def _normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).casefold()
    text = text.replace("\u2019", "'").replace("\u2018", "'").replace("`", "'")
    return " ".join(text.split())


_ADDR = r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"
_OBJ = r"(?:digest|newsletter|news letter|issues?|list|mailings?|updates|e-?mails?)"
_PEOPLE = (
    r"(?:colleagues?|co-?workers?|friends?|team|staff|boss|assistant|address|e-?mail|partner|"
    r"wife|husband|manager|director|students?|members?|name|supervisor|deputy)\b"
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
        r"\b(?:please\s+)?add\b[^.!?]{0,60}\bto\s+(?:your|the|this)\s+(?:[\w-]+\s+){0,2}"
        r"(?:list|digest|newsletter|distribution)",
        r"\bsign\s+(?:me|us|myself|[\w-]+)\s+up\b",
        r"\bsign(?:\s|-)?up\b",
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
_SUBSCRIBE_WEAK = [re.compile(p) for p in (r"\bsubscribe\b", r"購読(?!して(?:い|お)|中)")]
_SELF = [
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
_OTHERS = re.compile(
    r"\b(?:colleagues?|co-?workers?|friends?|team|staff|boss|assistant|him|her|them|below|"
    r"following|attached|these people)\b|同僚|部下|上司|知人|友人|下記|以下"
)
_REFUSAL = re.compile(
    r"\b(?:did not|didn't|never)\s+(?:ask|request|sign|subscribe|want)|\bnot me\b|"
    r"覚えがない|申し込んでいません|心当たり"
)
_QUESTION = re.compile(r"[?？]|(?:ですか|ますか|でしょうか)")
_REPLY_PREFIX = re.compile(
    r"^\s*(?:(?:re|fwd?|aw|wg|tr|sv|vs|antw|転送|返信)\s*(?:\[\d+\])?\s*[:：]\s*)+", re.IGNORECASE
)
_OUT_OF_OFFICE = re.compile(
    r"out of (?:the )?office|automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|"
    r"vacation|away from (?:the |my )?office|abwesenheit|自動返信|自動応答|不在|休暇",
    re.IGNORECASE,
)
#: helpdesk / ticket-system acknowledgements that carry no RFC 3834 headers; matched on the
#: normalised (casefolded) subject and new text of a confirmation reply
_AUTO_ACK = re.compile(
    r"\[\s*#\s*\d+\s*\]|\[[\w .-]{0,30}#\s*\d+\s*\]|\bticket\b|\b(?:case|request|incident)\s*"
    r"(?:#|no\.?|number|id)\s*:?\s*\d+|\bwe(?:'ve| have)? (?:received|got) your\b|"
    r"\bthis is an? (?:automated|automatic)\b|\b(?:automated|automatic) (?:message|"
    r"response|reply|acknowledge?ment|notification)\b|\bthank you for contacting\b|"
    r"\bdo not reply to this\b|自動|受け?付け(?:ました|いたしました|致しました)|"
    r"受付(?:番号|いたしました|しました)"
)
_AUTO_LOCALPART = re.compile(
    r"^(?:mailer-daemon|postmaster|no-?reply|do-?not-?reply|noreply-.*|.*-request|bounces?)$",
    re.IGNORECASE,
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
class _Intent:
    subscribe: str | None  # the phrase that asked, None if none
    subscribe_strong: bool
    unsubscribe: str | None


def _intent(text: str) -> _Intent:
    unsub = _matches(_UNSUBSCRIBE, text)
    rest = _mask(text, unsub)
    strong = _matches(_SUBSCRIBE_STRONG, rest)
    weak = strong or _matches(_SUBSCRIBE_WEAK, rest)
    return _Intent(
        subscribe=weak[0].group(0) if weak else None,
        subscribe_strong=bool(strong),
        unsubscribe=unsub[0].group(0) if unsub else None,
    )


# ------------------------------------------------------------------ addresses


def _in_domains(address: str, domains: frozenset[str]) -> bool:
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


def _named_addresses(text: str, *, exclude: set[str], domains: frozenset[str]) -> list[str]:
    """Addresses written in the request, up to a standalone valediction ("Thanks,")."""
    region: list[str] = []
    for line in text.split("\n"):
        if region and _VALEDICTION.match(line.strip()):
            break
        region.append(line)
    found: list[str] = []
    normalised = unicodedata.normalize("NFKC", "\n".join(region))
    for match in _NAMED_ADDRESS.finditer(normalised):
        address = clean_address(match.group(0).strip(".'"))
        if address is None or _in_domains(address, domains):
            continue
        key = address.lower()
        if key in exclude or key in (a.lower() for a in found):
            continue
        found.append(address)
    return found


# --------------------------------------------------------------------- tokens

_TOKEN = re.compile(r"(?<![A-Za-z0-9_-])([A-Za-z0-9_-]{8,})\.([A-Za-z0-9_-]{43})(?![A-Za-z0-9_-])")


@dataclass(frozen=True, slots=True)
class _TokenCheck:
    valid: str | None  # the email of a valid confirm token naming the sender
    problem: str | None  # why a confirm-shaped token is refused
    minted: float | None = None  # when the valid token was made


def _token_candidates(texts: Iterable[str]) -> list[str]:
    seen: list[str] = []
    for text in texts:
        for match in _TOKEN.finditer(text):
            token = match.group(0)
            if token not in seen:
                seen.append(token)
    return seen


def confirm_token_minted(token: str, ttl: int = CONFIRM_TTL) -> float | None:
    """When a confirm token was made (its expiry minus ``ttl``); None if unreadable.

    Only meaningful for a token whose signature has been checked.
    """
    body = token.strip().split(".", 1)[0]
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
        return float(int(payload.split(":", 1)[0]) - ttl)
    except (ValueError, UnicodeError):
        return None


def _looks_like_token(token: str) -> bool:
    body = token.split(".", 1)[0]
    try:
        payload = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)).decode("utf-8")
    except (ValueError, UnicodeError):
        return False
    return re.fullmatch(r"\d{9,12}:[^@\s]+@[^@\s]+", payload) is not None


def _check_tokens(
    tokens: list[str], *, secret: str | None, sender: str, now: float
) -> _TokenCheck | None:
    shaped = [t for t in tokens if _looks_like_token(t)]
    if not shaped:
        return None
    if secret is None:
        return _TokenCheck(None, "carries a confirmation token but no secret key is set")
    problems: list[str] = []
    for token in shaped:
        try:
            email = read_token(secret, token, "confirm", now=0.0)  # signature only
        except TokenError:
            try:  # a quoted unsubscribe link from an issue is not a confirmation attempt
                read_token(secret, token, "unsubscribe", now=0.0)
                continue
            except TokenError:
                problems.append("a confirmation token with an invalid signature (tampered?)")
                continue
        if email.lower() != sender.lower():
            problems.append(f"a confirmation token for {email}, not for the sender {sender}")
            continue
        try:
            read_token(secret, token, "confirm", now=now)
        except TokenError:
            problems.append(f"an expired confirmation token for {email}")
            continue
        return _TokenCheck(email, None, confirm_token_minted(token))
    if not problems:
        return None
    return _TokenCheck(None, "carries " + problems[0])


# --------------------------------------------------------------------- bounces


@dataclass(frozen=True, slots=True)
class _Recipient:
    final: str | None
    original: str | None
    action: str
    status: str


def _field_blocks(part: Message) -> list[Message]:
    blocks = child_parts(part)
    if blocks:
        return blocks
    text = part_text(part)
    parser = HeaderParser(policy=policy.default)
    return [
        parser.parsestr(chunk.strip() + "\n")
        for chunk in re.split(r"\n\s*\n", text)
        if chunk.strip()
    ]


def _dsn_address(value: str) -> str | None:
    text = clean_header_text(value, limit=400)
    if ";" in text:
        kind, text = text.split(";", 1)
        if kind.strip().lower() not in ("rfc822", ""):
            return None
    return clean_address(text.strip())


def _dsn_recipients(msg: Message) -> list[_Recipient] | None:
    """The per-recipient fields of a delivery-status report, or None if not a DSN."""
    if msg.get_content_type() != "multipart/report":
        return None
    if str(msg.get_param("report-type", "")).lower() != "delivery-status":
        return None
    status_part = next(
        (p for p in msg.walk() if p.get_content_type() == "message/delivery-status"), None
    )
    if status_part is None:
        return []
    recipients = []
    for block in _field_blocks(status_part):
        final = _header_text(block, "Final-Recipient", limit=400)
        original = _header_text(block, "Original-Recipient", limit=400)
        if not final and not original:
            continue
        status = _header_text(block, "Status", limit=40)
        recipients.append(
            _Recipient(
                final=_dsn_address(final) if final else None,
                original=_dsn_address(original) if original else None,
                action=_header_text(block, "Action", limit=40).lower(),
                status=status.split()[0] if status else "",
            )
        )
    return recipients


def _original_message_id(msg: Message) -> str | None:
    for part in msg.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822":
            inner = child_parts(part)
            if inner:
                return _message_id(_header(inner[0], "Message-ID"))
        elif ctype == "text/rfc822-headers":
            headers = HeaderParser(policy=policy.default).parsestr(part_text(part))
            return _message_id(_header(headers, "Message-ID"))
    return None


# ------------------------------------------------------------------- auto mail


def _unique(addresses: Iterable[str]) -> list[str]:
    out: list[str] = []
    for address in addresses:
        if address.lower() not in (a.lower() for a in out):
            out.append(address)
    return out


def _auto_reason(msg: Message, sender: str | None, subject: str, contact: str) -> str | None:
    if msg.get_content_type() == "multipart/report":
        report = clean_header_text(msg.get_param("report-type", ""), limit=60)
        return f"machine-generated report (report-type={report or 'unknown'})"
    auto = _header_text(msg, "Auto-Submitted", limit=60)
    if auto and auto.split(";")[0].strip().lower() != "no":
        return f"automatic message (Auto-Submitted: {auto})"
    if _has_header(msg, "Return-Path") and _header_text(msg, "Return-Path").strip(" <>") == "":
        return "null sender (Return-Path: <>): a bounce or automatic message"
    for name in ("X-Autoreply", "X-Autorespond", "X-Auto-Response-Suppress", "X-Autogenerated"):
        if _has_header(msg, name):
            return f"automatic message ({name} header)"
    precedence = _header_text(msg, "Precedence", limit=40).lower()
    if precedence in ("bulk", "junk", "list", "auto_reply"):
        return f"automatic or bulk message (Precedence: {precedence})"
    for name in ("List-Id", "List-Unsubscribe", "List-Post"):
        if _has_header(msg, name):
            return f"mailing-list traffic ({name} header)"
    if contact.lower() in _header_text(msg, "X-Loop", limit=400).lower():
        return "mail loop (X-Loop names our contact address)"
    if sender is not None:
        if sender.lower() == contact.lower():
            return "sent from our own contact address: a mail loop"
        if _AUTO_LOCALPART.match(sender.rsplit("@", 1)[0]):
            return f"sent by a system address ({sender})"
    if subject and _OUT_OF_OFFICE.search(subject):
        return f"auto-reply subject ({subject!r})"
    return None


# ------------------------------------------------------------ authentication

#: SendGrid Inbound Parse's ``SPF`` and ``dkim`` fields, carried into the rebuilt
#: message by the web server (newsletter/web/pipeline.py)
INBOUND_SPF_HEADER = "X-Inbound-Parse-SPF"
INBOUND_DKIM_HEADER = "X-Inbound-Parse-DKIM"
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)


def _all_raw(msg: Message, name: str) -> list[str]:
    lname = name.lower()
    return [" ".join(str(v).split()) for k, v in msg.raw_items() if k.lower() == lname]


def _auth_failure(msg: Message) -> str | None:
    """Why the receiving side says the From is not authentic, or None.

    Only a failure counts (a header the sender added can only make us more careful):
    ``dmarc=fail``, or ``spf=fail`` together with ``dkim=fail``, in an
    Authentication-Results header; or Inbound Parse's SPF and DKIM both failing.
    """
    for value in _all_raw(msg, "Authentication-Results"):
        results: dict[str, set[str]] = {}
        for method, result in _AUTH_RESULT.findall(value):
            results.setdefault(method.lower(), set()).add(result.lower())
        if "fail" in results.get("dmarc", set()):
            return "Authentication-Results: dmarc=fail"
        if "fail" in results.get("spf", set()) and "fail" in results.get("dkim", set()):
            return "Authentication-Results: spf=fail, dkim=fail"
    spf = " ".join(_all_raw(msg, INBOUND_SPF_HEADER)).lower()
    dkim = " ".join(_all_raw(msg, INBOUND_DKIM_HEADER)).lower()
    if re.search(r"\bfail\b", spf) and re.search(r"\bfail\b", dkim) and "pass" not in dkim:
        return "Inbound Parse: SPF fail, DKIM fail"
    return None


# -------------------------------------------------------------------- classify


def classify_message(
    msg: EmailMessage,
    *,
    contact: str,
    secret: str | None,
    our_domains: Iterable[str] = (),
    now: float | None = None,
) -> Classification:
    """Decide what one inbound message asks for. Pure: no I/O, never raises on bad mail.

    ``contact`` is the address people write to; ``our_domains`` (plus the contact's
    domain) are never subscribed and mail from them is not answered automatically.
    ``secret`` checks confirmation tokens; ``now`` defaults to the current time.
    """
    now = time.time() if now is None else now
    contact = contact.strip().lower()
    domains = frozenset(
        d.strip().lower().lstrip("@") for d in (*our_domains, contact.rsplit("@", 1)[-1]) if d
    )
    subject = _header_text(msg, "Subject", limit=SUBJECT_LIMIT)
    message_id = _message_id(_header(msg, "Message-ID"))
    sender = _sender(msg)

    try:
        full = body_text(msg)[:_TEXT_LIMIT]
    except PARSE_ERRORS:
        full = ""
    new = strip_quoted(full)
    excerpt = clean_text(new, limit=EXCERPT_LIMIT)

    def result(
        kind: Kind,
        reason: str,
        addresses: Iterable[str] = (),
        *,
        token_email: str | None = None,
        original_message_id: str | None = None,
        token_minted: float | None = None,
    ) -> Classification:
        return Classification(
            kind=kind,
            sender=sender,
            addresses=tuple(addresses),
            reason=reason,
            token_email=token_email,
            message_id=message_id,
            subject=subject,
            excerpt=excerpt,
            original_message_id=original_message_id,
            token_minted=token_minted,
        )

    # 1. Bounces: delivery-status reports, before the generic auto checks.
    recipients = _dsn_recipients(msg)
    if recipients is not None:
        original_id = _original_message_id(msg)
        named = _unique(a for r in recipients for a in (r.original, r.final) if a)
        if max(len(recipients), len(named)) > MAX_BOUNCE_RECIPIENTS:
            return result(
                "review",
                f"delivery report naming {max(len(recipients), len(named))} recipients "
                f"(more than {MAX_BOUNCE_RECIPIENTS}): a human checks it",
                original_message_id=original_id,
            )
        failed: list[str] = []
        delayed: list[str] = []
        codes: list[str] = []
        for r in recipients:
            addresses = [a for a in (r.original, r.final) if a]
            permanent = r.status.startswith("5") or (not r.status and r.action == "failed")
            if permanent and r.action in ("failed", ""):
                failed = _unique([*failed, *addresses])
                codes.append(r.status or "failed")
            elif r.status.startswith("4") or r.action == "delayed":
                delayed = _unique([*delayed, *addresses])
        if failed:
            return result(
                "bounce",
                f"permanent delivery failure ({', '.join(codes)}) for {', '.join(failed)}",
                failed,
                original_message_id=original_id,
            )
        if delayed:
            return result(
                "auto",
                f"delayed: transient delivery failure for {', '.join(delayed)}, not a bounce",
                delayed,
                original_message_id=original_id,
            )
        if recipients:
            actions = sorted({r.action or "unknown" for r in recipients})
            return result("auto", f"delivery report without a failure ({', '.join(actions)})")
        return result("review", "delivery report without a failed recipient we can read")

    # 2. Automatic mail (RFC 3834 and friends): recognised, never answered.
    auto = _auto_reason(msg, sender, subject, contact)
    if auto:
        return result("auto", auto)

    if sender is None:
        raw_from = _header_text(msg, "From", limit=80)
        shown = f" ({raw_from!r})" if raw_from else ""
        return result("review", f"no usable From address{shown}")
    if _in_domains(sender, domains):
        return result("review", f"sent from our own domain ({sender}); not answered automatically")

    # 3. Confirmation replies: a valid confirm token naming the sender, anywhere.
    try:
        texts = [subject, *all_text(msg)]
    except PARSE_ERRORS:
        texts = [subject, full]
    check = _check_tokens(_token_candidates(texts), secret=secret, sender=sender, now=now)
    normal_new = _normalise(new)
    if check is not None:
        if check.problem is not None:
            return result("review", f"not confirmed: the message {check.problem}")
        if _intent(normal_new).unsubscribe or _REFUSAL.search(normal_new):
            return result(
                "review",
                "replied to a confirmation with a valid token but the reply refuses it",
            )
        ack = _AUTO_ACK.search(_normalise(f"{subject}\n{new}"))
        if ack:
            return result(
                "review",
                "not confirmed: the reply looks like an automatic acknowledgement "
                f"({ack.group(0)!r}), not a person",
            )
        return result(
            "confirm",
            f"replied to the confirmation mail with a valid token for {check.valid}",
            [sender],
            token_email=check.valid,
            token_minted=check.minted,
        )

    # 4. Requests in free text (and an original subject: not "Re:"/"Fwd:"). A From the
    # receiving side says is forged asks nothing automatically.
    failed_auth = _auth_failure(msg)
    if failed_auth:
        return result(
            "review",
            f"sender authentication failed ({failed_auth}): not applied automatically",
        )
    own_subject = "" if _REPLY_PREFIX.match(subject) else subject
    if own_subject.strip().lower() == "unsubscribe":
        return result("unsubscribe", "subject 'unsubscribe' (List-Unsubscribe mailto)", [sender])
    text = _normalise(f"{own_subject}\n{new}")
    if not text:
        return result("review", "empty message: no subject and no new text")
    intent = _intent(text)
    if intent.subscribe and intent.unsubscribe:
        return result(
            "review",
            f"ambiguous: asks to subscribe ('{intent.subscribe}') and to unsubscribe "
            f"('{intent.unsubscribe}')",
        )
    phrase = intent.unsubscribe or intent.subscribe
    if phrase is None:
        why = "a question" if _QUESTION.search(text) else "no subscribe or unsubscribe request"
        return result("review", f"needs a human: {why} recognised in the new text")
    if intent.subscribe and not intent.subscribe_strong and _QUESTION.search(text):
        return result("review", f"a question about subscribing ('{phrase}'), not a request")

    verb: Kind = "unsubscribe" if intent.unsubscribe else "subscribe"
    named = _named_addresses(new, exclude={contact}, domains=domains)
    self_named = any(a.lower() == sender.lower() for a in named)
    named = [a for a in named if a.lower() != sender.lower()]
    if len(named) > MAX_NAMED_ADDRESSES:
        return result("review", f"asks to {verb} {len(named)} addresses: a bulk request")
    wants_self = self_named or any(p.search(text) for p in _SELF)
    if named:
        addresses = ([sender] if wants_self else []) + named
        return result(verb, f"asked to {verb} {', '.join(addresses)}: '{phrase}'", addresses)
    if _OTHERS.search(_normalise(new)) and not wants_self:
        return result("review", f"asks to {verb} someone else ('{phrase}') but names no address")
    return result(verb, f"asked to {verb}: '{phrase}'", [sender])
