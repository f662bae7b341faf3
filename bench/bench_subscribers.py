"""Benchmark the subscriber store on a generated 1,000,000-row CSV.

    .venv/bin/python bench/bench_subscribers.py [--rows N]

Generates the file in a temporary folder, then runs each phase in its own process (so
each peak RSS is that phase's own) and prints rows/s and peak RSS for: ``check`` (every
problem), streaming ``iter_active``, one ``add`` (a full locked, atomic rewrite), and
``index``: a rebuild of the index and the search a stale index makes for an address it
does not know, each as a ratio to plain ``csv.reader`` streaming the same file.
The duplicate check keeps a compact index of every address key (the one structure that
grows with the file); ``keys`` reports what it costs next to a plain dict of strings.
"""

from __future__ import annotations

import argparse
import csv
import random
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from newsletter.audience.subscribers import SubscriberStore
from newsletter.audience.subscribers.rows import SeenKeys

STATUSES = ["active"] * 8 + ["pending", "unsubscribed", "bounced", "complained"]
DOMAINS = [f"example{i}.org" for i in range(50)] + ["example.com", "bücher.example"]


def generate(path: Path, rows: int) -> None:
    rng = random.Random(7)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write("email,name,status,source,subscribed_at,confirmed_at,updated_at,note,crm_id\n")
        for i in range(rows):
            status = rng.choice(STATUSES)
            name = "山田 花子" if i % 97 == 0 else f"Person {i}"
            fh.write(
                f"user{i}@{rng.choice(DOMAINS)},{name},{status},import,"
                f"2024-01-01T00:00:00Z,2024-01-01T00:05:00Z,2024-01-02T00:00:00Z,,C{i}\n"
            )


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def phase(name: str, path: Path, rows: int) -> None:
    store = SubscriberStore(path, lock_timeout=60)
    baseline = peak_rss_mb()
    start = time.perf_counter()
    if name == "check":
        detail = f"{len(store.check())} problems"
    elif name == "stream":
        detail = f"{sum(1 for _ in store.iter_active())} active"
    elif name == "add":
        store.add("new.person@example.org", name="New")
        detail = "1 row appended"
    elif name == "index":
        index_phase(path, rows)
        return
    elif name == "keys":
        # the duplicate check's index {key: first line}, the one structure that grows
        # with the file: the compact table the store uses vs a plain dict of strings
        seen = SeenKeys()
        for i in range(rows):
            seen.first_line(f"user{i}@{DOMAINS[i % len(DOMAINS)]}", i + 2)
        plain = {f"user{i}@{DOMAINS[i % len(DOMAINS)]}": i + 2 for i in range(rows)}
        dict_size = sys.getsizeof(plain) + sum(sys.getsizeof(k) + 28 for k in plain)
        print(
            f"{'dup keys':<8} {seen.nbytes / 2**20:6.0f} MiB for {rows:,} keys "
            f"({seen.nbytes / rows:.0f} B/row; a dict of str would take "
            f"{dict_size / 2**20:.0f} MiB, {dict_size / rows:.0f} B/row)"
        )
        return
    else:
        raise SystemExit(f"unknown phase {name}")
    elapsed = time.perf_counter() - start
    print(
        f"{name:<8} {elapsed:6.2f} s  {rows / elapsed:>10,.0f} rows/s  "
        f"peak RSS {peak_rss_mb():6.0f} MiB (interpreter+imports {baseline:.0f} MiB)  {detail}"
    )


def timed(run: Callable[[], object]) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) of ``run()``: on a shared machine the
    CPU time is the steadier figure (SQLite's work is in this process too)."""
    wall, cpu = time.perf_counter(), time.process_time()
    run()
    return time.perf_counter() - wall, time.process_time() - cpu


def index_phase(path: Path, rows: int) -> None:
    """The index rebuild and an unindexed look-up, against csv.reader reading the file."""

    def read_csv() -> None:
        with path.open(encoding="utf-8", newline="") as fh:
            for _ in csv.reader(fh):
                pass

    plain, plain_cpu = timed(read_csv)
    with tempfile.TemporaryDirectory() as state:
        store = SubscriberStore(path, lock_timeout=60, state_dir=Path(state))
        live = store.live
        assert live is not None
        first = timed(lambda: live.refresh_index(force=True))
        # again, as after a save: beside the generation it replaces (deletions checked)
        again = timed(lambda: live.refresh_index(force=True))
        indexed = live.index.count()
        with path.open("a", encoding="utf-8") as fh:  # a row added by hand...
            fh.write("added.by.hand@example.org,Hand,active,admin,,,,,H\n")
        live.inline_rebuild = False  # ...looked up before the rebuild (as under serve)
        found: list[str] = []
        search = timed(
            lambda: found.append(
                getattr(store.status("added.by.hand@example.org"), "status", "not on the list")
            )
        )
    print(f"{'csv':<8} {plain:6.2f} s  cpu {plain_cpu:5.2f} s  csv.reader over the file (baseline)")
    for name, (wall, cpu) in (("index", first), ("again", again), ("unindexd", search)):
        rate = f"{rows / wall:>10,.0f} rows/s" if name != "unindexd" else "one address"
        print(
            f"{name:<8} {wall:6.2f} s  cpu {cpu:5.2f} s  {wall / plain:5.2f}x csv.reader "
            f"(cpu {cpu / plain_cpu:5.2f}x)  {rate}"
        )
    print(
        f"{'':<8} {indexed:,} addresses indexed, peak RSS {peak_rss_mb():.0f} MiB; a row added "
        f"by hand, looked up before the rebuild: {found[0]}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phase(args.phase, args.file, args.rows)
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "subscribers.csv"
        start = time.perf_counter()
        generate(path, args.rows)
        size = path.stat().st_size / 2**20
        print(
            f"generated {args.rows:,} rows, {size:.0f} MiB in {time.perf_counter() - start:.1f} s"
        )
        for name in ("check", "stream", "index", "add", "keys"):
            subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--phase",
                    name,
                    "--file",
                    str(path),
                    "--rows",
                    str(args.rows),
                ],
                check=True,
            )


if __name__ == "__main__":
    main()
