"""Consent at scale against the real `newsletter serve`: no unsubscribe refused, lost or slow.

    .venv/bin/python bench/bench_consent.py [--rows 1000,100000,1000000] [--readers 50]
                                            [--replays 1000] [--pages 200]

For each list size: generate the CSV, start `newsletter serve` (this checkout) on
127.0.0.1, then fire ``readers`` one-click unsubscribes (RFC 8058 POSTs) together with
``replays`` replays of one reader's link, twice, for two disjoint sets of readers:

* ``process``: from 50 kept-alive connections of a cheap asyncio client in its own
  process (bench/burst_client.py). A real burst comes from other machines, so this is
  the figure the target is measured by: the server's own latency.
* ``threads``: from 50 httpx client threads inside this bench process (the figure of
  earlier runs): the client's own Python competes with the server for the 2 cores, and
  its threads for this process's interpreter lock, so it charges the client to the server.

A warm-up round (1,000 rows, printed, not counted; ``--no-warmup`` skips it) comes
first. Prints, as ratios against the targets of issue 10: refused and failed counts of the
legitimate requests, p50/p99 latency vs 100 ms, seconds from the end of the burst until
every unsubscribe is in the CSV vs 15 s, whether every other row is byte-identical, and
the unsubscribe and confirm pages' p99 vs 50 ms. Nothing leaves 127.0.0.1.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from newsletter.tokens import CONFIRM_TTL, UNSUBSCRIBE_TTL, make_token  # noqa: E402
from tests.support.consent import (  # noqa: E402
    FORM,
    ONE_CLICK,
    Burst,
    address,
    fire,
    serve_process,
    unsubscribe_url,
    write_list,
)

SECRET = "bench-consent-secret-key-0123456789abcdef"
P99_TARGET = 0.100
IN_CSV_TARGET = 15.0
PAGE_TARGET = 0.050


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def other_rows_digest(path: Path, skip: set[bytes]) -> str:
    """A digest of every row not in ``skip`` (by address), streamed."""
    digest = hashlib.blake2b()
    with path.open("rb") as fh:
        for line in fh:
            if line.partition(b",")[0] not in skip:
                digest.update(line)
    return digest.hexdigest()


def statuses_of(path: Path, emails: set[str]) -> dict[str, str]:
    wanted = {e.encode() for e in emails}
    found = {}
    with path.open("rb") as fh:
        for line in fh:
            email = line.partition(b",")[0]
            if email in wanted:
                found[email.decode()] = line.split(b",")[2].decode()
    return found


def folded_up_to(state_dir: Path) -> tuple[int, int]:
    """(last ledger seq, folded seq), read-only."""
    uri = (state_dir / "ledger.sqlite3").resolve().as_uri() + "?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        last = db.execute("SELECT MAX(seq) FROM changes").fetchone()[0] or 0
        row = db.execute("SELECT value FROM meta WHERE name = 'folded_seq'").fetchone()
        return int(last), int(row[0]) if row else 0
    finally:
        db.close()


def process_pages(base: str, paths: list[str], concurrency: int = 10) -> tuple[list[float], int]:
    """GET each path from bench/burst_client.py (its own process, ``concurrency`` kept-alive
    connections), each reader from their own address: latencies, and answers not 200."""
    requests = [
        {"path": path, "headers": {"x-forwarded-for": f"10.{100 + n // 250}.{n % 250}.7"}}
        for n, path in enumerate(paths)
    ]
    result = run_client(base, requests, concurrency)
    latencies = [seconds for _index, code, seconds in result["timed"] if code]
    bad = sum(1 for _index, code, _seconds in result["timed"] if code != 200)
    return latencies, bad + len(result["errors"])


def page_latencies(base: str, paths: list[str], workers: int = 10) -> tuple[list[float], int]:
    """GET each path from ``workers`` threads, each with one kept-alive client; only the
    requests are timed (making a client costs more than a page)."""
    latencies: list[float] = []
    bad = 0
    lock = threading.Lock()
    chunks = [paths[i::workers] for i in range(workers)]

    def worker(chunk: list[str]) -> None:
        nonlocal bad
        with httpx.Client(base_url=base, timeout=60) as client:
            client.get("/static/web.css")  # connect first
            for n, path in enumerate(chunk):
                reader = {"x-forwarded-for": f"10.{100 + n // 250}.{n % 250}.{len(chunk)}"}
                started = time.perf_counter()
                code = client.get(path, headers=reader).status_code
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    bad += code != 200

    with ThreadPoolExecutor(workers) as pool:
        list(pool.map(worker, chunks))
    return latencies, bad


def wait_folded(state_dir: Path) -> None:
    last, folded = folded_up_to(state_dir)
    while folded < last:
        time.sleep(0.05)
        last, folded = folded_up_to(state_dir)


def run_client(base: str, requests: list[dict[str, Any]], concurrency: int) -> dict[str, Any]:
    """Run bench/burst_client.py in a process of its own; its JSON results."""
    host, port = base.removeprefix("http://").split(":")
    spec = {"host": host, "port": int(port), "concurrency": concurrency, "requests": requests}
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
        json.dump(spec, fh)
    try:
        out = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "burst_client.py"), fh.name],
            check=True,
            capture_output=True,
        ).stdout
    finally:
        os.unlink(fh.name)
    result: dict[str, Any] = json.loads(out)
    return result


def process_burst(base: str, mix: list[str], ips: dict[str, str]) -> Burst:
    """The burst from bench/burst_client.py in a process of its own."""
    requests = [
        {
            "path": unsubscribe_url(SECRET, email),
            "headers": {**FORM, "x-forwarded-for": ips[email]},
            "body": ONE_CLICK.decode(),
        }
        for email in mix
    ]
    result = run_client(base, requests, 50)
    burst = Burst()
    for index, code, seconds in result["timed"]:
        email = mix[index]
        burst.codes.setdefault(email, []).append(code)
        if code:
            burst.latencies.append(seconds)
            burst.timed.append((email, seconds))
    burst.errors = [f"{mix[i]}: {text}" for i, text in result["errors"]]
    burst.client_cpu = result["cpu"]
    return burst


def run_burst(
    base: str, home: Path, client: str, targets: list[str], replayed: str, replays: int, seed: int
) -> dict[str, float | int | str]:
    mix = targets + [replayed] * replays
    random.Random(seed).shuffle(mix)
    # each reader from their own address, behind a trusted proxy (as behind Caddy)
    ips = {e: f"10.{i // 250}.{i % 250}.{1 + seed % 200}" for i, e in enumerate(targets)}
    ips[replayed] = f"10.99.{seed % 200}.1"
    started = time.perf_counter()
    if client == "process":
        burst = process_burst(base, mix, ips)
    else:
        burst = fire(base, SECRET, mix, workers=50, client_ip=ips)
    ended = time.perf_counter()
    wait_folded(home / ".newsletter")
    in_csv = time.perf_counter() - ended
    own = set(targets)
    return {
        "client": client,
        "burst_s": ended - started,
        "requests": len(mix),
        "refused": burst.refused(targets),
        "replays_refused": burst.refused([replayed]),
        "failed": len(burst.errors),
        "p50": percentile(burst.latencies, 0.50),
        "p99": percentile(burst.latencies, 0.99),
        "legit_p99": percentile([t for e, t in burst.timed if e in own], 0.99),
        "in_csv_s": in_csv,
        "client_cpu": burst.client_cpu,
    }


def run(rows: int, readers: int, replays: int, pages: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-consent-") as tmp:
        home = Path(tmp)
        csv_path = home / "subscribers" / "subscribers.csv"
        write_list(csv_path, rows)
        # two disjoint sets of readers spread over the list, one per client
        step = max(1, rows // (2 * readers))
        spread = [address(i) for i in range(0, rows, step)][: 2 * readers]
        sets = {"process": spread[0::2], "threads": spread[1::2]}
        replayed = {
            "process": address(min(rows - 1, step // 2 + 1)),
            "threads": address(min(rows - 1, step // 2 + 3)),
        }
        wanted = set(spread) | set(replayed.values())
        before = other_rows_digest(csv_path, {e.encode() for e in wanted})
        env = {
            "NEWSLETTER_SECRET_KEY": SECRET,
            "NEWSLETTER_PUBLIC_URL": "https://digest.example.org",
            "NEWSLETTER_TRUSTED_PROXIES": "127.0.0.1",  # the bench plays the proxy
        }
        started = time.perf_counter()
        with serve_process(home, env, timeout=1800) as (_proc, base):
            startup = time.perf_counter() - started
            # the process client first: the server is as fresh for it as for earlier runs
            bursts = [
                run_burst(base, home, client, sets[client], replayed[client], replays, rows + n)
                for n, client in enumerate(("process", "threads"))
            ]
            # the pages, on the full-size list (the burst's readers excluded)
            sample = [address(random.Random(i).randrange(rows)) for i in range(pages)]
            now = time.time()
            unsub_paths = [
                "/u/" + make_token(SECRET, "unsubscribe", e, ttl=UNSUBSCRIBE_TTL, now=now)
                for e in sample
            ]
            confirm_paths = [
                "/confirm/" + make_token(SECRET, "confirm", e, ttl=CONFIRM_TTL, now=now)
                for e in sample
            ]
            # each client measures the pages too, as it does the burst
            pages_by = {
                "process": (process_pages(base, unsub_paths), process_pages(base, confirm_paths)),
                "threads": (page_latencies(base, unsub_paths), page_latencies(base, confirm_paths)),
            }
        found = statuses_of(csv_path, wanted)
        after = other_rows_digest(csv_path, {e.encode() for e in wanted})
        return {
            "rows": rows,
            "startup_s": startup,
            "bursts": bursts,
            "lost": sum(1 for e in wanted if found.get(e) != "unsubscribed"),
            "identical": "yes" if after == before else "NO",
            "pages": {
                client: (percentile(unsub[0], 0.99), percentile(confirm[0], 0.99))
                for client, (unsub, confirm) in pages_by.items()
            },
            "page_errors": sum(u[1] + c[1] for u, c in pages_by.values()),
            "load": os.getloadavg()[0],
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", default="1000,100000,1000000")
    parser.add_argument("--readers", type=int, default=50)
    parser.add_argument("--replays", type=int, default=1000)
    parser.add_argument("--pages", type=int, default=200)
    parser.add_argument(
        "--no-warmup",
        action="store_true",
        help="skip the warm-up round (1,000 rows, printed, not counted)",
    )
    args = parser.parse_args()
    print(
        f"{args.readers} concurrent one-click unsubscribes + {args.replays} replays of one "
        "reader's link, against `newsletter serve` on 127.0.0.1, once per client"
    )
    header = (
        f"{'rows':>9} {'client':>7} {'start s':>7} {'refused':>7} {'failed':>6} {'lost':>4} "
        f"{'p50 ms':>7} {'p99 ms':>7} {'p99/100ms':>9} {'50 p99/100ms':>12} "
        f"{'in CSV s':>8} {'/15 s':>6} "
        f"{'others same':>11} {'unsub p99/50ms':>14} {'confirm p99/50ms':>16} {'load':>5}"
    )
    print(header)
    sizes = [int(r) for r in args.rows.split(",")]
    # The first round of a run was slower whatever its size (1,000 rows: p99 1.21 first,
    # 0.88 right after, same load); its cause is not pinned down. The warm-up round takes
    # that and is printed, not counted; each size still starts its own fresh server, so a
    # server's own cold start is still counted.
    rounds = ([("warm-up", 1000)] if not args.no_warmup else []) + [("", n) for n in sizes]
    for label, rows in rounds:
        r = run(rows, args.readers, args.replays, 20 if label else args.pages)
        if label:
            b = r["bursts"][0]
            print(
                f"  warm-up (not counted): 1,000 rows, process p99 {float(b['p99']) * 1000:.1f} ms,"
                f" refused {b['refused']}, failed {b['failed']}, lost {r['lost']}",
                flush=True,
            )
            continue
        for b in r["bursts"]:
            unsub_p99, confirm_p99 = r["pages"][b["client"]]
            print(
                f"{r['rows']:>9,} {b['client']:>7} {r['startup_s']:>7.1f} {b['refused']:>7} "
                f"{b['failed']:>6} {r['lost']:>4} {float(b['p50']) * 1000:>7.1f} "
                f"{float(b['p99']) * 1000:>7.1f} {float(b['p99']) / P99_TARGET:>9.2f} "
                f"{float(b['legit_p99']) / P99_TARGET:>12.2f} {b['in_csv_s']:>8.1f} "
                f"{float(b['in_csv_s']) / IN_CSV_TARGET:>6.2f} {r['identical']:>11} "
                f"{unsub_p99 / PAGE_TARGET:>14.2f} "
                f"{confirm_p99 / PAGE_TARGET:>16.2f} {r['load']:>5.1f}",
                flush=True,
            )
        for b in r["bursts"]:
            cpu = float(b["client_cpu"])
            spent = f"; the client's own CPU {cpu:.2f} s" if cpu == cpu else ""
            print(
                f"  {b['client']}: {b['requests']} requests in {float(b['burst_s']):.2f} s; "
                f"the replayed link: {b['replays_refused']} of {args.replays + 1} not answered "
                f"200{spent}"
            )
        if r["page_errors"]:
            print(f"  {r['page_errors']} page request(s) did not answer 200")
    print(
        "ratios: below 1.00 meets the target (p99 <= 100 ms, in CSV <= 15 s, pages <= 50 ms);"
        " p50/p99 over all requests, '50 p99' over the 50 readers' own unsubscribes;"
        " the target is measured by the 'process' client (its own process, as a real"
        " burst comes from other machines); 'threads' shares the bench's process and cores;"
        " each client also loads the pages (10 at a time) for its row's page figures;"
        " load: the 1-minute load average after the size's run"
    )


if __name__ == "__main__":
    main()
