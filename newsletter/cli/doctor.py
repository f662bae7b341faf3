"""`newsletter doctor` (will receivers accept our mail?) and `newsletter dkim keygen`.

A thin shell over :mod:`newsletter.doctor` and :mod:`newsletter.delivery.dkim_keys`;
both are imported when a command runs, so `newsletter --help` stays quick.
"""


import json
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import typer

from newsletter.console import console

if TYPE_CHECKING:
    from newsletter.config import Settings

DEFAULT_KEY_FILE = Path("dkim.key")


def doctor(
    as_json: Annotated[bool, typer.Option("--json", help="Print the findings as JSON.")] = False,
) -> None:
    """Check what Gmail, Yahoo and others will check before they accept a send.

    SPF, DKIM and DMARC of the sender's domain for the configured transport, the
    one-click unsubscribe, `newsletter serve` reachable at NEWSLETTER_PUBLIC_URL, the
    secret key, reverse DNS of the SMTP relay, and the list's bounce and complaint
    rates. Each problem comes with the DNS record or setting that fixes it. Exit 0 when
    every check passes, 1 otherwise.
    """
    from newsletter.config import load_settings
    from newsletter.doctor.preflight import run_doctor

    report = run_doctor(load_settings())
    if as_json:
        console.print_json(json.dumps(report.as_json()))
    else:
        for line in report.lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if not report.passed:
        raise typer.Exit(1)


def preflight_send(settings: "Settings", *, strict: bool) -> None:
    """Before a real send: show what `newsletter doctor`'s cheap checks find (the day's
    DNS answers, cached); with ``strict``, refuse to send when any fails.

    Printed on stdout with the plan it belongs to, just above the confirmation prompt.
    """
    from newsletter.doctor.preflight import preflight_for_send
    from newsletter.errors import SendRefusedError

    failures = preflight_for_send(settings)
    if not failures:
        return
    console.print(
        f"doctor: {len(failures)} check(s) failed; receivers may reject or junk this send:",
        style="yellow",
        markup=False,
    )
    for finding in failures:
        for line in finding.lines():
            console.print(line, markup=False, highlight=False, soft_wrap=True)
    if strict:
        raise SendRefusedError(
            f"not sending: {len(failures)} deliverability check(s) failed (--strict)",
            hint="fix them (`newsletter doctor` shows each with its fix), or send without --strict",
        )


dkim_app = typer.Typer(
    help="DKIM signing of direct SMTP sends: make the key, get the DNS record.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def txt_strings(text: str, size: int = 255) -> str:
    """A TXT record's text as DNS zone strings: a string holds at most 255 characters."""
    return " ".join(f'"{text[i : i + size]}"' for i in range(0, len(text), size))


@dkim_app.command("keygen")
def keygen(
    algorithm: Annotated[
        str,
        typer.Option(
            "--algorithm",
            help="rsa (2048 bits; every receiver verifies it) or ed25519 (short and fast, "
            "but many verifiers, e.g. Debian 12's SpamAssassin, do not support it yet).",
        ),
    ] = "rsa",
    out: Annotated[
        Path | None,
        typer.Option("--out", help="Key file to write [NEWSLETTER_DKIM_KEY_FILE, else dkim.key]."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace an existing key file.")] = False,
) -> None:
    """Write a new DKIM private key and print the DNS TXT record to publish.

    The selector and domain come from NEWSLETTER_DKIM_SELECTOR (default: newsletter) and
    NEWSLETTER_DKIM_DOMAIN (default: the NEWSLETTER_FROM domain).
    """
    from newsletter.config import load_settings
    from newsletter.delivery.dkim_keys import generate_key, write_key
    from newsletter.errors import ConfigError

    if algorithm not in ("rsa", "ed25519"):
        raise ConfigError(f"--algorithm: {algorithm!r} is neither rsa nor ed25519")
    kind: Literal["rsa", "ed25519"] = "rsa" if algorithm == "rsa" else "ed25519"
    settings = load_settings()
    path = out or settings.dkim_key_file or DEFAULT_KEY_FILE
    target = path if path.is_absolute() else settings.home / path
    key = generate_key(kind)
    write_key(key, target, overwrite=force)
    name = f"{settings.dkim_selector}._domainkey.{settings.dkim_signing_domain}"
    size = " 2048" if kind == "rsa" else ""
    for line in (
        f"wrote {target} ({kind}{size}, readable by you only; keep it out of version control)",
        "publish this DNS record:",
        f"  {name}. TXT {txt_strings(key.dns_record())}",
        f"then set NEWSLETTER_DKIM_KEY_FILE={path} and run `newsletter doctor`",
    ):
        console.print(line, markup=False, highlight=False, soft_wrap=True)


COMMANDS: list[Callable[..., Any]] = [doctor]
