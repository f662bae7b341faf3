"""The deliverability preflight behind `newsletter doctor` and the send's own check.

Asks DNS what a receiving provider will ask (SPF, DKIM, DMARC, reverse DNS), checks the
mail's own requirements (one-click unsubscribe, `serve` reachable, the secret key) and
the list's health, and says for each finding what is wrong and the exact record or
setting that fixes it. :mod:`.resolver` (dnspython, the day's cache), :mod:`.findings`,
:mod:`.spf`, :mod:`.domainauth` (DKIM, DMARC), :mod:`.requirements`, :mod:`.health`,
:mod:`.preflight` (runs them).

May import: the base, compose, delivery (the DKIM key, the journal) and audience (the
subscriber statuses). Only cli imports it.
"""
