"""Reports: what each issue did, from one deduplicated table of events.

* :mod:`.eventstore` -- the event table (``state_dir/events.sqlite3``): one row per
  issue, reader and kind of event (sent, delivered, bounce_hard, bounce_soft,
  complaint, unsubscribe, open, click, ...), a running tally per issue and kind so a
  report never scans the events, a reader's history, and purging a reader.
* :mod:`.collect` -- feeding it from what already records events: the send journal,
  the SendGrid Event Webhook ledger, the inbound mail records (DSNs, complaints,
  unsubscribes by mail) and the subscriber list (web and one-click unsubscribes). Each
  source is read again only when it changed; events that name no issue are tied to the
  last issue sent to that reader before them.
* :mod:`.summary` -- the numbers per issue, with rates and the thresholds mailbox
  providers and senders use (complaints < 0.3 %, temporary failures <= 5 %,
  permanent failures <= 1 %), as text and JSON.
* :mod:`.charts` / :mod:`.page` -- the HTML report: server-side SVG charts (pygal), no
  script, no request to anywhere.

May import the base, :mod:`newsletter.compose`, :mod:`newsletter.delivery` and
:mod:`newsletter.audience`; :mod:`newsletter.web` and :mod:`newsletter.cli` import it.
"""
