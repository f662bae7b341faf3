"""A cheap HTTP/1.1 load client in its own process, for bench/bench_consent.py.

    python bench/burst_client.py SPEC.json > RESULTS.json

A real burst of unsubscribes comes from other machines (mail providers, readers'
browsers, through a proxy): its client must not share the server's process or its
interpreter lock. This one runs ``concurrency`` kept-alive connections from one asyncio
loop, in a process of its own, and writes raw requests (no HTTP library: a request costs
the client a few tens of microseconds). Each connection opens at its first request, so
the first requests include the TCP handshake, as the bench's thread client's do.

SPEC: ``{"host", "port", "concurrency", "requests": [{"path", "headers", "body"}]}``.
RESULTS: ``{"timed": [[index, status, seconds], ...], "errors": [[index, text], ...],
"wall": seconds, "cpu": the client's own CPU seconds}``; status 0 is a failure.
"""

from __future__ import annotations

import asyncio
import json
import resource
import sys
import time
from typing import Any


def encode(host: str, port: int, request: dict[str, Any]) -> bytes:
    body = request.get("body", "").encode()
    lines = [
        f"POST {request['path']} HTTP/1.1" if body else f"GET {request['path']} HTTP/1.1",
        f"Host: {host}:{port}",
        *(f"{name}: {value}" for name, value in request.get("headers", {}).items()),
    ]
    if body:
        lines.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    if length:
        await reader.readexactly(length)
    return status


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    raw = [encode(host, port, r) for r in spec["requests"]]
    timed: list[list[float]] = []
    errors: list[list[Any]] = []
    queue = iter(range(len(raw)))

    async def worker() -> None:
        reader: asyncio.StreamReader | None = None
        writer: asyncio.StreamWriter | None = None
        for index in queue:
            started = time.perf_counter()
            try:
                if writer is None or reader is None:
                    reader, writer = await asyncio.open_connection(host, port)
                writer.write(raw[index])
                status = await read_response(reader)
            except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                errors.append([index, repr(exc)])
                timed.append([index, 0, time.perf_counter() - started])
                if writer is not None:
                    writer.close()
                reader = writer = None
                continue
            timed.append([index, status, time.perf_counter() - started])
        if writer is not None:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(int(spec["concurrency"]))))
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return {"timed": timed, "errors": errors, "wall": wall, "cpu": usage.ru_utime + usage.ru_stime}


def main() -> None:
    with open(sys.argv[1], encoding="utf-8") as fh:
        spec = json.load(fh)
    json.dump(asyncio.run(run(spec)), sys.stdout)


if __name__ == "__main__":
    main()
