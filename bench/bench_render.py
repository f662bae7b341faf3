"""Compile benchmark: load + validate + render + inline + plaintext for one issue.

Prints the median of many runs and premailer's share, plus per-recipient message cost.
Run: .venv/bin/python bench/bench_render.py [issues/vol-2.19.yaml] [--runs 50]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from unittest import mock

from newsletter.compose import render
from newsletter.compose.issuefile import load_issue
from newsletter.compose.message import MessageBuilder, Recipient
from newsletter.config import load_settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("issue", nargs="?", default="issues/vol-2.19.yaml")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    settings = load_settings(
        None,
        public_url="https://digest.example.org",
        secret_key="bench-secret-0123456789-aV3kP9wQ2m",
    )
    path = Path(args.issue)

    # warm-up: imports (premailer, cssutils, lxml) are a one-off per process
    t0 = time.perf_counter()
    render.render_issue(load_issue(path), settings)
    cold = time.perf_counter() - t0

    totals: list[float] = []
    loads: list[float] = []
    inlines: list[float] = []
    original_inline = render.inline_css

    def timed_inline(html: str) -> str:
        start = time.perf_counter()
        try:
            return original_inline(html)
        finally:
            inlines.append(time.perf_counter() - start)

    with mock.patch.object(render, "inline_css", timed_inline):
        for _ in range(args.runs):
            start = time.perf_counter()
            issue = load_issue(path)
            loads.append(time.perf_counter() - start)
            rendered = render.render_issue(issue, settings)
            totals.append(time.perf_counter() - start)

    builder = MessageBuilder(rendered, settings)
    n = 5000
    start = time.perf_counter()
    for i in range(n):
        builder.to_bytes(Recipient(f"reader{i}@example.org", "Reader"))
    per_message = (time.perf_counter() - start) / n

    total, load, inline = (statistics.median(x) for x in (totals, loads, inlines))
    print(f"issue: {path}  runs: {args.runs}")
    print(f"first build in a fresh process (imports included): {cold * 1000:7.1f} ms")
    print(f"median load + validate:                            {load * 1000:7.1f} ms")
    print(f"median load + validate + render + inline + text:   {total * 1000:7.1f} ms")
    print(f"  premailer's share:                               {inline / total:7.0%}")
    print(
        f"per-recipient message (personalise + MIME bytes):  {per_message * 1e6:7.0f} µs "
        f"= {1 / per_message:,.0f} messages/s on one core"
    )
    print(
        f"render once vs once per recipient, 1,000 recipients: "
        f"{(total * 1000) / (total + per_message * 1000):.0f}x less work"
    )


if __name__ == "__main__":
    main()
