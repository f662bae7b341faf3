"""One reader replays their own unsubscribe link while others unsubscribe once.

    .venv/bin/python bench/bench_replays.py [--rows 20000] [--replays 600] [--others 20]

A real server (as ``newsletter serve`` configures it) on 127.0.0.1 over a generated
CSV. ``--replays`` RFC 8058 one-click POSTs of one reader's link from 20 threads, and
meanwhile ``--others`` readers' one-click POSTs, once each. Three runs: the others
alone (the baseline: what the list itself costs), with the flood as shipped (a done
unsubscribe answers its replays itself), and with every replay writing to the list (as
before). Prints the others' answers, their latency and the list writes per run; the
ratio is the others' p99 with the flood over their p99 alone.
"""

from __future__ import annotations

import argparse
import logging
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import uvicorn

import newsletter.web.links as links
import newsletter.web.recorder as recorder
from newsletter.config import load_settings
from newsletter.tokens import UNSUBSCRIBE_TTL, make_token
from newsletter.web import create_app
from newsletter.web.server import server_config

SECRET = "bench-replays-secret-0123456789-aV3kP9wQ2m"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def generate(home: Path, rows: int) -> None:
    (home / "subscribers").mkdir(parents=True)
    with (home / "subscribers" / "subscribers.csv").open("w", encoding="utf-8") as fh:
        fh.write("email,name,status,source,subscribed_at,confirmed_at,updated_at,note\n")
        for i in range(rows):
            fh.write(
                f"user{i}@example.org,Person {i},active,import,2024-01-01T00:00:00Z,"
                "2024-01-01T00:05:00Z,2024-01-02T00:00:00Z,\n"
            )


def run(rows: int, replays: int, others: int, *, coalesce: bool) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp)
        generate(home, rows)
        settings = load_settings(
            None, home=home, public_url="https://digest.example.org", secret_key=SECRET
        )
        writes = [0]
        real = recorder.record_unsubscribes

        def counting(store: Any, changes: Any) -> set[str]:
            writes[0] += 1
            return real(store, changes)

        recorder.record_unsubscribes = counting  # type: ignore[assignment]
        original = links.LinkPages._unsubscribe_once
        if not coalesce:

            async def every_time(self: links.LinkPages, email: str, note: str) -> bool:
                from starlette.concurrency import run_in_threadpool

                changes = {email: ("unsubscribed", note)}
                return bool(
                    await run_in_threadpool(recorder.record_unsubscribes, self.store, changes)
                )

            links.LinkPages._unsubscribe_once = every_time  # type: ignore[method-assign]
        try:
            return _drive(settings, replays, others, writes)
        finally:
            recorder.record_unsubscribes = real
            links.LinkPages._unsubscribe_once = original  # type: ignore[method-assign]


def _path(email: str) -> str:
    return "/u/" + make_token(SECRET, "unsubscribe", email, ttl=UNSUBSCRIBE_TTL)


def _drive(settings: Any, replays: int, others: int, writes: list[int]) -> dict[str, Any]:
    """Serve, flood, measure; the server stops before the result is returned."""
    config = server_config(create_app(settings), port=0, log_level="error", access_log=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    replay = _path("user0@example.org")

    client = httpx.Client(base_url=base, timeout=120, limits=httpx.Limits(max_connections=100))

    def post(path: str) -> tuple[int, float]:
        started = time.perf_counter()
        code = client.post(path, content=ONE_CLICK, headers=FORM).status_code
        return code, time.perf_counter() - started

    started = time.perf_counter()
    with ThreadPoolExecutor(20 + others) as pool:
        flood = [pool.submit(post, replay) for _ in range(replays)]
        if replays:
            time.sleep(0.2)  # the flood is under way
        mine = [pool.submit(post, _path(f"user{i}@example.org")) for i in range(1, others + 1)]
        answers = [f.result() for f in mine]
        flood_codes = [f.result()[0] for f in flood]
    elapsed = time.perf_counter() - started
    client.close()
    server.should_exit = True
    thread.join(timeout=10)
    latencies = sorted(t for _, t in answers)
    return {
        "others_ok": sum(1 for code, _ in answers if code == 200),
        "others_refused": sum(1 for code, _ in answers if code != 200),
        "p50": statistics.median(latencies),
        "p99": latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))],
        "replays_ok": flood_codes.count(200),
        "writes": writes[0],
        "elapsed": elapsed,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--replays", type=int, default=600)
    parser.add_argument("--others", type=int, default=5)
    args = parser.parse_args()
    logging.getLogger("newsletter").setLevel(logging.CRITICAL)  # the 503s are counted, not shown
    print(f"{args.rows:,} rows, {args.replays} replays of one link, {args.others} other readers")
    runs = (
        ("others alone (baseline)", 0, True),
        ("flood, as shipped", args.replays, True),
        ("flood, every replay writes", args.replays, False),
    )
    results = []
    for label, replays, coalesce in runs:
        r = run(args.rows, replays, args.others, coalesce=coalesce)
        results.append(r)
        print(
            f"{label:28} others: {r['others_ok']} ok, {r['others_refused']} refused, "
            f"p50 {r['p50'] * 1000:.0f} ms, p99 {r['p99'] * 1000:.0f} ms; "
            f"replays ok {r['replays_ok']}/{replays}; list writes {r['writes']}; "
            f"{r['elapsed']:.1f} s"
        )
    alone, shipped, before = results
    print(
        f"others' p99 over the baseline: {shipped['p99'] / alone['p99']:.1f}x as shipped, "
        f"{before['p99'] / alone['p99']:.1f}x when every replay writes; "
        f"list writes {before['writes'] / max(shipped['writes'], 1):.0f}x fewer"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
