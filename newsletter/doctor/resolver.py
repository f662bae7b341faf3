"""DNS questions through dnspython, with a timeout, one clear error, and the day's cache.

``NEWSLETTER_DNS_SERVER`` names the resolver (``host`` or ``host:port``; the tests point
it at a server on 127.0.0.1), else the system's. A name that does not exist or has no
record of the type asked is an empty answer; a server that does not answer in
``NEWSLETTER_DNS_TIMEOUT`` seconds, or fails, is one :class:`~newsletter.errors.DnsError`.
With a cache file, answers are kept for the calendar day (UTC) so the check before every
send costs no lookups after the first.
"""

from __future__ import annotations

import ipaddress
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import dns.exception
import dns.name
import dns.resolver
import dns.reversename

from newsletter.errors import ConfigError, DnsError

#: addresses that never face the internet (RFC 1918, RFC 4193): a relay there hands our
#: mail on from a public address that doctor cannot see
_LOCAL = [
    ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fc00::/7")
]


def is_local_address(address: str) -> bool:
    """Loopback, link-local or private: not the address receivers see our mail come from."""
    ip = ipaddress.ip_address(address)
    return ip.is_loopback or ip.is_link_local or any(ip in net for net in _LOCAL)


def parse_server(value: str) -> tuple[str, int]:
    """``"127.0.0.1:5353"`` -> ``("127.0.0.1", 5353)``; ``"[::1]:53"`` and bare hosts too."""
    host, port = value.strip(), 53
    if host.startswith("["):
        host, _, rest = host[1:].partition("]")
        port = int(rest[1:]) if rest.startswith(":") else 53
    elif host.count(":") == 1:
        host, _, text = host.partition(":")
        if not text.isdigit():
            raise ConfigError(f"NEWSLETTER_DNS_SERVER: not a port: {text!r}")
        port = int(text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise ConfigError(
            f"NEWSLETTER_DNS_SERVER: {value!r} is not an IP address "
            "(e.g. 1.1.1.1 or 127.0.0.1:5353)"
        ) from None
    return host, port


class DnsClient:
    """Answers TXT, CNAME, address and PTR questions; every answer a list of strings."""

    def __init__(
        self, server: str | None = None, *, timeout: float = 5.0, cache_file: Path | None = None
    ) -> None:
        if server:
            host, port = parse_server(server)
            self._resolver = dns.resolver.Resolver(configure=False)
            self._resolver.nameservers = [host]
            self._resolver.port = port
            self.where = f"{host}:{port}"
        else:
            try:
                self._resolver = dns.resolver.Resolver()
            except dns.resolver.NoResolverConfiguration:
                raise DnsError(
                    "DNS: this machine has no resolver configured (/etc/resolv.conf)",
                    hint="set NEWSLETTER_DNS_SERVER, e.g. 1.1.1.1",
                ) from None
            self.where = ", ".join(str(ns) for ns in self._resolver.nameservers) or "none"
        self._resolver.timeout = timeout
        self._resolver.lifetime = timeout
        self.timeout = timeout
        self.cache_file = cache_file
        self.queries = 0
        self._today = datetime.now(UTC).date().isoformat()
        self._cache: dict[str, list[str]] = self._load_cache()

    # The day's cache ------------------------------------------------------------------
    def _load_cache(self) -> dict[str, list[str]]:
        if self.cache_file is None:
            return {}
        try:
            data = json.loads(self.cache_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {}
        if data.get("day") != self._today or data.get("server") != self.where:
            return {}
        answers = data.get("answers", {})
        return answers if isinstance(answers, dict) else {}

    def save_cache(self) -> None:
        if self.cache_file is None:
            return
        self.cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_file.with_name(self.cache_file.name + ".tmp")
        data = {"day": self._today, "server": self.where, "answers": self._cache}
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        os.replace(tmp, self.cache_file)

    # Questions ------------------------------------------------------------------------
    def query(self, name: str, rdtype: str) -> list[str]:
        key = f"{rdtype} {name.lower().rstrip('.')}"
        if key in self._cache:
            return self._cache[key]
        self.queries += 1
        try:
            answer = self._resolver.resolve(name, rdtype, search=False)
        except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
            found: list[str] = []
        except dns.exception.Timeout:
            raise DnsError(
                f"DNS {self.where}: no answer within {self.timeout:g} s (asking {rdtype} {name})",
                hint="check the network, or set NEWSLETTER_DNS_SERVER to a resolver that answers",
            ) from None
        except (dns.resolver.NoNameservers, dns.name.NameTooLong, dns.name.LabelTooLong) as exc:
            raise DnsError(f"DNS {self.where}: {rdtype} {name}: {exc}") from None
        else:
            if rdtype == "TXT":
                found = [b"".join(r.strings).decode("utf-8", "replace") for r in answer]
            else:
                found = [r.to_text().rstrip(".") for r in answer]
        self._cache[key] = found
        return found

    def txt(self, name: str) -> list[str]:
        return self.query(name, "TXT")

    def cname(self, name: str) -> list[str]:
        return self.query(name, "CNAME")

    def addresses(self, host: str) -> list[str]:
        """The IPv4 and IPv6 addresses of ``host`` (itself when it is an address)."""
        try:
            return [str(ipaddress.ip_address(host))]
        except ValueError:
            return self.query(host, "A") + self.query(host, "AAAA")

    def mx(self, domain: str) -> list[str]:
        return [r.split()[-1] for r in self.query(domain, "MX")]

    def ptr(self, address: str) -> list[str]:
        return self.query(dns.reversename.from_address(address).to_text(), "PTR")
