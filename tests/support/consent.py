"""Helpers for the consent tests and bench/bench_consent.py: a big generated list, one-click
unsubscribes fired concurrently, a spreadsheet that saves the way spreadsheets do, and a
real `newsletter serve` process."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from newsletter.tokens import UNSUBSCRIBE_TTL, make_token

ROOT = Path(__file__).resolve().parents[2]
HEADER = "email,name,status,source,subscribed_at,confirmed_at,updated_at,note,crm_id\n"
ONE_CLICK = b"List-Unsubscribe=One-Click"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def address(i: int) -> str:
    return f"reader{i}@example{i % 50}.org"


def write_list(path: Path, rows: int) -> None:
    """``rows`` active readers, ``reader<i>@example<i % 50>.org``; streamed to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as fh:
        fh.write(HEADER)
        for i in range(rows):
            fh.write(
                f"{address(i)},Reader {i},active,import,2024-01-01T00:00:00Z,"
                f"2024-01-01T00:05:00Z,2024-01-02T00:00:00Z,,C{i}\n"
            )


def unsubscribe_url(secret: str, email: str) -> str:
    return "/u/" + make_token(secret, "unsubscribe", email, ttl=UNSUBSCRIBE_TTL)


@dataclass
class Burst:
    """What a burst of one-click POSTs got: per address the status code, and latencies."""

    codes: dict[str, list[int]] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    timed: list[tuple[str, float]] = field(default_factory=list)  # (address, seconds)
    errors: list[str] = field(default_factory=list)
    client_cpu: float = float("nan")  # the client's own CPU seconds, when it reports them
    lock: threading.Lock = field(default_factory=threading.Lock)

    def acknowledged(self) -> set[str]:
        return {email for email, codes in self.codes.items() if 200 in codes}

    def refused(self, emails: Sequence[str]) -> int:
        return sum(1 for e in emails for c in self.codes.get(e, []) if c != 200)


def fire(
    base_url: str,
    secret: str,
    emails: Sequence[str],
    *,
    workers: int = 50,
    stop: threading.Event | None = None,
    client_ip: dict[str, str] | None = None,
) -> Burst:
    """POST RFC 8058 one-clicks for ``emails`` (repeats allowed) from ``workers`` threads.

    ``client_ip`` maps an address to the reader's own IP, sent as ``X-Forwarded-For``
    (a server that trusts 127.0.0.1 as its proxy counts each reader apart, as behind Caddy).
    """
    burst = Burst()
    local = threading.local()
    clients: list[httpx.Client] = []

    def one(email: str) -> None:
        if stop is not None and stop.is_set():
            return
        client: httpx.Client | None = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(base_url=base_url, timeout=60)
            with burst.lock:
                clients.append(client)
        started = time.perf_counter()
        try:
            headers = dict(FORM)
            if client_ip is not None and email in client_ip:
                headers["x-forwarded-for"] = client_ip[email]
            response = client.post(
                unsubscribe_url(secret, email), content=ONE_CLICK, headers=headers
            )
            code = response.status_code
        except httpx.HTTPError as exc:
            with burst.lock:
                burst.errors.append(f"{email}: {exc!r}")
                burst.codes.setdefault(email, []).append(0)
            return
        elapsed = time.perf_counter() - started
        with burst.lock:
            burst.codes.setdefault(email, []).append(code)
            burst.latencies.append(elapsed)
            burst.timed.append((email, elapsed))

    try:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, emails))
    finally:
        for client in clients:
            client.close()
    return burst


def spreadsheet_save(path: Path, *, think: float, edit: tuple[str, str]) -> None:
    """What a spreadsheet does: read the file, wait (the admin works), write a temp file
    and rename it over the original. No lock, no re-read."""
    opened = path.read_bytes()
    time.sleep(think)
    saved = opened.replace(edit[0].encode(), edit[1].encode(), 1)
    tmp = path.with_name(path.name + ".~spreadsheet")
    tmp.write_bytes(saved)
    os.replace(tmp, path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve_process(
    home: Path, env: dict[str, str], *, timeout: float = 600
) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """The real `newsletter serve` (this checkout) in ``home``; yields (process, base URL)."""
    port = free_port()
    full_env = {**os.environ, **env, "PYTHONPATH": str(ROOT)}
    log = (home / "serve.log").open("wb")
    proc = subprocess.Popen(
        [sys.executable, "-m", "newsletter", "serve", "--port", str(port)],
        cwd=home,
        env=full_env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"serve exited: {(home / 'serve.log').read_text()[-2000:]}")
            try:
                if httpx.get(base + "/static/web.css", timeout=5).status_code < 500:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("serve did not start")
            time.sleep(0.1)
        yield proc, base
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        log.close()
