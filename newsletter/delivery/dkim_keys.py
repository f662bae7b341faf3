"""DKIM keys: make one, read the key file, say what to publish in DNS.

A key file is PEM (PKCS#8 or PKCS#1), Ed25519 or RSA (2048 bits by default), as
:func:`generate_key` writes it; dkimpy's own Ed25519 format (the base64 seed that its
``dknewkey`` writes) is read too. Signing with a key is :mod:`.dkim`'s.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa

from newsletter.errors import ConfigError

Algorithm = Literal["ed25519", "rsa"]
KEY_SETTING = "NEWSLETTER_DKIM_KEY_FILE"
#: receivers ignore shorter RSA keys (RFC 8301)
MIN_RSA_BITS = 1024


@dataclass(frozen=True, slots=True, repr=False)
class DkimKey:
    """A private key with what its users need: the signing key, the file, the DNS record."""

    algorithm: Algorithm
    #: the key itself, ready to sign
    private: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey
    #: the ``p=`` of the DNS record (base64)
    public: str
    #: the key as written to the key file (PKCS#8 PEM)
    pem: bytes

    @property
    def signature_algorithm(self) -> str:
        """The ``a=`` of a signature made with this key."""
        return "ed25519-sha256" if self.algorithm == "ed25519" else "rsa-sha256"

    def dns_record(self) -> str:
        """The TXT record's text, e.g. ``v=DKIM1; k=ed25519; p=...``."""
        return f"v=DKIM1; k={self.algorithm}; p={self.public}"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _from_private(key: ed25519.Ed25519PrivateKey | rsa.RSAPrivateKey) -> DkimKey:
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return DkimKey(
            algorithm="ed25519",
            private=key,
            public=_b64(key.public_key().public_bytes_raw()),
            pem=pem,
        )
    spki = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return DkimKey(algorithm="rsa", private=key, public=_b64(spki), pem=pem)


def generate_key(algorithm: Algorithm = "ed25519", *, bits: int = 2048) -> DkimKey:
    """A new key: Ed25519, or RSA of ``bits`` (2048 by default)."""
    if algorithm == "ed25519":
        return _from_private(ed25519.Ed25519PrivateKey.generate())
    if bits < 2048:
        raise ConfigError(f"an RSA DKIM key of {bits} bits is too short: use 2048 or more")
    return _from_private(rsa.generate_private_key(public_exponent=65537, key_size=bits))


def write_key(key: DkimKey, path: Path, *, overwrite: bool = False) -> None:
    """Write the key file, readable by its owner only; never replace a key by accident."""
    if path.exists() and not overwrite:
        raise ConfigError(
            f"{path}: a key file is already there",
            hint="a published key would stop matching; pass --force to replace it",
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key.pem)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def read_key(path: Path) -> DkimKey:
    """Read a key file; a missing or unreadable one is a :class:`ConfigError` naming it."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(
            f"{KEY_SETTING}: {path}: {exc.strerror or exc}",
            hint="create one with `newsletter dkim keygen`",
        ) from None
    if b"-----BEGIN" not in data:
        return _from_seed(path, data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{KEY_SETTING}: {path}: not a readable private key: {exc}") from None
    if isinstance(key, rsa.RSAPrivateKey):
        if key.key_size < MIN_RSA_BITS:
            raise ConfigError(
                f"{KEY_SETTING}: {path}: an RSA key of {key.key_size} bits is too short "
                "(receivers ignore signatures under 1024 bits)",
                hint="make a new one with `newsletter dkim keygen --algorithm rsa`",
            )
        return _from_private(key)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return _from_private(key)
    raise ConfigError(f"{KEY_SETTING}: {path}: DKIM keys are Ed25519 or RSA, not {type(key)}")


def _from_seed(path: Path, data: bytes) -> DkimKey:
    # dkimpy's dknewkey writes an Ed25519 key as the bare base64 of its 32-byte seed
    try:
        seed = base64.b64decode(data.strip(), validate=True)
    except binascii.Error:
        seed = b""
    if len(seed) != 32:
        raise ConfigError(f"{KEY_SETTING}: {path}: not a PEM private key nor an Ed25519 seed")
    return _from_private(ed25519.Ed25519PrivateKey.from_private_bytes(seed))
