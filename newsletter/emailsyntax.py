"""Address syntax: a quick rule for plain ASCII addresses, ``email-validator`` for the rest.

``email-validator`` is the project's authority on address syntax, but importing it
compiles large Unicode regular expressions (about 20 ms of a command's start-up, more
than the command's own work on a small list). Most addresses are plain ASCII at an
ordinary domain, so :func:`quick_normalize` takes a *strict subset* of what
``email-validator`` 2.x accepts with ``check_deliverability=False`` and its default
options (globally deliverable, no test environment) and returns the *identical*
normalised form; it answers None for everything else, which goes to ``email-validator``.
It never rejects an address: it only declines to decide. What it declines, though
``email-validator`` may accept it:

* any character outside ``A-Z a-z 0-9 _ + -`` in a dot-separated local part (quoted
  local parts, ``!#$%&'*/=?^`{|}~``, non-ASCII), a local part over 64 characters, and
  role mailboxes (RFC 2142) whose case ``email-validator`` folds;
* a domain with fewer than two labels, a label that is empty, longer than 63
  characters or starts or ends with ``-``, ``--`` anywhere (IDNA ``xn--`` labels and
  RFC 5891's reserved ``ab--`` labels), a top-level label that is not 2 to 63 letters,
  and special-use or reserved top-level names (``test``, ``localhost``, ...);
* an address over 254 characters.

The normalised form is the address with its domain lowercased (what UTS-46 mapping does
to an ASCII host name). tests/test_emailsyntax.py checks the subset and the identity
against ``email-validator`` itself, on generated addresses and a list of edge cases.
"""

from __future__ import annotations

import re
from typing import Final

#: role mailboxes (RFC 2142, and RFC 5321's postmaster) that email-validator lowercases:
#: left to it, so the quick rule never has to fold a local part's case
ROLE_MAILBOXES: Final = frozenset(
    {
        "info", "marketing", "sales", "support",
        "abuse", "noc", "security",
        "postmaster", "hostmaster", "usenet", "news", "webmaster", "www", "uucp", "ftp",
    }
)  # fmt: skip
#: top-level names no mail is delivered under (RFC 6761, 6762, 7686, 9476, ICANN's
#: ``internal``), and ``example`` (RFC 2606): left to email-validator, which rejects
#: most of them; a wider list than its own only sends more addresses its way
RESERVED_TLDS: Final = frozenset(
    {"arpa", "invalid", "local", "localhost", "onion", "test", "alt", "example", "internal"}
)
MAX_ADDRESS: Final = 254  # RFC 5321 4.5.3.1.3, in octets (the quick rule is ASCII only)
MAX_LOCAL: Final = 64  # RFC 5321 4.5.3.1.1

_QUICK: Final = re.compile(
    r"[A-Za-z0-9_+-]+(?:\.[A-Za-z0-9_+-]+)*"  # local part: dot-atom of a narrow alphabet
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"  # labels of 1 to 63
    r"([A-Za-z]{2,63})\Z"  # top-level label: letters only
)


def quick_normalize(address: str) -> str | None:
    """The normalised form of a plain ASCII address, or None: ask ``email-validator``.

    Never raises; None says nothing about validity (see the module's docstring).
    """
    if len(address) > MAX_ADDRESS:
        return None
    match = _QUICK.match(address)
    if match is None:
        return None
    local, _, domain = address.rpartition("@")
    if (
        len(local) > MAX_LOCAL
        or "--" in domain
        or match.group(1).lower() in RESERVED_TLDS
        or local.lower() in ROLE_MAILBOXES
    ):
        return None
    return f"{local}@{domain.lower()}"


class AddressSyntaxError(ValueError):
    """An address ``email-validator`` refuses; the message is its reason."""


def normalize_syntax(address: str) -> str:
    """Check an address's syntax (no DNS) and return its normalised form, as
    ``email-validator`` does; raises :class:`AddressSyntaxError`."""
    quick = quick_normalize(address)
    if quick is not None:
        return quick
    # imported only here: its grammar's regexes take about 20 ms to compile
    from email_validator import EmailNotValidError, validate_email

    try:
        return validate_email(address, check_deliverability=False).normalized
    except EmailNotValidError as exc:
        raise AddressSyntaxError(str(exc)) from None
