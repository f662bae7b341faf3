"""The body of a SendGrid v3 ``mail/send`` request, written as JSON text directly, and
what SendGrid's error answers say.

The parts every request shares (sender, subject, content, inline images, category) are
encoded once per send (:func:`common_json_tail`); each recipient adds one short
personalization (:func:`personalization_json`): ``to``, the list headers, the
unsubscribe link's substitution and ``custom_args`` (issue, subscriber id) so webhook
events tie back to a subscriber. No SDK helper object is made per recipient.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from json.encoder import encode_basestring_ascii as _q
from typing import Any

from newsletter.compose.message import ascii_address, check_header
from newsletter.delivery.transports.base import BuilderLike, Outcome, RecipientLike
from newsletter.errors import HeaderError

_NAME_UNSAFE = str.maketrans({";": " ", ",": " ", '"': " ", "\r": " ", "\n": " "})


def common_payload(
    b: BuilderLike, *, tracking: bool = False, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """What every request of the send carries, as a dict. ``extra`` adds top-level
    fields for the whole send: ``send_at`` and ``batch_id`` (scheduled), ``mail_settings``
    (sandbox)."""
    rendered = b.rendered
    sender: dict[str, str] = {"email": b.from_address}
    if b.from_name:
        sender["name"] = b.from_name
    payload: dict[str, Any] = {
        "from": sender,
        "subject": b.subject,
        "content": [
            {"type": "text/plain", "value": rendered.text},
            {"type": "text/html", "value": rendered.html},
        ],
        "categories": [rendered.slug],
        # explicit either way: the account's default must not decide for the readers
        "tracking_settings": {
            "open_tracking": {"enable": tracking},
            "click_tracking": {"enable": tracking, "enable_text": False},
        },
    }
    if b.reply_to:
        payload["reply_to"] = {"email": b.reply_to}
    if rendered.images:
        payload["attachments"] = [
            {
                "content": base64.b64encode(img.data).decode("ascii"),
                "type": f"{img.maintype}/{img.subtype}",
                "filename": img.filename,
                "disposition": "inline",
                "content_id": img.cid,
            }
            for img in rendered.images
        ]
    payload.update(extra or {})
    return payload


def common_json_tail(
    b: BuilderLike, *, tracking: bool = False, extra: Mapping[str, Any] | None = None
) -> str:
    """:func:`common_payload` as the end of a JSON object: ``"from": ..., ... }``."""
    return json.dumps(common_payload(b, tracking=tracking, extra=extra))[1:]


def personalization_json(b: BuilderLike, r: RecipientLike, slug_json: str) -> str:
    """One recipient's personalization as JSON text (ASCII).

    Raises :class:`~newsletter.errors.HeaderError` for an address or name that cannot go
    into a header. ``slug_json`` is the issue's slug, JSON-encoded once by the caller.
    """
    to = '{"email":' + _q(ascii_address(r.email))
    name = " ".join(check_header("To", r.name).translate(_NAME_UNSAFE).split())
    if name:
        to += ',"name":' + _q(name)
    url = b.unsubscribe_url(r)  # one signed token for headers and body
    headers = ",".join(_q(k) + ":" + _q(v) for k, v in b.list_headers(r, url=url).items())
    subs = ",".join(_q(k) + ":" + _q(v) for k, v in b.substitutions(r, url=url).items())
    return (
        '{"to":[' + to + '}],"headers":{' + headers + '},"substitutions":{' + subs
        + '},"custom_args":{"issue":' + slug_json
        + ',"subscriber_id":' + _q(r.subscriber_id) + "}}"
    )  # fmt: skip


@dataclass(slots=True)
class Prepared:
    """One request's recipients, written ahead of its hand-off: ``parts[i]`` is recipient
    ``i``'s personalization, or None when it cannot be sent (``failures[i]`` says why)."""

    emails: list[str]
    parts: list[str | None]
    failures: dict[int, Outcome] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.emails)

    def without(self, drop: Collection[int]) -> Prepared:
        """The same request less the recipients at ``drop`` (they left the list)."""
        keep = [i for i in range(len(self.emails)) if i not in drop]
        return Prepared(
            [self.emails[i] for i in keep],
            [self.parts[i] for i in keep],
            {n: self.failures[i] for n, i in enumerate(keep) if i in self.failures},
        )


class PersonalizationWriter:
    """Writes a request's personalizations in bulk: exactly :func:`personalization_json`'s
    text, from a template made once per send and a few C calls per recipient.

    The template is that function's output for a stand-in link, with the slots where
    the recipient's ``to``, unsubscribe token and subscriber id go; the tokens of a
    whole request are signed in one call (:meth:`.MessageBuilder.unsubscribe_urls`).
    """

    def __init__(self, b: BuilderLike, slug_json: str) -> None:
        from newsletter.compose.message import Recipient

        self.builder = b
        probe = Recipient("probe@example.invalid")
        link = b.unsubscribe_urls([probe.email])[0]
        personal = link.startswith("http")  # else one mailto: link for everyone
        # the stand-in: the links' common start, then a marker where the token goes
        self.base = link[: link.rindex("/") + 1] if personal else ""
        stand_in = self.base + "\x00" if personal else link
        headers = ",".join(
            _q(k) + ":" + _q(v) for k, v in b.list_headers(probe, url=stand_in).items()
        )
        subs = ",".join(
            _q(k) + ":" + _q(v) for k, v in b.substitutions(probe, url=stand_in).items()
        )
        text = (
            '"headers":{' + headers + '},"substitutions":{' + subs
            + '},"custom_args":{"issue":' + slug_json + ',"subscriber_id":'
        )  # fmt: skip
        text = text.replace("%", "%%")
        self.links = text.count("\\u0000") if personal else 0
        self.template = '{"to":[%s}],' + text.replace("\\u0000", "%s") + '"%s"}}'

    def write(self, rows: Sequence[tuple[str, str]], *, now: float | None = None) -> Prepared:
        """``(email, name)`` rows -> their personalizations, in order."""
        emails = [email for email, _ in rows]
        tokens = self._tokens(emails, now)
        template, links = self.template, self.links
        parts: list[str | None] = []
        failures: dict[int, Outcome] = {}
        sha = hashlib.sha256
        for i, (email, name) in enumerate(rows):
            try:
                to = '{"email":' + _q(email if email.isascii() else ascii_address(email))
                if name:
                    # printable ASCII has no control character: no header check needed
                    if not (name.isascii() and name.isprintable()):
                        check_header("To", name)
                    name = " ".join(name.translate(_NAME_UNSAFE).split())
                    if name:
                        to += ',"name":' + _q(name)
            except HeaderError as exc:
                reason = f"cannot build the message: {exc.message}"
                failures[i] = Outcome.failed(email, reason, permanent=True)
                parts.append(None)
                continue
            sid = sha(email.strip().lower().encode()).hexdigest()[:16]
            if links == 2:  # List-Unsubscribe and the substitution: the usual case
                token = tokens[i]
                parts.append(template % (to, token, token, sid))
            else:
                parts.append(template % ((to,) + (tokens[i],) * links + (sid,)))
        return Prepared(emails, parts, failures)

    def _tokens(self, emails: list[str], now: float | None) -> list[str]:
        if not self.links:
            return [""] * len(emails)
        cut = len(self.base)
        return [url[cut:] for url in self.builder.unsubscribe_urls(emails, now=now)]


def error_text(status: int, body: bytes | str | None) -> str:
    """SendGrid's ``{"errors": [{"message", "field"}]}`` as one line."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    parts: list[str] = []
    if isinstance(data, dict) and isinstance(data.get("errors"), list):
        for err in data["errors"]:
            if isinstance(err, dict):
                msg = str(err.get("message", "")).strip()
                field = err.get("field")
                parts.append(f"{msg} ({field})" if field else msg)
    text = "; ".join(p for p in parts if p) or " ".join(raw.split())[:300]
    return f"SendGrid answered {status}: {text}" if text else f"SendGrid answered {status}"


def bad_personalizations(body: bytes | str | None) -> set[int] | None:
    """Indices N of ``personalizations.N...`` fields a 400 names; None if any error is
    about the request as a whole (then every batch would fail alike)."""
    raw = body.decode("utf-8", "replace") if isinstance(body, bytes) else (body or "")
    try:
        data = json.loads(raw)
    except ValueError:
        return None
    errors = data.get("errors") if isinstance(data, dict) else None
    if not isinstance(errors, list) or not errors:
        return None
    found: set[int] = set()
    for err in errors:
        field = str(err.get("field") or "") if isinstance(err, dict) else ""
        parts = field.split(".")
        if len(parts) < 2 or parts[0] != "personalizations" or not parts[1].isdigit():
            return None
        found.add(int(parts[1]))
    return found
