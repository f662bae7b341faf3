"""The act stage for reports about mail we sent: bounces, delays and complaints.

Attribution, in this order (a forged report can do none of them):

1. the VERP address the report came back to (``bounce+<token>@domain``, signed with
   our secret; :func:`newsletter.tokens.read_bounce_address`): it names the reader by
   the id of their address, looked up among the addresses the report names, then in
   the list;
2. a Message-ID the report quotes that we signed for one of the addresses it names
   (:func:`newsletter.tokens.verify_message_id`), when it names at most
   :data:`MAX_REPORT_ADDRESSES`;
3. nothing: the report goes to review, with the addresses found, in the queue's own
   group of reports.

Then: a permanent failure marks the reader ``bounced``, a complaint ``complained``; a
temporary failure counts towards the reader's soft-bounce score
(:mod:`newsletter.audience.bounce_score`), and the limit reached marks them ``bounced``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from newsletter.audience.actions import Act, suppress
from newsletter.audience.bounce_score import BounceScore
from newsletter.audience.subscribers import SubscriberStore
from newsletter.tokens import subscriber_id, verify_message_id

if TYPE_CHECKING:
    from newsletter.audience.inbound.classify import Classification
    from newsletter.audience.inbound.records import Records
    from newsletter.config import Settings

__all__ = ["MAX_REPORT_ADDRESSES", "act_on_report", "attribute"]

#: a report naming more addresses than this is attributed by its VERP address only: one
#: message of ours goes to one reader, so a quoted Message-ID cannot speak for a crowd
MAX_REPORT_ADDRESSES = 5


def attribute(
    c: Classification, settings: Settings, store: SubscriberStore
) -> tuple[list[str], str, str]:
    """(readers, issue key, how) a report is attributed to; no readers when unattributed."""
    secret = settings.secret_key.get_secret_value() if settings.secret_key else ""
    if c.verp is not None:
        sid, tag = c.verp
        found = [a for a in c.addresses if subscriber_id(a) == sid]
        if not found:
            found = [s.email for s in store.iter_valid() if subscriber_id(s.email) == sid][:1]
        if found:
            return found[:1], f"verp:{tag}", "returned to its VERP address"
    if secret and c.quoted_ids and len(c.addresses) <= MAX_REPORT_ADDRESSES:
        for mid in c.quoted_ids:
            named = [a for a in c.addresses if verify_message_id(secret, mid, a)]
            if named:
                return named, f"mid:{mid}", f"quotes {mid}, which we sent to it"
    return [], "", ""


def act_on_report(
    c: Classification,
    settings: Settings,
    *,
    store: SubscriberStore,
    records: Records,
    now: float | None,
) -> Act:
    """Attribute a bounce, delay or complaint and act on it, or queue it for review."""
    readers, issue, how = attribute(c, settings, store)
    found = ", ".join(c.addresses[:MAX_REPORT_ADDRESSES]) or "no address"
    if len(c.addresses) > MAX_REPORT_ADDRESSES:
        found = f"{len(c.addresses)} recipients: {found}, ..."
    if not readers:
        return Act(
            "review",
            f"{c.kind} report ({found}) neither came back to a VERP address of ours nor "
            "quotes a message we sent to an address it names: a human decides",
            True,
            [(a, "unmatched") for a in c.addresses],
        )
    if c.kind == "complaint":
        results = suppress(store, readers, "complained", f"complained: {c.reason}"[:300])
        parts = [f"{a}: {r}" for a, r in results]
        return Act("complained", f"{'; '.join(parts)} (the report {how})", False, results)
    if c.kind == "bounce":
        results = suppress(store, readers, "bounced", f"bounced: {c.reason}"[:300])
        parts = [f"{a}: {r}" for a, r in results]
        return Act("bounced", f"{'; '.join(parts)} (the report {how})", False, results)
    # a delay: one more issue in the reader's soft-bounce score
    limit, days = settings.soft_bounce_limit, settings.soft_bounce_days
    score = BounceScore(records.db)
    out: list[tuple[str, str]] = []
    parts = []
    over: list[str] = []
    for reader in readers:
        count = score.note_soft_bounce(reader, issue, days=days, now=now)
        if count >= limit:
            over.append(reader)
        else:
            out.append((reader, f"soft bounce {count} of {limit}"))
            parts.append(f"{reader}: temporary failure, {count} of {limit} issues in {days} days")
    if over:
        note = f"bounced: temporary failures on {limit} issues within {days} days"
        results = suppress(store, over, "bounced", note)
        out += results
        parts += [f"{a}: {r} ({limit} soft bounces within {days} days)" for a, r in results]
    return Act(
        "bounced" if over else "soft bounce", f"{'; '.join(parts)} (the report {how})", False, out
    )
