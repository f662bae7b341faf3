"""A request whose From the receiving side says is forged is held for a human."""

from __future__ import annotations

import pytest

from tests.support.inboundkit import classify
from tests.support.inboundkit import mail as _mail


@pytest.mark.parametrize(
    ("extra", "held"),
    [
        ("Authentication-Results: mx.example.org; dmarc=fail (p=none) header.from=x\n", True),
        ("Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=x; dkim=fail\n", True),
        ("Authentication-Results: mx.example.org; spf=fail smtp.mailfrom=x; dkim=pass\n", False),
        ("Authentication-Results: mx.example.org; spf=pass; dkim=pass; dmarc=pass\n", False),
        ("X-Inbound-Parse-SPF: fail\nX-Inbound-Parse-DKIM: {@example.com : fail}\n", True),
        ("X-Inbound-Parse-SPF: fail\nX-Inbound-Parse-DKIM: {@example.com : pass}\n", False),
        ("X-Inbound-Parse-SPF: pass\nX-Inbound-Parse-DKIM: none\n", False),
    ],
)
@pytest.mark.parametrize("body", ["please add me", "unsubscribe"])
def test_requests_whose_sender_failed_authentication_are_for_a_human(
    extra: str, held: bool, body: str
) -> None:
    got = classify(_mail(body, extra=extra))
    if held:
        assert got.kind == "review" and "authentication failed" in got.reason
    else:
        assert got.kind in ("subscribe", "unsubscribe"), got.reason
