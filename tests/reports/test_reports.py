"""The event table, the journal feed, the numbers and the HTML page, without servers."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from newsletter.delivery.journal import Journal
from newsletter.delivery.transports.base import Outcome, Status
from newsletter.reports.collect import collect_journal, iso
from newsletter.reports.eventstore import Event, EventStore
from newsletter.reports.page import render_page
from newsletter.reports.summary import build_report, build_reports, percent


@pytest.fixture
def store(tmp_path: Path) -> EventStore:
    with EventStore(tmp_path / "events.sqlite3") as events:
        yield events  # type: ignore[misc]


def ev(issue: str, reader: str, kind: str, at: str = "2026-01-05T10:00:00Z") -> Event:
    return Event(issue, reader, kind, at, "test")


def test_each_reader_counts_once_per_kind_and_purge_takes_them_out(store: EventStore) -> None:
    batch = [ev("vol-1", "a@example.org", "sent"), ev("vol-1", "b@example.org", "sent")]
    assert store.add(batch) == 2
    assert store.add(batch) == 0  # a retried batch changes nothing
    assert store.add([ev("vol-1", "a@example.org", "open"), ev("vol-1", "a@example.org", "open",
                      "2026-01-06T00:00:00Z")]) == 1  # fmt: skip
    assert store.tallies() == {"vol-1": {"sent": 2, "open": 1}}
    assert [e.kind for e in store.history("A@example.org")] == ["open", "sent"]
    assert store.purge("a@example.org") == 2
    assert store.tallies() == {"vol-1": {"sent": 1, "open": 0}}
    assert store.history("a@example.org") == []


def test_events_without_an_issue_belong_to_the_last_one_sent_before(store: EventStore) -> None:
    store.add([
        ev("vol-1", "a@example.org", "sent", "2026-01-05T10:00:00Z"),
        ev("vol-2", "a@example.org", "sent", "2026-01-19T10:00:00Z"),
    ])  # fmt: skip
    assert store.last_sent_before("a@example.org", "2026-01-10T00:00:00Z") == "vol-1"
    assert store.last_sent_before("a@example.org", "2026-01-19T10:00:00Z") == "vol-2"
    assert store.last_sent_before("a@example.org", "2026-01-01T00:00:00Z") is None


def test_journal_feed_reads_each_state_and_only_what_changed(
    store: EventStore, tmp_path: Path
) -> None:
    path = tmp_path / "journal.sqlite3"
    readers = [(f"r{i}@example.net", f"r{i}@example.net", "") for i in range(5)]
    with Journal(path) as journal:
        run = journal.begin_run("vol-1", "smtp")
        journal.sync("vol-1", readers)
        journal.mark_in_flight("vol-1", [r[0] for r in readers], run)
        journal.record("vol-1", [
            Outcome.sent("r0@example.net", "id-0"),
            Outcome.sent("r1@example.net", "id-1"),
            Outcome("r2@example.net", Status.FAILED, reason="550 5.1.1 no such user",
                    permanent=True),
            Outcome("r3@example.net", Status.RETRY, reason="451 4.3.0 try later"),
            Outcome("r4@example.net", Status.UNCERTAIN, reason="timed out"),
        ])  # fmt: skip
        journal.end_run(run, "partial")
    assert collect_journal(store, path) == 5
    assert store.tallies()["vol-1"] == {
        "sent": 2,
        "failed_permanent": 1,
        "failed_temporary": 1,
        "uncertain": 1,
    }
    assert collect_journal(store, path) == 0  # the run did not change: not read again
    report = build_reports(store.tallies(), store.issues())[0]
    assert (report.audience, report.sent, report.permanent, report.temporary) == (5, 2, 1, 1)
    assert (report.delivered, report.delivery_confirmed) == (2, False)
    with Journal(path) as journal:  # a later run sends the one that was refused for now
        run = journal.begin_run("vol-1", "smtp")
        journal.requeue_failed("vol-1")
        journal.mark_in_flight("vol-1", ["r3@example.net"], run)
        journal.record("vol-1", [Outcome.sent("r3@example.net", "id-3")])
        journal.end_run(run, "complete")
    assert collect_journal(store, path) == 1
    assert store.tallies()["vol-1"]["sent"] == 3


@pytest.mark.parametrize(
    ("tally", "warnings"),
    [
        ({"sent": 1000, "complaint": 2}, []),  # 0.2 %
        ({"sent": 1000, "complaint": 3}, ["complaints 0.30 % reach Gmail's limit of 0.30 %"]),
        ({"sent": 950, "failed_temporary": 50}, []),  # exactly 5 %
        ({"sent": 949, "failed_temporary": 51}, ["temporary failures 5.1 % are over 5 %"]),
        ({"sent": 1000, "bounce_hard": 10}, []),  # exactly 1 %
        ({"sent": 1000, "bounce_hard": 11}, ["permanent failures 1.1 % are over 1 %"]),
    ],
)
def test_thresholds(tally: dict[str, int], warnings: list[str]) -> None:
    assert list(build_report("vol-1", tally, "", 1000).warnings) == warnings


def test_percent() -> None:
    assert (percent(0.0123), percent(0.003), percent(0), percent(0.05, 0)) == (
        "1.2 %",
        "0.30 %",
        "0.0 %",
        "5 %",
    )


def test_iso_normalises_every_source_time() -> None:
    assert iso("2026-01-05T10:00:00+00:00") == "2026-01-05T10:00:00Z"
    assert iso("2026-01-05T19:00:00+09:00") == "2026-01-05T10:00:00Z"
    assert iso(1767607200.0) == "2026-01-05T10:00:00Z"
    assert iso(None) == ""


def test_page_is_self_contained_and_shows_counts_only() -> None:
    reports = [
        build_report(f"vol-2.{n}", {"sent": 100 + n, "delivered": 99, "bounce_hard": 2,
                     "open": 40, "complaint": 1}, f"2026-01-{n:02d}T10:00:00Z", 100 + n)
        for n in range(1, 4)
    ] + [build_report("<b>vol</b>", {"sent": 5}, "2026-02-01T10:00:00Z", 5)]  # fmt: skip
    page = render_page(reports)
    assert page.count("<svg") == 3
    assert "&lt;b&gt;vol&lt;/b&gt;" in page and "<b>vol</b>" not in page.split("<svg")[0]
    # nothing to fetch: no script, no src or href, no url() and no @import
    assert "<script" not in page
    assert not re.search(r"\b(?:src|href)\s*=", page)
    assert "url(" not in page and "@import" not in page
    assert "@example" not in page
    assert "permanent failures 2.0 % are over 1 %" in page


def test_drawing_charts_leaves_imports_quiet() -> None:
    # pygal's own import hook made every later failed import warn (an error here)
    import importlib
    import sys

    render_page([build_report("vol-1", {"sent": 3}, "2026-01-01T00:00:00Z", 3)])
    assert not [f for f in sys.meta_path if type(f).__name__ == "PluginImportFixer"]
    with pytest.raises(ImportError):
        importlib.import_module("a_module_that_is_not_installed_anywhere")


def test_report_route_needs_its_token(home: Path) -> None:
    import httpx

    from newsletter.web import create_app
    from tests.support.eventkeys import keypair
    from tests.support.webserver import running, web_settings

    public = keypair()[1]
    with running(create_app(web_settings(public))) as base:
        assert httpx.get(base + "/reports").status_code == 404  # no token set: no page
    settings = web_settings(public, report_token="tok-0123456789")
    with running(create_app(settings)) as base:
        assert httpx.get(base + "/reports").headers["www-authenticate"].startswith("Basic")
        wrong = httpx.get(base + "/reports", auth=("x", "tok-012345678"))
        assert wrong.status_code == 401
        bearer = httpx.get(base + "/reports", headers={"authorization": "Bearer tok-0123456789"})
        assert bearer.status_code == 200
        assert "0 issues" in bearer.text and "<svg" not in bearer.text
        assert bearer.headers["cache-control"] == "no-store"
