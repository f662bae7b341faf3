"""Who is asking: the real client behind a reverse proxy, trusted only from named proxies.

``X-Forwarded-For`` and ``Forwarded`` are plain request headers anyone can send, so they
count only when the TCP peer is one of NEWSLETTER_TRUSTED_PROXIES (addresses or CIDRs).
Then the client is the right-most address in the chain that is not itself a trusted
proxy (each proxy appends the peer it saw; everything left of our own proxies' entries
is the client's say-so). ``X-Forwarded-Proto`` / ``proto=`` set the scheme the same way,
so HSTS and cookies know the visitor came over https.

:func:`client_key` is what rate limits count by: the address, or its /64 for IPv6 (one
host holds a whole /64, so counting single IPv6 addresses would let it rotate freely).
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from typing import Final

from starlette.types import ASGIApp, Receive, Scope, Send

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_FOR_PARAM: Final = re.compile(r'(?i)(?:^|;)\s*for\s*=\s*("[^"]*"|[^;,\s]*)')
_PROTO_PARAM: Final = re.compile(r'(?i)(?:^|;)\s*proto\s*=\s*("[^"]*"|[^;,\s]*)')


def parse_networks(spec: str | None) -> tuple[IPNetwork, ...]:
    """``"127.0.0.1, 10.0.0.0/8 ::1"`` -> networks; ValueError naming the bad entry."""
    networks: list[IPNetwork] = []
    for item in re.split(r"[\s,]+", (spec or "").strip()):
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"not an IP address or CIDR network: {item!r}") from None
    return tuple(networks)


@functools.lru_cache(maxsize=4096)  # every request parses its peer and forwarded chain
def parse_address(text: str) -> IPAddress | None:
    """An address as proxies write it (``1.2.3.4``, ``1.2.3.4:5``, ``[::1]:5``, ``"[::1]"``)."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1 : text.find("]")] if "]" in text else text[1:]
    elif text.count(":") == 1:  # IPv4 with a port
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


@functools.lru_cache(maxsize=4096)
def client_key(host: str) -> str:
    """What a per-client budget counts by: the address, or the /64 of an IPv6 address."""
    address = parse_address(host)
    if address is None:
        return host
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network(f"{address}/64", strict=False))
    return str(address)


def is_trusted(host: str, networks: Iterable[IPNetwork]) -> bool:
    address = parse_address(host)
    return address is not None and any(address in network for network in networks)


def _forwarded_chain(headers: list[tuple[bytes, bytes]]) -> tuple[list[str], str | None]:
    """The client chain (left to right) and the last proto, ``Forwarded`` over ``X-Forwarded-*``."""
    forwarded = [v.decode("latin-1") for n, v in headers if n.lower() == b"forwarded"]
    if forwarded:
        chain: list[str] = []
        proto: str | None = None
        for element in ",".join(forwarded).split(","):
            match = _FOR_PARAM.search(element)
            chain.append(match.group(1).strip('"') if match else "unknown")
            proto_match = _PROTO_PARAM.search(element)
            if proto_match:
                proto = proto_match.group(1).strip('"').lower()
        return chain, proto
    xff = [v.decode("latin-1") for n, v in headers if n.lower() == b"x-forwarded-for"]
    chain = [part.strip() for part in ",".join(xff).split(",") if part.strip()]
    protos = [v.decode("latin-1") for n, v in headers if n.lower() == b"x-forwarded-proto"]
    proto = protos[-1].split(",")[-1].strip().lower() if protos else None
    return chain, proto


def resolve_client(
    peer: str, headers: list[tuple[bytes, bytes]], trusted: tuple[IPNetwork, ...]
) -> tuple[str, str | None]:
    """``(client address, forwarded scheme or None)`` for a request from ``peer``."""
    if not trusted or not is_trusted(peer, trusted):
        return peer, None
    chain, proto = _forwarded_chain(headers)
    client = peer
    for hop in reversed(chain):
        address = parse_address(hop)
        if address is None:  # "unknown" or garbage: stop at the last address we can vouch for
            break
        client = str(address)
        if not any(address in network for network in trusted):
            break
    return client, proto if proto in ("http", "https") else None


class ClientAddress:
    """ASGI middleware: ``scope["client"]`` and ``scope["scheme"]`` as the proxy saw them."""

    def __init__(self, app: ASGIApp, *, trusted: tuple[IPNetwork, ...] = ()) -> None:
        self.app = app
        self.trusted = trusted

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope.get("client"):
            peer, port = scope["client"]
            client, proto = resolve_client(peer, list(scope.get("headers", [])), self.trusted)
            scope = dict(scope)
            scope["newsletter.peer"] = (peer, port)  # who really connected (HostCheck)
            scope["client"] = (client, port if client == peer else 0)
            if proto:
                scope["scheme"] = proto
        await self.app(scope, receive, send)
