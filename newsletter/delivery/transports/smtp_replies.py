"""What an SMTP reply means for its recipient, in the pipelined engine
(:mod:`.smtp_pipeline`), as in the threaded path (:mod:`.smtp`): an
:class:`~newsletter.delivery.transports.base.Outcome`, or the reason to try again later
(a 4xx). A refused sender, or a run of policy refusals, stops the send
(:attr:`SmtpTransport.fatal`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.delivery.transports.base import Outcome
from newsletter.delivery.transports.smtp_connection import reply_text

if TYPE_CHECKING:
    from newsletter.delivery.transports.smtp import SmtpTransport


def end_of_data(t: SmtpTransport, email: str, code: int, text: bytes) -> Outcome | str:
    """The reply after a message's body: sent, uncertain (unreadable), failed, or (4xx)
    the reason to send it again."""
    if code == 250:
        t._policy_streak = 0
        return Outcome.sent(email, reply_text(code, text))
    if code == -1:  # an unreadable answer to the message itself: it may have been taken
        reason = f"{t.where}: unreadable reply after the message: {reply_text(code, text)}"
        return Outcome.uncertain(email, reason)
    reason = f"end of DATA: {reply_text(code, text)}"
    if 400 <= code < 500:
        return reason
    return Outcome.failed(email, reason, permanent=True)


def refusal(
    t: SmtpTransport, email: str, sender: str, stage: str, code: int, resp: bytes
) -> Outcome | str:
    """A refused MAIL FROM, RCPT TO or DATA: failed (a bounce when RCPT's 5xx is about the
    address), or (4xx, unreadable) the reason to try again later."""
    from newsletter.delivery.transports.smtp import _is_address_refusal

    text = f"{stage}: {reply_text(code, resp)}"
    if not 500 <= code < 600:
        return text
    bounce = False
    if stage == "MAIL FROM":  # every message would fail the same way
        t._stop(f"the server refuses the sender {sender}", code, resp)
    elif stage == "RCPT TO":
        bounce = _is_address_refusal(code, resp)
        if not bounce:
            t._policy_refusal(code, resp)
    return Outcome.failed(email, text, permanent=True, bounce=bounce)
