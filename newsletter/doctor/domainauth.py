"""DKIM and DMARC of the sending domain, as a receiver will see them.

DKIM: for SendGrid, the CNAMEs its domain authentication asks for (``s1``/``s2``
``._domainkey``) resolve to a key; for SMTP, the key published at our selector is the
one we sign with (:mod:`newsletter.delivery.dkim_keys`), or the relay signs
(``SMTP_RELAY_SIGNS``). DMARC: a record at ``_dmarc.<domain>`` (or the organizational
domain's), its policy, and whether From aligns with the SPF or the DKIM domain.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsletter.delivery.dkim_keys import DkimKey
from newsletter.doctor.findings import Finding, fail, ok, warn
from newsletter.doctor.resolver import DnsClient

SENDGRID_SELECTORS = ("s1", "s2")
#: second-level labels under which a country's registrations sit (example.co.jp): a
#: small stand-in for the Public Suffix List, enough to find an organizational domain
_SECOND_LEVEL = frozenset({"co", "com", "ne", "net", "or", "org", "ac", "ad", "go", "gov", "edu"})


def org_domain(domain: str) -> str:
    """The organizational domain (RFC 7489 3.2): ``news.example.co.jp`` -> ``example.co.jp``."""
    labels = domain.lower().rstrip(".").split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def aligned(from_domain: str, other: str, *, strict: bool) -> bool:
    if strict:
        return from_domain.lower() == other.lower()
    return org_domain(from_domain) == org_domain(other)


def tags(record: str) -> dict[str, str]:
    """``"v=DKIM1; k=rsa; p=AB CD"`` -> ``{"v": "DKIM1", "k": "rsa", "p": "ABCD"}``."""
    out: dict[str, str] = {}
    for part in record.split(";"):
        name, eq, value = part.partition("=")
        if eq:
            out[name.strip().lower()] = "".join(value.split())
    return out


def check_dkim_sendgrid(dns: DnsClient, domain: str) -> Finding:
    missing = []
    for selector in SENDGRID_SELECTORS:
        name = f"{selector}._domainkey.{domain}"
        targets = dns.cname(name)
        if not targets or not any("p" in tags(t) for t in dns.txt(name)):
            missing.append(f"{name} (CNAME {'-> ' + targets[0] if targets else 'missing'})")
    if missing:
        return fail(
            "dkim",
            f"SendGrid's domain authentication for {domain} does not resolve: {'; '.join(missing)}",
            f"SendGrid > Settings > Sender Authentication > Authenticate Your Domain ({domain}),"
            "\nthen publish the CNAMEs it shows, e.g. "
            f"s1._domainkey.{domain}. CNAME s1.domainkey.uNNNN.wlNNN.sendgrid.net.",
        )
    return ok("dkim", f"SendGrid signs for {domain}: s1 and s2._domainkey resolve to keys")


@dataclass(frozen=True, slots=True)
class DkimSetup:
    """How direct SMTP mail is signed: our key and where it is published, or the relay."""

    key: DkimKey | None
    selector: str
    domain: str
    key_file: str | None
    relay_signs: bool

    @property
    def record_name(self) -> str:
        return f"{self.selector}._domainkey.{self.domain}"


def check_dkim_smtp(dns: DnsClient, setup: DkimSetup) -> Finding:
    if setup.key is None:
        if setup.relay_signs:
            return ok(
                "dkim",
                f"SMTP_RELAY_SIGNS=true: the relay signs (check that a received copy's "
                f"DKIM-Signature has d={setup.domain})",
            )
        return fail(
            "dkim",
            "mail sent over SMTP is not DKIM-signed: Gmail and Yahoo require DKIM of bulk senders",
            "newsletter dkim keygen   (writes the key, prints the TXT record to publish), then\n"
            "NEWSLETTER_DKIM_KEY_FILE=dkim.key; or SMTP_RELAY_SIGNS=true if your relay signs "
            f"for {setup.domain}",
        )
    want = setup.key.dns_record()
    record = f'{setup.record_name}. TXT "{want}"'
    published = [t for t in dns.txt(setup.record_name) if "p" in tags(t)]
    if not published:
        return fail(
            "dkim",
            f"no DKIM key published at {setup.record_name}: receivers cannot check our signature",
            record,
        )
    keys = [tags(t)["p"] for t in published]
    if setup.key.public not in keys:
        why = "is revoked (empty p=)" if keys == [""] else "does not match"
        return fail(
            "dkim",
            f"the key published at {setup.record_name} {why} the key in {setup.key_file}: "
            "every signature would fail",
            record,
        )
    if setup.key.algorithm == "ed25519":
        return warn(
            "dkim",
            f"{setup.record_name}: Ed25519 key published and matches, but many verifiers "
            "support only RSA: to them the mail is unsigned",
            "NEWSLETTER_DKIM_SELECTOR=newsletter2 newsletter dkim keygen --algorithm rsa "
            "--out dkim-rsa.key; publish the record it prints, then set "
            "NEWSLETTER_DKIM_SELECTOR=newsletter2 and NEWSLETTER_DKIM_KEY_FILE=dkim-rsa.key",
        )
    return ok("dkim", f"{setup.record_name}: {setup.key.algorithm} key published and matches")


def dmarc_record(dns: DnsClient, domain: str) -> tuple[str, list[str]]:
    """(where the policy was found, its DMARC records): the domain's, else its org's."""
    for name in dict.fromkeys([domain, org_domain(domain)]):
        found = [t for t in dns.txt(f"_dmarc.{name}") if t.lower().startswith("v=dmarc1")]
        if found:
            return f"_dmarc.{name}", found
    return f"_dmarc.{domain}", []


def check_dmarc(
    dns: DnsClient, from_domain: str, *, spf_domain: str | None, dkim_domain: str | None
) -> list[Finding]:
    """The record and its policy; then alignment of From with SPF's or DKIM's domain."""
    where, records = dmarc_record(dns, from_domain)
    suggestion = f'_dmarc.{from_domain}. TXT "v=DMARC1; p=none; rua=mailto:dmarc@{from_domain}"'
    if not records:
        return [
            fail(
                "dmarc",
                f"no DMARC record at _dmarc.{from_domain}: Gmail and Yahoo require one of bulk "
                "senders",
                suggestion,
            )
        ]
    if len(records) > 1:
        return [fail("dmarc", f"{where} has {len(records)} DMARC records: keep one", suggestion)]
    policy = tags(records[0])
    p = policy.get("p", "").lower()
    out: list[Finding] = []
    if p not in ("none", "quarantine", "reject"):
        out.append(fail("dmarc", f"{where}: no valid policy (p=) in {records[0]!r}", suggestion))
    elif p == "none":
        note = "enough for Gmail and Yahoo; it reports, it does not enforce"
        out.append(ok("dmarc", f"{where}: p=none ({note})"))
    else:
        out.append(ok("dmarc", f"{where}: p={p}"))
    spf_ok = spf_domain is not None and aligned(
        from_domain, spf_domain, strict=policy.get("aspf", "r").lower() == "s"
    )
    dkim_ok = dkim_domain is not None and aligned(
        from_domain, dkim_domain, strict=policy.get("adkim", "r").lower() == "s"
    )
    if spf_ok or dkim_ok:
        how = " and ".join(
            n for n, good in (("SPF", spf_ok), (f"DKIM (d={dkim_domain})", dkim_ok)) if good
        )
        out.append(ok("alignment", f"From {from_domain} aligns with {how}"))
    else:
        out.append(
            fail(
                "alignment",
                f"From {from_domain} aligns with neither SPF ({spf_domain or 'unknown'}) nor "
                f"DKIM ({dkim_domain or 'no signature'}): DMARC fails",
                f"NEWSLETTER_DKIM_DOMAIN={from_domain} (sign as the From domain), or send "
                f"From an address at {dkim_domain or spf_domain or from_domain}",
            )
        )
    return out
