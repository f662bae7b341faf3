"""Each check against a real DNS server on 127.0.0.1: a good domain passes; each broken
record is found and comes with the exact record that fixes it."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsletter.delivery.dkim_keys import DkimKey, generate_key
from newsletter.doctor.findings import Finding
from newsletter.doctor.preflight import make_dns, run_checks
from tests.doctor.conftest import BASE, DMARC, SENDGRID, SPF, good_zone, smtp_settings
from tests.support.dkimkit import key_record
from tests.support.dns_server import DnsServer


def findings(home: Path, dns: DnsServer, key: DkimKey, **overrides: object) -> list[Finding]:
    settings = smtp_settings(home, dns, key, **overrides)
    return run_checks(settings, make_dns(settings), cheap=True).findings


def only(found: list[Finding], area: str) -> Finding:
    [finding] = [f for f in found if f.area == area]
    return finding


def test_a_well_set_up_domain_passes_every_check(
    home: Path, dns: DnsServer, rsa_key: DkimKey
) -> None:
    dns.zone = good_zone(rsa_key)
    found = findings(home, dns, rsa_key)
    assert [(f.area, f.status) for f in found] == [
        ("spf", "ok"),
        ("dkim", "ok"),
        ("dmarc", "ok"),
        ("alignment", "ok"),
        ("unsubscribe", "ok"),
        ("secret", "ok"),
        ("rdns", "ok"),
    ]
    assert only(found, "spf").message == (
        "example.org: one record, allows the SMTP relay mail.example.org (192.0.2.10), 2/10 lookups"
    )
    assert only(found, "dkim").message == (
        "newsletter._domainkey.example.org: rsa key published and matches"
    )
    assert only(found, "alignment").message == (
        "From example.org aligns with SPF and DKIM (d=example.org)"
    )


LOOKUPS = "".join(f'{n}.spf.test. 60 TXT "v=spf1 -all"\n' for n in range(10))
TOO_MANY = " ".join(f"include:{n}.spf.test" for n in range(10))


@pytest.mark.parametrize(
    ("spf", "message", "fix"),
    [
        (
            "",
            "example.org has no SPF record: receivers cannot tell the relay may send for it",
            'example.org. TXT "v=spf1 ip4:192.0.2.10 ~all"',
        ),
        (
            SPF + 'example.org. 60 TXT "v=spf1 ip4:203.0.113.5 -all"\n',
            "example.org has 2 SPF records; receivers treat that as an error (permerror): keep one",
            'example.org. TXT "v=spf1 a:mail.example.org include:_spf.example.net ~all '
            'ip4:203.0.113.5 -all" (and delete the others)',
        ),
        (
            'example.org. 60 TXT "v=spf1 ip4:203.0.113.5 -all"\n',
            "example.org's SPF record does not allow the SMTP relay mail.example.org "
            "(192.0.2.10): 'v=spf1 ip4:203.0.113.5 -all'",
            'example.org. TXT "v=spf1 ip4:203.0.113.5 ip4:192.0.2.10 -all"',
        ),
        (
            f'example.org. 60 TXT "v=spf1 a:mail.example.org {TOO_MANY} ~all"\n' + LOOKUPS,
            "example.org's SPF needs 11 DNS lookups, over the limit of 10 (receivers give up: "
            "permerror)",
            "flatten it: replace includes you do not send through with ip4:/ip6: terms in "
            f'example.org. TXT "v=spf1 a:mail.example.org {TOO_MANY} ~all"',
        ),
    ],
    ids=["missing", "two-records", "relay-not-allowed", "too-many-lookups"],
)
def test_spf_problems_and_their_fixes(
    home: Path, dns: DnsServer, rsa_key: DkimKey, spf: str, message: str, fix: str
) -> None:
    dns.zone = spf + DMARC + BASE + key_record(rsa_key)
    finding = only(findings(home, dns, rsa_key), "spf")
    assert (finding.status, finding.message, finding.fix) == ("fail", message, fix)


def test_dkim_key_not_published(home: Path, dns: DnsServer, rsa_key: DkimKey) -> None:
    dns.zone = SPF + DMARC + BASE
    finding = only(findings(home, dns, rsa_key), "dkim")
    assert finding.status == "fail"
    assert finding.message == (
        "no DKIM key published at newsletter._domainkey.example.org: receivers cannot check "
        "our signature"
    )
    assert finding.fix == f'newsletter._domainkey.example.org. TXT "{rsa_key.dns_record()}"'


def test_dkim_published_key_is_not_ours(home: Path, dns: DnsServer, rsa_key: DkimKey) -> None:
    dns.zone = SPF + DMARC + BASE + key_record(generate_key("ed25519"))
    finding = only(findings(home, dns, rsa_key), "dkim")
    assert finding.status == "fail"
    assert finding.message == (
        "the key published at newsletter._domainkey.example.org does not match the key in "
        f"{home / 'dkim.key'}: every signature would fail"
    )
    assert finding.fix == f'newsletter._domainkey.example.org. TXT "{rsa_key.dns_record()}"'


def test_smtp_without_signing_says_how_to_sign(
    home: Path, dns: DnsServer, rsa_key: DkimKey
) -> None:
    dns.zone = good_zone(rsa_key)
    found = findings(home, dns, rsa_key, dkim_key_file="")
    dkim = only(found, "dkim")
    assert dkim.status == "fail"
    assert dkim.fix is not None and dkim.fix.startswith("newsletter dkim keygen")
    # SPF alone still aligns From
    assert only(found, "alignment").status == "ok"
    relay = findings(home, dns, rsa_key, dkim_key_file="", smtp_relay_signs=True)
    assert only(relay, "dkim").status == "ok"


def test_dmarc_missing_and_without_policy(home: Path, dns: DnsServer, rsa_key: DkimKey) -> None:
    dns.zone = SPF + BASE + key_record(rsa_key)
    finding = only(findings(home, dns, rsa_key), "dmarc")
    assert (finding.status, finding.fix) == (
        "fail",
        '_dmarc.example.org. TXT "v=DMARC1; p=none; rua=mailto:dmarc@example.org"',
    )
    assert finding.message.startswith("no DMARC record at _dmarc.example.org")
    dns.zone = SPF + BASE + key_record(rsa_key) + '_dmarc.example.org. 60 TXT "v=DMARC1; rua=x"\n'
    finding = only(findings(home, dns, rsa_key), "dmarc")
    assert finding.status == "fail"
    assert finding.message == "_dmarc.example.org: no valid policy (p=) in 'v=DMARC1; rua=x'"


def test_from_aligned_with_neither_spf_nor_dkim(home: Path, dns: DnsServer) -> None:
    # signing as another domain, and no SPF for ours: DMARC cannot pass
    key = generate_key("rsa")
    dns.zone = DMARC + BASE + key_record(key, domain="mailer.example.net")
    found = findings(home, dns, key, dkim_domain="mailer.example.net")
    assert only(found, "dkim").status == "ok"
    alignment = only(found, "alignment")
    assert alignment.status == "fail"
    assert alignment.message == (
        "From example.org aligns with neither SPF (unknown) nor DKIM (mailer.example.net): "
        "DMARC fails"
    )
    assert alignment.fix == (
        "NEWSLETTER_DKIM_DOMAIN=example.org (sign as the From domain), or send From an "
        "address at mailer.example.net"
    )


def test_relay_without_reverse_dns(home: Path, dns: DnsServer, rsa_key: DkimKey) -> None:
    dns.zone = good_zone(rsa_key).replace("10.2.0.192.in-addr.arpa. 60 PTR mail.example.org.", "")
    finding = only(findings(home, dns, rsa_key), "rdns")
    assert finding.status == "fail"
    assert finding.message == (
        "reverse DNS of the relay mail.example.org: 192.0.2.10: no PTR record "
        "(receivers distrust such hosts)"
    )
    assert finding.fix == (
        "ask whoever runs 192.0.2.10 for a PTR record naming mail.example.org, and "
        "mail.example.org. A 192.0.2.10"
    )


def test_mail_requirements_need_https_and_a_secret(
    home: Path, dns: DnsServer, rsa_key: DkimKey
) -> None:
    dns.zone = good_zone(rsa_key)
    found = findings(home, dns, rsa_key, public_url="http://digest.example.org", secret_key="")
    unsubscribe = only(found, "unsubscribe")
    assert unsubscribe.status == "fail"
    assert unsubscribe.fix == "NEWSLETTER_PUBLIC_URL=https://digest.example.org"
    secret = only(found, "secret")
    assert secret.status == "fail"
    assert secret.message.startswith("NEWSLETTER_SECRET_KEY is not set")


def test_sendgrid_domain_authentication(home: Path, dns: DnsServer, rsa_key: DkimKey) -> None:
    dns.zone = SENDGRID + DMARC
    found = findings(home, dns, rsa_key, transport="sendgrid", sendgrid_api_key="SG.x")
    assert [(f.area, f.status) for f in found] == [
        ("spf", "ok"),
        ("dkim", "ok"),
        ("dmarc", "ok"),
        ("alignment", "ok"),
        ("unsubscribe", "ok"),
        ("secret", "ok"),
    ]
    # SPF without SendGrid, and the second DKIM CNAME never published
    dns.zone = SENDGRID.replace(
        'example.org. 60 TXT "v=spf1 include:sendgrid.net ~all"',
        'example.org. 60 TXT "v=spf1 -all"',
    ).replace("s2._domainkey.example.org. 60 CNAME", "s3.example.org. 60 CNAME")
    found = findings(home, dns, rsa_key, transport="sendgrid", sendgrid_api_key="SG.x")
    spf, dkim = only(found, "spf"), only(found, "dkim")
    assert (spf.status, spf.fix) == ("fail", 'example.org. TXT "v=spf1 include:sendgrid.net -all"')
    assert dkim.status == "fail"
    assert dkim.message == (
        "SendGrid's domain authentication for example.org does not resolve: "
        "s2._domainkey.example.org (CNAME missing)"
    )


def test_a_relay_on_this_machine_cannot_be_judged_by_its_address(
    home: Path, dns: DnsServer, rsa_key: DkimKey
) -> None:
    dns.zone = good_zone(rsa_key)
    found = findings(home, dns, rsa_key, smtp_host="localhost")
    spf, rdns = only(found, "spf"), only(found, "rdns")
    assert (spf.status, rdns.status) == ("warn", "warn")
    assert spf.message == (
        "the SMTP relay localhost is on this machine or network: doctor cannot see the public "
        "address it sends from; make sure example.org's SPF allows it: "
        "'v=spf1 a:mail.example.org include:_spf.example.net ~all'"
    )
    dns.zone = DMARC + BASE + key_record(rsa_key)
    missing = only(findings(home, dns, rsa_key, smtp_host="127.0.0.1"), "spf")
    assert (
        missing.fix
        == 'example.org. TXT "v=spf1 ip4:<the public address your relay sends from> ~all"'
    )


def test_an_ed25519_key_is_a_warning_with_the_way_to_rsa(home: Path, dns: DnsServer) -> None:
    key = generate_key("ed25519")
    dns.zone = SPF + DMARC + BASE + key_record(key)
    dkim = only(findings(home, dns, key), "dkim")
    assert dkim.status == "warn"
    assert dkim.fix is not None and "newsletter dkim keygen --algorithm rsa" in dkim.fix


def test_with_verp_spf_is_checked_on_the_bounce_domain(
    home: Path, dns: DnsServer, rsa_key: DkimKey
) -> None:
    """MAIL FROM is bounce+...@bounces.example.org: receivers check SPF there, not on From."""
    dns.zone = good_zone(rsa_key)
    found = findings(home, dns, rsa_key, bounce_address="bounce@bounces.example.org")
    spf = only(found, "spf")
    assert spf.status == "fail"
    assert spf.message.startswith("bounces.example.org has no SPF record")
    assert spf.fix == 'bounces.example.org. TXT "v=spf1 ip4:192.0.2.10 ~all"'
    dns.zone = good_zone(rsa_key) + 'bounces.example.org. 60 TXT "v=spf1 ip4:192.0.2.10 -all"\n'
    found = findings(home, dns, rsa_key, bounce_address="bounce@bounces.example.org")
    assert only(found, "spf").status == "ok"
    # relaxed alignment: bounces.example.org and example.org share the organizational domain
    assert only(found, "alignment").status == "ok"
