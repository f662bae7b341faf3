"""Benchmark `newsletter report` over 100 issues x 100,000 readers' events.

    .venv/bin/python bench/bench_report.py [--issues 100] [--readers 100000] [--keep DIR]

Builds an event store the size of a long-running list in a temporary home (each issue:
every reader sent and delivered, a third opened, 0.5 % hard and 2 % soft bounces, a
few complaints and unsubscribes; ~23 million rows, ~3.5 GB, several minutes; --keep
reuses a store built before), then times what a user waits for:

* ``report`` (the last issues side by side) and ``report ISSUE --json``, in-process
  and as a fresh ``newsletter`` process;
* the same numbers counted straight from the events (what the tally table saves);
* one reader's history (``subscribers show``).

Prints seconds and the ratio to the one-second budget.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from newsletter.reports.eventstore import EVENTS_NAME, Event, EventStore

BUDGET = 1.0


def events(issue: str, sent_at: str, readers: int, n: int) -> Iterator[Event]:
    for i in range(readers):
        reader = f"reader{i:06d}@example.net"
        yield Event(issue, reader, "sent", sent_at, "journal")
        if i % 200 == n % 200:
            yield Event(issue, reader, "bounce_hard", sent_at, "sendgrid", "550 5.1.1")
            continue
        if i % 50 == (n + 7) % 50:
            yield Event(issue, reader, "bounce_soft", sent_at, "sendgrid", "blocked")
        yield Event(issue, reader, "delivered", sent_at, "sendgrid")
        if i % 3 == n % 3:
            yield Event(issue, reader, "open", sent_at, "sendgrid")
        if i % 2000 == n % 2000:
            yield Event(issue, reader, "complaint", sent_at, "sendgrid")
        if i % 700 == n % 700:
            yield Event(issue, reader, "unsubscribe", sent_at, "list")


def build(home: Path, issues: int, readers: int) -> None:
    state = home / ".newsletter"
    state.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    with EventStore(state / EVENTS_NAME) as store:
        # a bulk load: the reader index is built once at the end, not row by row
        store.db.execute("DROP INDEX IF EXISTS events_by_reader")
        store.db.execute("PRAGMA synchronous=OFF")
        for n in range(issues):
            day = 1 + 14 * n
            sent_at = time.strftime("%Y-%m-%dT09:00:00Z", time.gmtime(1.7e9 + day * 86400))
            issue = f"vol-{n // 26 + 1}.{n % 26 + 1:02d}"
            store.note_issue(issue, sent_at, readers)
            store.add(events(issue, sent_at, readers, n))
            print(f"  built {issue} ({n + 1}/{issues}) {time.perf_counter() - start:6.0f}s",
                  end="\r", flush=True)  # fmt: skip
        store.db.execute("CREATE INDEX IF NOT EXISTS events_by_reader ON events (reader, kind, at)")
        rows = store.db.execute("SELECT sum(readers) FROM tally").fetchone()[0]
    size = (state / EVENTS_NAME).stat().st_size / 1e9
    print(f"\nbuilt {rows:,} events in {time.perf_counter() - start:.0f}s ({size:.1f} GB)")


def timed(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def line(label: str, seconds: float) -> None:
    print(f"{label:<46} {seconds:8.3f}s  {seconds / BUDGET:6.3f} of the 1 s budget")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--issues", type=int, default=100)
    parser.add_argument("--readers", type=int, default=100_000)
    parser.add_argument("--keep", type=Path, help="build (or reuse) the home here")
    args = parser.parse_args()
    home = args.keep or Path(tempfile.mkdtemp(prefix="bench-report-"))
    if not (home / ".newsletter" / EVENTS_NAME).exists():
        build(home, args.issues, args.readers)
    os.environ["NEWSLETTER_HOME"] = str(home)
    from newsletter.cli.report import issue_lines, load_reports, overview_lines

    load_reports()  # the first run reads every source once; the user's next ones do not
    overview = timed(lambda: overview_lines(load_reports()[-10:]))
    middle = load_reports()[len(load_reports()) // 2].issue
    single = timed(lambda: issue_lines(next(r for r in load_reports() if r.issue == middle)))
    with EventStore(home / ".newsletter" / EVENTS_NAME) as store:
        naive = timed(
            lambda: store.db.execute(
                "SELECT issue, kind, count(*) FROM events GROUP BY issue, kind"
            ).fetchall(),
            repeat=1,
        )
        history = timed(lambda: store.history("reader050000@example.net"))
    env = {**os.environ, "NEWSLETTER_HOME": str(home)}
    cli = [sys.executable, "-m", "newsletter"]

    def run(*args: str) -> None:
        subprocess.run([*cli, *args], env=env, check=True, capture_output=True)

    process = timed(lambda: run("report"), repeat=3)
    process_one = timed(lambda: run("report", middle, "--json"), repeat=3)
    startup = timed(lambda: run("--help"), repeat=3)
    print(f"home: {home}")
    line("report (last 10 of all issues, in-process)", overview)
    line(f"report {middle} (in-process)", single)
    line("`newsletter report` (new process)", process)
    line(f"`newsletter report {middle} --json` (new process)", process_one)
    line("`newsletter --help` (start-up alone)", startup)
    line("subscribers show: one reader's history", history)
    line("the same counts straight from the events", naive)
    print(f"the tally table answers {naive / overview:,.0f}x faster than counting the events")


if __name__ == "__main__":
    main()
