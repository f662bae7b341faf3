"""TLS for the mail connections (IMAP, SMTP): certificates and host names always checked.

One helper so the contact mailbox and the SMTP relay trust the same way: the system's
CA certificates, or only a private CA's (a mail server inside an organisation) named by
a setting. There is no switch that turns the checks off.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from newsletter.errors import ConfigError

__all__ = ["client_tls_context", "connect_hint"]


def client_tls_context(ca_file: Path | None, setting: str) -> ssl.SSLContext:
    """A client context that verifies the certificate chain and the host name.

    ``ca_file`` (PEM) replaces the system's trust store; ``setting`` names the variable
    that set it, for the error when the file cannot be used.
    """
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(
            f"{setting}: cannot use {ca_file} as CA certificates: {reason}",
            hint="give a PEM file with the certificate of the CA that signed the server's",
        ) from None


def connect_hint(exc: BaseException, prefix: str) -> str:
    """What to check after a failed connection; a refused certificate points at the CA
    setting (``prefix`` is ``NEWSLETTER_IMAP`` or ``SMTP``)."""
    if isinstance(exc, ssl.SSLCertVerificationError):
        return (
            f"the server's certificate is not trusted or not for this name: use the host "
            f"name it was issued for in {prefix}_HOST, or set {prefix}_CA_FILE to the "
            "certificate of the private CA that signed it"
        )
    return f"check {prefix}_HOST, {prefix}_PORT and {prefix}_SECURITY"
