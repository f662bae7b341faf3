"""Write the request corpus: tests/data/requests/*.eml and expected.yaml.

Realistic mail to the contact address, in English and Japanese, each request text sent
in one or more of the shapes real clients give it (Gmail with a quoted issue, Outlook
with its header-block history, Apple Mail HTML-only, a forward, a reply-all thread,
ISO-2022-JP and base64 UTF-8 Japanese). The expected outcome of every text is written
in ``tests/data/requests/cases.yaml``, beside it, before the classifier ever saw it.

    python -m tests.support.request_corpus     # rewrites tests/data/requests/

The messages and expectations are committed; the test reads only the files
(tests/audience/inbound/test_request_corpus.py).
"""

from __future__ import annotations

from email.message import EmailMessage
from email.policy import SMTP
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent.parent / "data" / "requests"
CONTACT = "digest@example.org"
DATE = "Tue, 04 Jun 2024 01:02:03 +0000"

#: the issue readers reply to, as their clients quote it (its footer is a trap: it
#: says "unsubscribe", "subscribe a colleague" and "please add me")
ISSUE_TEXT = (
    "US-Japan Alliance Digest, Vol 2.19 (October 13, 2023)\n"
    "Secretary Austin meets Minister Hamada in Tokyo\n"
    "Subscribe a colleague: write to digest@example.org, please add me is all it takes.\n"
    "To unsubscribe, click here or reply with unsubscribe."
)
ISSUE_JA = (
    "日米同盟ダイジェスト 第2.19号\n配信停止はこちら。購読のお申し込みは digest@example.org まで。"
)

# (name, sender, display name, subject, text, shapes, expected kind, expected addresses)
Case = tuple[str, str, str, str, str, tuple[str, ...], str, tuple[str, ...]]
SELF = "SELF"  # the sender, in an expectation


def load_cases() -> list[Case]:
    """Every text of ``cases.yaml`` with its shapes and expectation, in file order."""
    doc = yaml.safe_load((OUT / "cases.yaml").read_text("utf-8"))
    cases: list[Case] = []
    for group in ("english", "japanese", "written_after_tuning"):
        for c in doc[group]:
            display, _, rest = c["from"].rpartition("<")
            cases.append(
                (
                    c["name"],
                    rest.rstrip(">").strip(),
                    display.strip(),
                    c["subject"],
                    c["text"],
                    tuple(c["shapes"]),
                    c["expect"],
                    tuple(c["addresses"]),
                )
            )
    return cases


# ------------------------------------------------------------------------ shapes


def _quote(text: str) -> str:
    return "\n".join("> " + line for line in text.split("\n"))


def _html(text: str) -> str:
    from html import escape

    return "".join(f"<div>{escape(line) or '<br>'}</div>" for line in text.split("\n"))


def _message(case: Case, shape: str, n: int) -> EmailMessage:
    name, sender, display, subject, text, _shapes, _kind, _addresses = case
    msg = EmailMessage(policy=SMTP)
    msg["From"] = f"{display} <{sender}>"
    msg["To"] = f"US-Japan Alliance Digest <{CONTACT}>"
    msg["Subject"] = subject
    msg["Date"] = DATE
    msg["Message-ID"] = f"<{name}.{shape}.{n}@{sender.split('@')[1]}>"
    wrote = f"On Mon, Jun 3, 2024 at 9:12 AM US-Japan Alliance Digest <{CONTACT}> wrote:"
    if shape == "plain":
        msg.set_content(text + "\n")
    elif shape == "gmail":
        plain = f"{text}\n\n{wrote}\n\n{_quote(ISSUE_TEXT)}\n"
        msg.set_content(plain)
        html = (
            f'<div dir="ltr">{_html(text)}</div><br><div class="gmail_quote">'
            f'<div class="gmail_attr">{wrote}</div><blockquote class="gmail_quote">'
            f"{_html(ISSUE_TEXT)}</blockquote></div>"
        )
        msg.add_alternative(html, subtype="html")
    elif shape == "outlook":
        history = (
            f"From: US-Japan Alliance Digest <{CONTACT}>\nSent: Monday, June 3, 2024 9:12 AM\n"
            f"To: {display} <{sender}>\nSubject: US-Japan Alliance Digest, Vol 2.19\n\n"
            + ISSUE_TEXT
        )
        msg["Thread-Topic"] = subject
        msg.set_content(f"{text}\n\n{history}\n")
    elif shape == "apple":
        html = (
            f'<html><body dir="auto">{_html(text)}<div><br><blockquote type="cite">'
            f"{_html(ISSUE_TEXT)}</blockquote></div></body></html>"
        )
        msg.set_content(html, subtype="html")
    elif shape == "replyall":
        msg.replace_header("To", "sun.park@example.com, dev.roy@example.net, tokyo@example.jp")
        msg["Cc"] = f"Alliance Digest <{CONTACT}>, events@example.com"
        earlier = (
            "Dear all, attached are the logistics for next week. Please add the dates to "
            "your calendars and let me know if you cannot attend.\n\nBest,\nEvents team\n"
            "events@example.com"
        )
        msg.set_content(
            f"{text}\n\n{wrote.replace('US-Japan Alliance Digest', 'Events')}\n"
            f"\n{_quote(earlier)}\n"
        )
    elif shape == "forward":
        msg.replace_header("Subject", f"Fwd: {subject}")
        msg.set_content(
            f"{text}\n\n---------- Forwarded message ---------\n"
            f"From: US-Japan Alliance Digest <{CONTACT}>\nDate: Mon, Jun 3, 2024 at 9:12 AM\n"
            f"Subject: US-Japan Alliance Digest, Vol 2.19\nTo: <{sender}>\n\n{ISSUE_TEXT}\n"
        )
    elif shape in ("ja_iso", "ja_utf8"):
        charset = "iso-2022-jp" if shape == "ja_iso" else "utf-8"
        cte = "7bit" if shape == "ja_iso" else "base64"
        msg.set_content(text + "\n", charset=charset, cte=cte)
    elif shape == "ja_outlook":
        history = (
            f"差出人: 日米同盟ダイジェスト <{CONTACT}>\n送信日時: 2024年6月3日 9:12\n"
            f"宛先: {sender}\n件名: 日米同盟ダイジェスト 第2.19号\n\n{ISSUE_JA}"
        )
        msg.set_content(f"{text}\n\n{history}\n", charset="utf-8", cte="base64")
    else:  # pragma: no cover - a typo in CASES
        raise ValueError(shape)
    if msg.is_multipart():
        msg.set_boundary(f"=_{name}_{n}")  # the same bytes on every regeneration
    return msg


def build() -> dict[str, dict[str, Any]]:
    """Write every message; return the expectations by file name."""
    OUT.mkdir(parents=True, exist_ok=True)
    for old in OUT.glob("*.eml"):  # cases.yaml and expected.yaml stay
        old.unlink()
    expected: dict[str, dict[str, Any]] = {}
    n = 0
    for case in load_cases():
        name, sender, _d, _s, _t, shapes, kind, addresses = case
        for shape in shapes:
            n += 1
            file = f"{n:03d}-{name}-{shape}.eml"
            (OUT / file).write_bytes(bytes(_message(case, shape, n)))
            want = [sender if a == SELF else a for a in addresses]
            expected[file] = {"kind": kind, "addresses": want, "sender": sender}
    header = (
        "# Expected outcome of every message in this folder, written before the classifier\n"
        "# ran (tests/support/request_corpus.py holds the texts and these expectations).\n"
        "# kind: subscribe / unsubscribe (addresses: exactly who), review, or auto.\n"
    )
    (OUT / "expected.yaml").write_text(
        header + yaml.safe_dump(expected, allow_unicode=True, sort_keys=True, width=100),
        encoding="utf-8",
    )
    return expected


if __name__ == "__main__":
    print(f"{len(build())} messages written to {OUT}")
