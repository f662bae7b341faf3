"""DKIM signing cost: prints figures as ratios from one run.

1. Per message (vol-2.19, one recipient's bytes): building it, and signing it with our
   signer (Ed25519, RSA-2048) and with dkimpy's ``dkim.sign`` (the reference we verify
   against), in microseconds and as a multiple of the build.
2. SMTP into Postfix's smtp-sink (127.0.0.1, random port) at the same concurrency:
   unsigned vs Ed25519-signed vs RSA-2048-signed messages a second, and the ratio.

Usage: .venv/bin/python bench/bench_dkim.py [--messages 3000] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import dkim  # noqa: E402

from bench.bench_send import free_port, make_home, start_sink  # noqa: E402
from newsletter.compose.message import Recipient  # noqa: E402
from newsletter.delivery.dkim import DkimSigner  # noqa: E402
from newsletter.delivery.dkim_keys import DkimKey, generate_key  # noqa: E402
from newsletter.delivery.transports.smtp import SmtpTransport  # noqa: E402
from tests.support.sendkit import make_builder, make_settings  # noqa: E402


def per_call(fn: Callable[[], object], seconds: float = 1.0) -> float:
    """Microseconds per call, over about ``seconds``."""
    n, t0 = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        fn()
        n += 1
    return elapsed / n * 1e6


def dkimpy_signer(key: DkimKey) -> Callable[[bytes], bytes]:
    """dkimpy's sign with the same key, selector and headers (its own key formats)."""
    import base64

    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ed25519

    if isinstance(key.private, ed25519.Ed25519PrivateKey):
        private = base64.b64encode(key.private.private_bytes_raw())
    else:
        private = key.private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.TraditionalOpenSSL,
            serialization.NoEncryption(),
        )
    algorithm = key.signature_algorithm.encode()

    def sign(message: bytes) -> bytes:
        header = dkim.sign(
            message, b"newsletter", b"example.org", private,
            signature_algorithm=algorithm, canonicalize=(b"relaxed", b"relaxed"),
        )  # fmt: skip
        return bytes(header) + message

    return sign


def bench_cost(keys: dict[str, DkimKey]) -> None:
    home = make_home()
    builder = make_builder(make_settings(home))
    r = Recipient("reader@example.net", "Reader")
    message = builder.to_bytes(r)
    build = per_call(lambda: builder.to_bytes(r))
    print(f"per message ({len(message):,} bytes): build {build:,.0f} us")
    for name, key in keys.items():
        ours = DkimSigner(key, selector="newsletter", domain="example.org")
        theirs = dkimpy_signer(key)
        us = per_call(lambda s=ours: s(message))  # type: ignore[misc]
        ref = per_call(lambda s=theirs: s(message), 2.0)  # type: ignore[misc]
        print(
            f"  sign {name:8} ours {us:7,.0f} us ({us / build:5.1f}x the build)   "
            f"dkimpy {ref:7,.0f} us ({ref / us:4.1f}x ours)"
        )
    shutil.rmtree(home, ignore_errors=True)


def bench_smtp(keys: dict[str, DkimKey], messages: int, concurrency: int) -> None:
    home = make_home()
    builder = make_builder(make_settings(home))
    rcpts = [Recipient(f"r{i}@example.net", f"Reader {i}") for i in range(messages)]
    port = free_port()
    sink = start_sink(port)
    rates: dict[str, float] = {}
    try:
        signers = {"unsigned": None} | {
            name: DkimSigner(key, selector="newsletter", domain="example.org")
            for name, key in keys.items()
        }
        for name, signer in signers.items():
            t = SmtpTransport(builder, host="127.0.0.1", port=port, security="none",
                              concurrency=concurrency, sign=signer)  # fmt: skip
            t0 = time.perf_counter()
            with t:
                for i in range(0, messages, t.batch_size):
                    out = t.send(rcpts[i : i + t.batch_size])
                    assert all(o.status.value == "sent" for o in out), out[0]
            rates[name] = messages / (time.perf_counter() - t0)
    finally:
        sink.kill()
        sink.wait()
        shutil.rmtree(home, ignore_errors=True)
    base = rates["unsigned"]
    print(f"SMTP into smtp-sink, {messages} messages, {concurrency} connections:")
    for name, rate in rates.items():
        print(f"  {name:8} {rate:7,.0f} msg/s   {rate / base:4.2f}x unsigned")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    keys = {"ed25519": generate_key("ed25519"), "rsa-2048": generate_key("rsa")}
    bench_cost(keys)
    bench_smtp(keys, args.messages, args.concurrency)


if __name__ == "__main__":
    main()
