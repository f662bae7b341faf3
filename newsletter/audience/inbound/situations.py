"""Mail whose request words do not mean a request to us, read as a careful admin would.

Each reader takes the message (or its normalised new text) and says why its subscribe
or unsubscribe words must not be acted on, or None:

* :func:`automatic_text` -- an out-of-office or challenge-response reply that carries
  none of the RFC 3834 headers (recognised by its words): automatic mail;
* :func:`thread_reason` -- a conversation among several people that copied the contact
  address ("please remove me from this thread" is about the thread);
* :func:`pitch_reason` -- a vendor's pitch ("publishers like you grow their subscriber
  lists", "sign up for a free trial");
* :func:`address_change_reason` -- a reader moving to a new address (leave one, join
  another: a human does both, or neither).

Pure: the classifier decides, and sends the last three to review.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from email.message import Message
from email.utils import getaddresses

from newsletter.audience.inbound.headers import header_text

__all__ = ["address_change_reason", "automatic_text", "pitch_reason", "thread_reason"]

_SCAN = 5_000  # characters read: such a message says what it is early, not 90 KB down

_OUT_OF_OFFICE = re.compile(
    r"\b(?:i am|i'm|i will be|i'll be)\s+(?:currently\s+)?(?:out of (?:the )?office|away|on "
    r"(?:leave|vacation|holiday|annual leave))\b|\bout of (?:the )?office until\b|\blimited "
    r"access to (?:my )?e-?mail\b|\bon (?:parental|annual|maternity|paternity) leave\b|"
    r"不在にしております|不在のため|休暇(?:を|中|のため)|出張中"
)
_CHALLENGE = re.compile(
    r"\bverify (?:that )?you are (?:a )?(?:human|real person)|\bcomplete the verification\b|"
    r"\bsender verification\b|\bis being held\b|\bto deliver your message\b|\bone-time "
    r"verification\b|\bprotecting (?:myself|my inbox) from spam\b|\bwhitelist\b|"
    r"\bchallenge[- ]response\b|送信者(?:確認|認証)"
)
_THREAD_WORDS = re.compile(
    r"\b(?:this|the|that) (?:e-?mail )?(?:thread|chain|conversation|email chain)\b|"
    r"\breply(?:ing)?[- ]all\b|\binvite list\b|このスレッド"
)
_PITCH = re.compile(
    r"\bpublishers like you\b|\bgrow (?:your|their) (?:subscriber|audience|mailing|e-?mail)|"
    r"\bfree trial\b|\bschedule a (?:quick )?(?:call|demo|meeting)\b|\b(?:want|book) a demo\b|"
    r"\bopen rates?\b|\bverified (?:policy )?(?:contacts|leads|e-?mails)\b|\bour (?:email )?"
    r"(?:platform|tool|service|podcast|product|solution|premium|software|agency|team can)\b|"
    r"\b(?:subscribe|sign up)\b[^.!?]{0,20}\b(?:to|for) our\b|\bstart your subscription\b|"
    r"\breply yes\b|\byour (?:subscribers|audience|list) grow\b|\b(?:seo|ad|marketing) "
    r"(?:package|campaign|services?)\b|"
    r"サービスのご案内|無料トライアル|弊社(?:の|では)|資料請求"
)
_ADDRESS_CHANGE = re.compile(
    r"\bnew (?:e-?mail )?address\b|\b(?:e-?mail|address) (?:has |have )?changed\b|"
    r"\bupdate my (?:e-?mail|address|contact)\b|\binstead of this (?:one|address)\b|"
    r"\bchange (?:my|the) (?:e-?mail|address)\b|\bmoving to a new (?:organi[sz]ation|job|role)"
    r"[^.!?]{0,40}(?:address|e-?mail)|アドレス(?:が|を|の)?変(?:わ|更)|新しいアドレス|"
    r"アドレス変更"
)


def automatic_text(text: str) -> str | None:
    """Why the normalised new text is an automatic reply, recognised by its words."""
    found = _CHALLENGE.search(text[:_SCAN]) or _OUT_OF_OFFICE.search(text[:400])
    if found is None:
        return None
    what = "challenge-response" if found.re is _CHALLENGE else "out-of-office"
    return f"{what} reply without Auto-Submitted ({found.group(0)!r})"


def thread_reason(msg: Message, text: str, *, ours: Iterable[str]) -> str | None:
    """Why this is a conversation that merely copied us, or None."""
    own = {a.lower() for a in ours}
    others: list[str] = []
    for name in ("To", "Cc"):
        for _display, addr in getaddresses([header_text(msg, name, limit=2000)]):
            if addr and "@" in addr and addr.lower() not in own and addr not in others:
                others.append(addr.lower())
    words = _THREAD_WORDS.search(text[:_SCAN])
    if words:
        return f"about a conversation, not the digest ({words.group(0)!r})"
    if len(others) >= 2:
        return f"a conversation with {len(others)} other people that copied us"
    return None


def pitch_reason(text: str) -> str | None:
    found = _PITCH.search(text[:_SCAN])
    return f"reads like a sales pitch ({found.group(0)!r})" if found else None


def address_change_reason(text: str) -> str | None:
    found = _ADDRESS_CHANGE.search(text[:_SCAN])
    return f"an address change ({found.group(0)!r}): a human moves the reader" if found else None
