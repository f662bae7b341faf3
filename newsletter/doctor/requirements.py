"""The mail's own requirements: one-click unsubscribe, `serve` reachable, the secret key,
and reverse DNS of the host that hands our mail to the world."""

from __future__ import annotations

import urllib.error
import urllib.request

from newsletter.config import Settings
from newsletter.doctor.findings import Finding, fail, ok, warn
from newsletter.doctor.resolver import DnsClient, is_local_address
from newsletter.errors import ConfigError

PUBLIC_URL_FIX = (
    "NEWSLETTER_PUBLIC_URL=https://digest.example.org   (where `newsletter serve` runs)"
)


def check_unsubscribe(settings: Settings) -> Finding:
    url = settings.public_url
    if url is None:
        return fail(
            "unsubscribe",
            "no NEWSLETTER_PUBLIC_URL: mail carries a mailto List-Unsubscribe only, and Gmail "
            "and Yahoo require https one-click (RFC 8058) of bulk senders",
            PUBLIC_URL_FIX,
        )
    if not url.startswith("https://"):
        return fail(
            "unsubscribe",
            f"NEWSLETTER_PUBLIC_URL={url} is not https: one-click unsubscribe needs an https link",
            "NEWSLETTER_PUBLIC_URL=" + "https://" + url.split("://", 1)[1],
        )
    return ok("unsubscribe", f"List-Unsubscribe <{url}/u/...> with List-Unsubscribe-Post")


def check_secret(settings: Settings) -> Finding:
    try:
        settings.require_secret()
    except ConfigError as exc:
        fix = exc.hint or "NEWSLETTER_SECRET_KEY=<32 random characters>"
        return fail("secret", exc.message, fix)
    return ok("secret", "NEWSLETTER_SECRET_KEY is set (unsubscribe links are signed)")


def check_reachable(settings: Settings, *, timeout: float) -> Finding | None:
    """A HEAD request to the public URL: is `newsletter serve` answering there?"""
    if settings.public_url is None:
        return None
    url = settings.public_url + "/"
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            status = int(response.status)
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        return fail(
            "serve",
            f"{url} is not reachable ({reason}): one-click unsubscribes would fail",
            f"run `newsletter serve` behind a TLS proxy at {settings.public_url}",
        )
    if status >= 500:
        return fail(
            "serve",
            f"HEAD {url} answered {status}: one-click unsubscribes would fail",
            f"check `newsletter serve` and the proxy in front of it at {settings.public_url}",
        )
    return ok("serve", f"HEAD {url} answered {status}")


def check_reverse_dns(dns: DnsClient, host: str, addresses: list[str]) -> Finding:
    """Forward-confirmed reverse DNS of the SMTP relay (what receivers ask of a sender)."""
    if not addresses:
        return fail(
            "rdns",
            f"SMTP_HOST {host} has no address in DNS",
            f"SMTP_HOST=<your relay's name>, or publish {host}. A <its address>",
        )
    bad: list[str] = []
    for addr in addresses:
        if is_local_address(addr):
            return warn(
                "rdns",
                f"SMTP_HOST {host} is {addr}, on this machine or network: the relay's public "
                "address must have a PTR record that points back to it (doctor cannot see it)",
            )
        names = dns.ptr(addr)
        confirmed = [n for n in names if addr in dns.addresses(n)]
        if not confirmed:
            got = f"PTR {names[0]}, which does not resolve back" if names else "no PTR record"
            bad.append(f"{addr}: {got}")
    if bad:
        return fail(
            "rdns",
            f"reverse DNS of the relay {host}: {'; '.join(bad)} (receivers distrust such hosts)",
            f"ask whoever runs {addresses[0]} for a PTR record naming {host}, and "
            f"{host}. A {addresses[0]}",
        )
    return ok("rdns", f"{host} ({', '.join(addresses)}) has forward-confirmed reverse DNS")
