"""The seam between the web app and the signup pipeline (confirm.py, signups.py, inbound).

The app calls these four functions only through a :class:`Pipeline`, whose default
imports the real ones lazily, so the web layer can be tested with a stand-in and
starting the server does not import the mail machinery until it is needed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from newsletter.audience.subscribers.store import SubscriberStore
    from newsletter.config import Settings


class ConfirmResult(Protocol):
    """What ``request_confirmation`` returns (``newsletter.audience.confirm.ConfirmRequest``)."""

    @property
    def sent(self) -> bool: ...

    @property
    def reason(self) -> str: ...  # "sent", "rate-limited", "already active", "suppressed", ...


class RequestConfirmation(Protocol):
    def __call__(
        self,
        email: str,
        settings: Settings,
        *,
        name: str = "",
        source: str,
        store: SubscriberStore | None = None,
        language: str | None = None,
    ) -> ConfirmResult: ...


class ConfirmToken(Protocol):
    def __call__(
        self, token: str, settings: Settings, *, store: SubscriberStore | None = None
    ) -> str: ...


class ProcessRawMessage(Protocol):
    def __call__(
        self, raw: bytes, settings: Settings, *, source: str, store: SubscriberStore | None = None
    ) -> object: ...


class RawFromInboundParse(Protocol):
    def __call__(self, form: Mapping[str, str | bytes]) -> bytes: ...


# The defaults forward to the real functions, imported on first use; their signatures
# are the Protocols above, which mypy checks the real functions against here:
if TYPE_CHECKING:
    from newsletter.audience.confirm import confirm_token, request_confirmation
    from newsletter.audience.signups import process_raw_message

    _REAL: tuple[RequestConfirmation, ConfirmToken, ProcessRawMessage] = (
        request_confirmation,
        confirm_token,
        process_raw_message,
    )


def _request_confirmation(*args: Any, **kwargs: Any) -> ConfirmResult:
    from newsletter.audience.confirm import request_confirmation

    return request_confirmation(*args, **kwargs)


def _confirm_token(*args: Any, **kwargs: Any) -> str:
    from newsletter.audience.confirm import confirm_token

    return confirm_token(*args, **kwargs)


def _process_raw_message(*args: Any, **kwargs: Any) -> object:
    from newsletter.audience.signups import process_raw_message

    return process_raw_message(*args, **kwargs)


def _field_text(form: Mapping[str, str | bytes], name: str) -> str:
    value = form.get(name, "")
    text = value.decode("utf-8", "replace") if isinstance(value, bytes) else value
    return "".join(c if " " <= c <= "~" else " " for c in text).strip()[:200]


def with_inbound_auth(form: Mapping[str, str | bytes], raw: bytes) -> bytes:
    """``raw`` with Inbound Parse's ``SPF`` and ``dkim`` verdicts (and the envelope
    sender SPF judged) as leading headers, so the classifier can hold back requests whose
    From failed authentication and apply those it vouches for. Any such header, or any
    Authentication-Results, the sender wrote into the message is removed first: SendGrid
    is the boundary, and a verdict from beyond it is the sender's say-so."""
    from newsletter.audience.inbound.authentication import (
        INBOUND_DKIM_HEADER,
        INBOUND_ENVELOPE_HEADER,
        INBOUND_SPF_HEADER,
        strip_untrusted,
    )

    raw = strip_untrusted(raw)
    newline = b"\r\n" if b"\r\n" in raw[:4096] else b"\n"
    head = b""
    for header, name in ((INBOUND_SPF_HEADER, "SPF"), (INBOUND_DKIM_HEADER, "dkim")):
        text = _field_text(form, name)
        if text:
            head += f"{header}: {text}".encode("ascii") + newline
    envelope = _envelope_from(form)
    if envelope:
        head += f"{INBOUND_ENVELOPE_HEADER}: {envelope}".encode("ascii") + newline
    return head + raw


def _envelope_from(form: Mapping[str, str | bytes]) -> str:
    """The envelope sender of Inbound Parse's ``envelope`` JSON, if a clean address."""
    import json

    from newsletter.audience.inbound.safety import clean_address

    field = form.get("envelope") or "{}"
    try:
        value = json.loads(field[:10_000])
    except ValueError:
        return ""
    sender = value.get("from") if isinstance(value, dict) else None
    clean = clean_address(sender) if isinstance(sender, str) and sender else None
    return clean if clean and clean.isascii() else ""


def _raw_from_inbound_parse(form: Mapping[str, str | bytes]) -> bytes:
    from newsletter.audience.inbound.inbound_parse import raw_from_inbound_parse

    return with_inbound_auth(form, raw_from_inbound_parse(form))


@dataclass(frozen=True, slots=True)
class Pipeline:
    request_confirmation: RequestConfirmation = _request_confirmation
    confirm_token: ConfirmToken = _confirm_token
    process_raw_message: ProcessRawMessage = _process_raw_message
    raw_from_inbound_parse: RawFromInboundParse = _raw_from_inbound_parse
