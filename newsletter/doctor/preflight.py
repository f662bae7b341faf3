"""Run the checks for the configured transport and sender: `newsletter doctor`, and the
cheap part of it before every real send.

On the outbox transport nothing leaves the machine, so nothing is asked of DNS: the
report says in a few lines what a real send would need instead.
"""

from __future__ import annotations

import ipaddress

from newsletter.config import Settings
from newsletter.delivery.dkim import signer_from_settings
from newsletter.doctor.domainauth import (
    DkimSetup,
    check_dkim_sendgrid,
    check_dkim_smtp,
    check_dmarc,
)
from newsletter.doctor.findings import Finding, Report, fail
from newsletter.doctor.health import check_health, read_list_health
from newsletter.doctor.requirements import (
    check_reachable,
    check_reverse_dns,
    check_secret,
    check_unsubscribe,
)
from newsletter.doctor.resolver import DnsClient
from newsletter.doctor.spf import check_spf
from newsletter.errors import DnsError

CACHE_NAME = "dns-cache.json"


def make_dns(settings: Settings, *, cached: bool = False) -> DnsClient:
    """The resolver settings name; ``cached`` keeps the day's answers in the state folder."""
    return DnsClient(
        settings.dns_server,
        timeout=settings.dns_timeout,
        cache_file=settings.state_dir / CACHE_NAME if cached else None,
    )


def _outbox(settings: Settings) -> Report:
    report = Report(
        f"transport: outbox (files in {settings.outbox_dir}/, nothing is sent): "
        f"no DNS checked for {settings.sender_domain}"
    )
    report.findings.append(
        fail(
            "transport",
            "a real send needs a relay: SMTP (with DKIM signing) or SendGrid",
            "NEWSLETTER_TRANSPORT=smtp with SMTP_HOST, SMTP_USERNAME, SMTP_PASSWORD and "
            "NEWSLETTER_DKIM_KEY_FILE (newsletter dkim keygen);\n"
            "or NEWSLETTER_TRANSPORT=sendgrid with SENDGRID_API_KEY",
        )
    )
    report.findings += [check_unsubscribe(settings), check_secret(settings)]
    report.notes.append(
        f"then publish for {settings.sender_domain}: one SPF record naming the relay, "
        f"the DKIM key, a DMARC record at _dmarc.{settings.sender_domain}; "
        "and run `newsletter doctor` again"
    )
    return report


def _dkim_setup(settings: Settings) -> DkimSetup:
    signer = signer_from_settings(settings)
    return DkimSetup(
        key=signer.key if signer else None,
        selector=settings.dkim_selector,
        domain=settings.dkim_signing_domain,
        key_file=str(settings.dkim_key_file) if settings.dkim_key_file else None,
        relay_signs=settings.smtp_relay_signs,
    )


def run_checks(settings: Settings, dns: DnsClient, *, cheap: bool = False) -> Report:
    """Every check for the configured transport; ``cheap`` leaves out the HTTP request
    and the list's health (the send runs those itself, or has no need of them)."""
    if settings.transport == "outbox":
        return _outbox(settings)
    domain = settings.sender_domain
    relay = settings.transport if settings.transport == "sendgrid" else settings.smtp_host
    report = Report(
        f"transport: {settings.transport}, From {settings.from_address}, DNS {dns.where}"
    )
    checks = report.findings
    if settings.transport == "sendgrid":
        checks.append(check_spf(dns, domain, relay="sendgrid", relay_addresses=[]))
        checks.append(check_dkim_sendgrid(dns, domain))
        dkim_domain: str | None = domain if checks[-1].status != "fail" else None
        # with domain authentication SendGrid's bounce domain is a subdomain of ours
        spf_domain: str | None = domain if dkim_domain else "sendgrid.net"
    else:
        addresses = _relay_addresses(dns, settings.smtp_host)
        # SPF is checked where the mail says it comes from: the envelope sender, which
        # is the VERP bounce address's domain when NEWSLETTER_BOUNCE_ADDRESS is set
        envelope = (settings.bounce_address or "").rpartition("@")[2].lower() or domain
        checks.append(check_spf(dns, envelope, relay=relay, relay_addresses=addresses))
        setup = _dkim_setup(settings)
        checks.append(check_dkim_smtp(dns, setup))
        signs = checks[-1].status != "fail"
        dkim_domain = setup.domain if signs and setup.key is not None else None
        if signs and setup.key is None:
            dkim_domain = domain  # the relay signs; doctor takes its word for the domain
        spf_domain = envelope if checks[0].status != "fail" else None
    checks += check_dmarc(dns, domain, spf_domain=spf_domain, dkim_domain=dkim_domain)
    checks += [check_unsubscribe(settings), check_secret(settings)]
    if settings.transport == "smtp":
        checks.append(check_reverse_dns(dns, settings.smtp_host, addresses))
    if not cheap:
        reachable = check_reachable(settings, timeout=settings.dns_timeout)
        if reachable is not None:
            checks.append(reachable)
        checks += check_health(read_list_health(settings))
    return report


def _relay_addresses(dns: DnsClient, host: str) -> list[str]:
    if host == "localhost":
        return ["127.0.0.1"]
    try:
        return [str(ipaddress.ip_address(host))]
    except ValueError:
        return dns.addresses(host)


def run_doctor(settings: Settings) -> Report:
    """`newsletter doctor`: every check, fresh answers from DNS."""
    return run_checks(settings, make_dns(settings))


def preflight_for_send(settings: Settings) -> list[Finding]:
    """The cheap checks before a real send (the day's DNS answers): what failed.

    DNS that cannot be reached is one failure here, not an error: the send may go on.
    """
    if settings.transport == "outbox":
        return []
    dns = make_dns(settings, cached=True)
    try:
        report = run_checks(settings, dns, cheap=True)
    except DnsError as exc:
        return [fail("dns", f"{exc.message}: the preflight could not run")]
    dns.save_cache()
    return report.failures
