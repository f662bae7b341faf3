"""A DNS server on 127.0.0.1 (dnslib, UDP and TCP on one port) serving zone text the
test writes; CNAMEs are followed the way a recursive resolver would.

    with DnsServer() as dns:
        dns.zone = 'example.org. 60 TXT "v=spf1 ip4:192.0.2.10 ~all"'
        settings = ... NEWSLETTER_DNS_SERVER=dns.address
"""

from __future__ import annotations

import socket
import threading
from typing import Any

from dnslib import QTYPE, RCODE, RR
from dnslib.server import BaseResolver, DNSLogger, DNSServer


def free_udp_tcp_port() -> int:
    """A port free for both UDP and TCP on 127.0.0.1."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind(("127.0.0.1", 0))
            port = int(udp.getsockname()[1])
            with socket.socket() as tcp:
                try:
                    tcp.bind(("127.0.0.1", port))
                except OSError:
                    continue
        return port


class _ZoneResolver(BaseResolver):  # type: ignore[misc]
    def __init__(self) -> None:
        self.records: list[Any] = []
        self.questions: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def resolve(self, request: Any, handler: Any) -> Any:
        reply = request.reply()
        qname, qtype = request.q.qname, QTYPE[request.q.qtype]
        with self.lock:
            self.questions.append((str(qname).rstrip("."), qtype))
            records = list(self.records)
        name, seen = qname, 0
        while seen < 8:
            seen += 1
            here = [rr for rr in records if rr.rname == name]
            wanted = [rr for rr in here if QTYPE[rr.rtype] == qtype]
            if wanted:
                for rr in wanted:
                    reply.add_answer(rr)
                break
            alias = [rr for rr in here if QTYPE[rr.rtype] == "CNAME"]
            if alias:
                reply.add_answer(alias[0])
                name = alias[0].rdata.label
                continue
            if (
                not here
                and seen == 1
                and not any(str(rr.rname).endswith("." + str(name)) for rr in records)
            ):
                reply.header.rcode = RCODE.NXDOMAIN
            break
        return reply


class DnsServer:
    """Serves :attr:`zone` (zone-file text) on ``127.0.0.1:<port>`` until stopped."""

    def __init__(self) -> None:
        self.port = free_udp_tcp_port()
        self.resolver = _ZoneResolver()
        quiet = DNSLogger(log="-request,-reply,-truncated,-error,-recv,-send,-data", prefix=False)
        self._servers = [
            DNSServer(self.resolver, address="127.0.0.1", port=self.port, tcp=tcp, logger=quiet)
            for tcp in (False, True)
        ]

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def zone(self) -> list[Any]:
        return self.resolver.records

    @zone.setter
    def zone(self, text: str) -> None:
        records = RR.fromZone(text)
        with self.resolver.lock:
            self.resolver.records = records

    @property
    def questions(self) -> list[tuple[str, str]]:
        with self.resolver.lock:
            return list(self.resolver.questions)

    def __enter__(self) -> DnsServer:
        for server in self._servers:
            server.start_thread()
        return self

    def __exit__(self, *exc: object) -> None:
        for server in self._servers:
            server.stop()
            server.server.server_close()
