"""SPF of the sending domain (RFC 7208): one record, the relay in it, at most 10 lookups.

Our SMTP transport uses the From address as the envelope sender, so the From domain is
also the domain SPF is checked for; SendGrid sends with its own bounce domain unless
the domain is authenticated, which is why its check is ``include:sendgrid.net``.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, field

from newsletter.doctor.findings import Finding, fail, ok, warn
from newsletter.doctor.resolver import DnsClient, is_local_address

#: RFC 7208 4.6.4: more DNS-querying terms than this is a permanent error
MAX_LOOKUPS = 10
_LOOKUP_TERMS = frozenset({"include", "a", "mx", "ptr", "exists", "redirect"})
SENDGRID_INCLUDE = "include:sendgrid.net"

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def spf_records(dns: DnsClient, domain: str) -> list[str]:
    return [t for t in dns.txt(domain) if t.lower() == "v=spf1" or t.lower().startswith("v=spf1 ")]


@dataclass(slots=True)
class SpfTree:
    """What a record expands to: its lookups, its includes and the networks it allows."""

    lookups: int = 0
    includes: set[str] = field(default_factory=set)
    networks: list[Network] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def _is_lookup(term: str) -> bool:
    name = re.split(r"[:/=]", term.lstrip("+-~?").lower(), maxsplit=1)[0]
    return name in _LOOKUP_TERMS


def _target(term: str, domain: str, mechanism: str) -> tuple[str, int | None]:
    """``a:host/24`` -> ``("host", 24)``; a bare ``a`` or ``mx/24`` names ``domain``."""
    rest = term[len(mechanism) :]
    name, _, cidr = rest.removeprefix(":").partition("/")
    return name or domain, int(cidr) if cidr.isdigit() else None


def expand(dns: DnsClient, domain: str, tree: SpfTree | None = None, depth: int = 0) -> SpfTree:
    """Walk ``domain``'s record and every include, counting lookups as a receiver would."""
    tree = tree or SpfTree()
    if depth > MAX_LOOKUPS:
        tree.problems.append(f"{domain}: includes nest too deep (a loop?)")
        return tree
    records = spf_records(dns, domain)
    if len(records) != 1:
        if depth:
            tree.problems.append(f"{domain}: {len(records)} SPF records (include fails)")
        return tree
    for term in records[0].split()[1:]:
        bare = term.lstrip("+-~?")
        low = bare.lower()
        if _is_lookup(term):
            tree.lookups += 1
        if low.startswith("include:") or low.startswith("redirect="):
            target = bare.split(":" if low.startswith("include:") else "=", 1)[1]
            if low.startswith("include:"):
                tree.includes.add(target.lower())
            expand(dns, target, tree, depth + 1)
        elif low.startswith(("ip4:", "ip6:")):
            try:
                tree.networks.append(ipaddress.ip_network(bare[4:], strict=False))
            except ValueError:
                tree.problems.append(f"{domain}: bad {bare!r}")
        elif low == "a" or low.startswith(("a:", "a/")):
            name, prefix = _target(bare, domain, "a")
            for addr in dns.addresses(name):
                tree.networks.append(_network(addr, prefix))
        elif low == "mx" or low.startswith(("mx:", "mx/")):
            name, prefix = _target(bare, domain, "mx")
            for host in dns.mx(name):
                for addr in dns.addresses(host):
                    tree.networks.append(_network(addr, prefix))
    return tree


def _network(addr: str, prefix: int | None) -> Network:
    ip = ipaddress.ip_address(addr)
    bits = prefix if prefix is not None and ip.version == 4 else ip.max_prefixlen
    return ipaddress.ip_network(f"{ip}/{bits}", strict=False)


def _with_term(record: str, term: str) -> str:
    """The record with ``term`` added before its ``all`` (or at the end)."""
    parts = record.split()
    for i, part in enumerate(parts):
        if part.lstrip("+-~?").lower() == "all" or part.lower().startswith("redirect="):
            return " ".join([*parts[:i], term, *parts[i:]])
    return " ".join([*parts, term])


def check_spf(dns: DnsClient, domain: str, *, relay: str, relay_addresses: list[str]) -> Finding:
    """One finding for ``domain``'s SPF; ``relay`` is ``"sendgrid"`` or the SMTP host."""
    records = spf_records(dns, domain)
    local = relay != "sendgrid" and all(is_local_address(a) for a in relay_addresses)
    if relay == "sendgrid":
        needed = SENDGRID_INCLUDE
    elif local and relay_addresses:
        needed = "ip4:<the public address your relay sends from>"
    else:
        needed = (
            " ".join(f"ip{ipaddress.ip_address(a).version}:{a}" for a in relay_addresses)
            or f"a:{relay}"
        )
    if not records:
        return fail(
            "spf",
            f"{domain} has no SPF record: receivers cannot tell the relay may send for it",
            f'{domain}. TXT "v=spf1 {needed} ~all"',
        )
    if len(records) > 1:
        merged = " ".join(dict.fromkeys(t for r in records for t in r.split()[1:]))
        return fail(
            "spf",
            f"{domain} has {len(records)} SPF records; receivers treat that as an error "
            "(permerror): keep one",
            f'{domain}. TXT "v=spf1 {merged}" (and delete the others)',
        )
    record = records[0]
    tree = expand(dns, domain)
    if tree.lookups > MAX_LOOKUPS:
        return fail(
            "spf",
            f"{domain}'s SPF needs {tree.lookups} DNS lookups, over the limit of {MAX_LOOKUPS} "
            "(receivers give up: permerror)",
            f"flatten it: replace includes you do not send through with ip4:/ip6: terms in "
            f'{domain}. TXT "{record}"',
        )
    if local and relay_addresses:
        return warn(
            "spf",
            f"the SMTP relay {relay} is on this machine or network: doctor cannot see the "
            f"public address it sends from; make sure {domain}'s SPF allows it: {record!r}",
        )
    if relay == "sendgrid":
        covered = "sendgrid.net" in tree.includes
        what = "SendGrid (include:sendgrid.net)"
    else:
        ips = [ipaddress.ip_address(a) for a in relay_addresses]
        covered = bool(ips) and all(any(ip in net for net in tree.networks) for ip in ips)
        what = f"the SMTP relay {relay} ({', '.join(relay_addresses) or 'no address'})"
    if not covered:
        return fail(
            "spf",
            f"{domain}'s SPF record does not allow {what}: {record!r}",
            f'{domain}. TXT "{_with_term(record, needed)}"',
        )
    extra = f"; {'; '.join(tree.problems)}" if tree.problems else ""
    message = f"{domain}: one record, allows {what}, {tree.lookups}/{MAX_LOOKUPS} lookups{extra}"
    return warn("spf", message) if tree.problems else ok("spf", message)
