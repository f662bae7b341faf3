"""Send-path benchmark: prints figures as ratios from one run.

1. SMTP throughput into Postfix's smtp-sink (started here on 127.0.0.1, random port):
   ``newsletter send`` as a user runs it (a fresh process: start-up, render, the list
   streamed into the journal, every message journaled in flight and after) vs
   smtp-source at the same concurrency and message size (the local limit), then the
   same send with DKIM signing (Ed25519, RSA-2048) as its cost on top; the transport
   alone; a naive smtplib loop (one new connection per message, as a hand-written
   ``for r in rows: smtplib.SMTP(...).sendmail(...)`` does) and one connection.
2. The SendGrid path is bench/bench_sendgrid.py (whole process, requests in flight,
   against the SDK-helper loop and the latency floor).
3. Peak RSS of ``newsletter send --dry-run`` for 100,000 and 1,000,000 subscribers
   (streams the CSV into the journal, builds --limit messages; nothing handed off).

Usage: .venv/bin/python bench/bench_send.py [--messages 3000 30000] [--concurrency 8] [--quick]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import smtplib
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from newsletter.compose.message import Recipient  # noqa: E402
from newsletter.delivery.dkim_keys import generate_key, write_key  # noqa: E402
from newsletter.delivery.transports.smtp import SmtpTransport  # noqa: E402
from tests.doctor.conftest import DMARC, SENDGRID  # noqa: E402
from tests.support.dkimkit import key_record  # noqa: E402
from tests.support.dns_server import DnsServer  # noqa: E402
from tests.support.sendkit import (  # noqa: E402
    make_builder,
    make_settings,
    send_env,
    write_subscribers,
)


def tool(name: str) -> str:
    for folder in ("/usr/sbin", "/usr/lib/postfix", "/usr/lib/postfix/sbin", "/usr/bin"):
        path = Path(folder) / name
        if path.exists():
            return str(path)
    found = shutil.which(name)
    if not found:
        sys.exit(f"{name} not found: apt-get install postfix")
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_sink(port: int, delay: int = 0) -> subprocess.Popen[bytes]:
    args = [tool("smtp-sink"), "-c"]
    if delay:
        args += ["-w", str(delay)]  # wait before answering DATA, like a real relay
    if os.geteuid() == 0:
        args += ["-u", "nobody"]
    args += [f"127.0.0.1:{port}", "1024"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return proc
        except OSError:
            time.sleep(0.05)
    proc.kill()
    sys.exit("smtp-sink did not start")


#: the sender's domain as set up for a direct send from this machine, and for SendGrid
SMTP_ZONE = 'example.org. 60 TXT "v=spf1 ip4:127.0.0.1 -all"\n' + DMARC
SENDGRID_ZONE = SENDGRID + DMARC


@contextmanager
def local_dns(zone: str) -> Iterator[str]:
    """A DNS server on 127.0.0.1 serving ``zone``, for NEWSLETTER_DNS_SERVER: a send's
    pre-flight checks ask it, not the system's resolver (no query leaves the machine)."""
    with DnsServer() as dns:
        dns.zone = zone
        yield dns.address


def make_home() -> Path:
    home = Path(tempfile.mkdtemp(prefix="nl-bench-"))
    for name in ("issues", "templates"):
        if (ROOT / name).exists():
            shutil.copytree(ROOT / name, home / name)
    return home


def bench_smtp(
    messages: int,
    concurrency: int,
    delay: int = 0,
    dkim: tuple[str, ...] = (),
    repeat: int = 1,
) -> None:
    home = make_home()
    settings = make_settings(home)
    builder = make_builder(settings)
    rcpts = [Recipient(f"r{i}@example.net", f"Reader {i}") for i in range(messages)]
    size = len(builder.to_bytes(rcpts[0]))
    port = free_port()
    sink = start_sink(port, delay)
    try:
        # smtp-source: -d reuses each session for many messages, like our pool. It and
        # the whole-process send take turns, best of ``repeat`` each: on a shared
        # machine both then meet the same neighbours
        source_s: list[float] = []
        wholes: list[tuple[float, float]] = []
        for _ in range(repeat if not delay else 1):
            t0 = time.perf_counter()
            subprocess.run(
                [tool("smtp-source"), "-d", "-s", str(concurrency), "-m", str(messages),
                 "-l", str(size), "-f", "digest@example.org", "-t", "r@example.net",
                 f"127.0.0.1:{port}"],
                check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            source_s.append(time.perf_counter() - t0)
            if not delay:
                # what a user runs: a fresh process that renders, reads the list,
                # journals each message and sends through the pipelined engine
                wholes.append(whole_process_send(port, messages, concurrency))
        source_rate = messages / min(source_s)
        whole = min(wholes) if wholes else None

        t = SmtpTransport(builder, host="127.0.0.1", port=port, security="none",
                          concurrency=concurrency)  # fmt: skip
        t0 = time.perf_counter()
        with t:
            for i in range(0, messages, 64):  # a list: the transport fans it out itself
                out = t.send(rcpts[i : i + 64])
                assert all(o.status.value == "sent" for o in out), out[0]
        ours_rate = messages / (time.perf_counter() - t0)

        # the same send, signed (DKIM): its cost on top
        signed = {}
        if whole is not None and dkim:
            signed = {
                a: min(whole_process_send(port, messages, concurrency, a) for _ in range(repeat))
                for a in dkim
            }

        naive_n = min(messages, 1000 if not delay else concurrency)
        t0 = time.perf_counter()
        for r in rcpts[:naive_n]:
            with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as conn:
                conn.sendmail("digest@example.org", [r.email], builder.to_bytes(r))
        naive_rate = naive_n / (time.perf_counter() - t0)

        t0 = time.perf_counter()
        with smtplib.SMTP("127.0.0.1", port, local_hostname="localhost") as conn:
            for r in rcpts[:naive_n]:
                conn.sendmail("digest@example.org", [r.email], builder.to_bytes(r))
        one_conn_rate = naive_n / (time.perf_counter() - t0)
    finally:
        sink.terminate()
        sink.wait()
        shutil.rmtree(home, ignore_errors=True)
    latency = f", server waits {delay} s before answering DATA" if delay else ""
    best = f", best of {repeat} each" if repeat > 1 and not delay else ""
    print(
        f"SMTP into smtp-sink, {messages} messages of {size:,} bytes, "
        f"concurrency {concurrency}{latency}{best}"
    )
    print(f"  smtp-source (local limit, -d)         {source_rate:9,.0f} msg/s")
    if whole is not None:
        total, loop = whole
        whole_rate = messages / total
        goal = "met" if whole_rate / source_rate >= 0.6 else "NOT met"
        print(f"  newsletter send, whole process        {whole_rate:9,.0f} msg/s"
              f"  = {whole_rate / source_rate:.2f} x smtp-source ({total:.2f} s in all; "
              f"goal >= 0.6 x: {goal})")  # fmt: skip
        print(f"    of which the send loop              {messages / loop:9,.0f} msg/s"
              f"  = {messages / loop / source_rate:.2f} x smtp-source ({loop:.2f} s; "
              f"{total - loop:.2f} s start-up, render, list and the rest)")  # fmt: skip
        for algorithm, (signed_total, _) in signed.items():
            rate = messages / signed_total
            print(f"  ... DKIM-signed ({algorithm:7s})         {rate:9,.0f} msg/s"
                  f"  = {rate / source_rate:.2f} x smtp-source; signing costs "
                  f"{(signed_total - total) / messages * 1e6:,.0f} us a message "
                  f"({signed_total / total:.2f} x the unsigned time)")  # fmt: skip
    print(f"  SmtpTransport.send alone (threads)    {ours_rate:9,.0f} msg/s"
          f"  = {ours_rate / source_rate:.2f} x smtp-source")  # fmt: skip
    print(f"  naive smtplib, connect per message    {naive_rate:9,.0f} msg/s"
          f"  -> newsletter is {ours_rate / naive_rate:.1f} x faster")  # fmt: skip
    print(f"  naive smtplib, one connection         {one_conn_rate:9,.0f} msg/s"
          f"  -> newsletter is {ours_rate / one_conn_rate:.1f} x faster")  # fmt: skip


def whole_process_send(
    port: int, messages: int, concurrency: int, dkim: str | None = None
) -> tuple[float, float]:
    """`newsletter send --yes` of ``messages`` subscribers: (seconds start to exit, seconds
    of the send loop as the command reports them). ``dkim``: sign with a new key of it."""
    home = make_home()
    write_subscribers(home / "subscribers" / "subscribers.csv", messages)
    env = send_env(NEWSLETTER_TRANSPORT="smtp", SMTP_HOST="127.0.0.1", SMTP_PORT=str(port),
                   SMTP_SECURITY="none", NEWSLETTER_CONCURRENCY=str(concurrency))  # fmt: skip
    # as a user runs it: pip compiles an installed package's bytecode (see compile_package)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    zone = SMTP_ZONE
    if dkim is not None:
        key = generate_key("ed25519" if dkim == "ed25519" else "rsa")
        write_key(key, home / "dkim.key")
        env["NEWSLETTER_DKIM_KEY_FILE"] = "dkim.key"
        zone += key_record(key)
    try:
        with local_dns(zone) as env["NEWSLETTER_DNS_SERVER"]:
            t0 = time.perf_counter()
            proc = subprocess.run([sys.executable, "-m", "newsletter", "send", "vol-2.19", "--yes"],
                                  cwd=home, env=env, capture_output=True, text=True)  # fmt: skip
            elapsed = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"newsletter send failed: {proc.stdout}{proc.stderr}")
        found = re.search(r"sent [\d,]+ in ([\d.]+) s", proc.stdout)
        return elapsed, float(found.group(1)) if found else float("nan")
    finally:
        shutil.rmtree(home, ignore_errors=True)


def compile_package() -> None:
    """Bytecode for the package, as ``pip install`` writes it: without it (a sandbox's
    PYTHONDONTWRITEBYTECODE) every run would compile every module again."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "newsletter")],
                   check=True, capture_output=True)  # fmt: skip
    warm = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run([sys.executable, "-m", "newsletter", "--help"], env=warm, check=True,
                   capture_output=True)  # the libraries' bytecode too  # fmt: skip


def bench_memory(counts: list[int], limit: int) -> None:
    print(f"Peak RSS, `newsletter send --dry-run --limit {limit}` (streams every row into the"
          " journal, builds the first --limit messages, hands off nothing)")  # fmt: skip
    base: float | None = None
    for count in counts:
        home = make_home()
        write_subscribers(home / "subscribers" / "subscribers.csv", count)
        env = send_env()
        script = (
            "import sys\n"
            "from newsletter.cli.app import app\n"
            "try:\n    app(['send', 'vol-2.19', '--dry-run', '--limit', sys.argv[1]])\n"
            "except SystemExit as e:\n    code = e.code\n"
            # VmHWM, not ru_maxrss: Linux carries ru_maxrss of the parent across exec
            "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]\n"
            "print('RSS', hwm.split()[1], file=sys.stderr)\n"
            # a forked child (the list read ahead) starts with the parent's pages: its
            # peak counts those shared pages too (an upper bound on what it adds)
            "import resource\n"
            "print('CHILD', resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
            "file=sys.stderr)\n"
        )
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", script, str(limit)], cwd=home, env=env,
                              capture_output=True, text=True)  # fmt: skip
        elapsed = time.perf_counter() - t0
        rss = [line for line in proc.stderr.splitlines() if line.startswith("RSS ")]
        if not rss:
            print(proc.stdout, proc.stderr)
            sys.exit("the dry run failed")
        mb = int(rss[-1].split()[1]) / 1024
        base = base or mb
        child = [int(line.split()[1]) / 1024 for line in proc.stderr.splitlines()
                 if line.startswith("CHILD ")]  # fmt: skip
        forked = f"; a forked child's peak {child[-1]:.1f} MB" if child and child[-1] else ""
        print(f"  {count:>9,} subscribers   peak RSS {mb:7.1f} MB  ({mb / base:.2f} x the "
              f"{counts[0]:,} figure; {elapsed:.1f} s{forked})")  # fmt: skip
        shutil.rmtree(home, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--messages", type=int, nargs="+", default=[3000, 30000])
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=3, help="smtp-source and the send, best of N")
    ap.add_argument("--quick", action="store_true", help="small sizes, for a smoke test")
    ap.add_argument("--only", choices=["smtp", "sendgrid", "memory"])
    args = ap.parse_args()
    if args.quick:
        args.messages = [300]
    print(f"machine: {os.cpu_count()} CPUs, Python {sys.version.split()[0]}")
    if args.only in (None, "smtp"):
        compile_package()
        for i, count in enumerate(args.messages):
            dkim = ("ed25519", "rsa") if i == 0 else ()
            bench_smtp(count, args.concurrency, dkim=dkim, repeat=args.repeat)
        # a relay that takes its time (smtp-sink's delay is whole seconds): where a pool
        # of reused connections pays off against a one-connection loop
        bench_smtp(args.concurrency * 5, args.concurrency, delay=1)
    if args.only in (None, "sendgrid"):
        print("SendGrid path: see bench/bench_sendgrid.py")
    if args.only in (None, "memory"):
        compile_package()
        bench_memory([10_000] if args.quick else [100_000, 1_000_000], limit=2000)


if __name__ == "__main__":
    main()
