"""Whether the receiving side says the From of an inbound message is forged.

Reads the verdicts others wrote down: ``Authentication-Results`` headers and the SPF
and DKIM results SendGrid Inbound Parse posts (carried into the rebuilt message as
:data:`INBOUND_SPF_HEADER` and :data:`INBOUND_DKIM_HEADER`). Nothing is verified here.
"""

from __future__ import annotations

import re
from email.message import Message

__all__ = ["INBOUND_DKIM_HEADER", "INBOUND_SPF_HEADER", "auth_failure"]

#: SendGrid Inbound Parse's ``SPF`` and ``dkim`` fields, carried into the rebuilt
#: message by the web server (newsletter/web/pipeline.py)
INBOUND_SPF_HEADER = "X-Inbound-Parse-SPF"
INBOUND_DKIM_HEADER = "X-Inbound-Parse-DKIM"
_AUTH_RESULT = re.compile(r"\b(spf|dkim|dmarc)\s*=\s*([a-z]+)", re.IGNORECASE)


def _all_raw(msg: Message, name: str) -> list[str]:
    lname = name.lower()
    return [" ".join(str(v).split()) for k, v in msg.raw_items() if k.lower() == lname]


def auth_failure(msg: Message) -> str | None:
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
