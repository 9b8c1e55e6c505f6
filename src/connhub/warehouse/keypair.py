"""The RSA key pair a warehouse connection logs in with (Snowflake key-pair JWT auth).

We generate the pair rather than ask for a password so that no customer secret ever travels
to us: the customer only pastes our *public* key into Snowflake (``RSA_PUBLIC_KEY=``), and the
private key never leaves the service (it is sealed by the core's secret store, never logged
or returned).

Formats (API.md section 1, "Key pair and public key format"):

- private key: unencrypted PKCS#8 PEM. The sealed envelope is its encryption at rest; a
  passphrase stored beside it would protect nothing. The Snowflake adapter reads PKCS#8 PEM.
- public key: base64 of the DER ``SubjectPublicKeyInfo`` on one line, no PEM armour, which is
  what ``ALTER USER ... SET RSA_PUBLIC_KEY='...'`` accepts.

Generation is CPU-bound (4096 bits: roughly 0.3-2 s, with a long tail), so the async entry
point runs it in a bounded worker thread: the event loop keeps serving other requests.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from connhub.errors import ConfigurationError
from connhub.kit.threads import run_blocking

#: Snowflake refuses shorter RSA keys; more than 8192 bits only burns CPU.
MIN_BITS = 2048
MAX_BITS = 8192
PUBLIC_EXPONENT = 65537


@dataclass(frozen=True)
class KeyPair:
    """A fresh pair; ``repr`` leaves the private half out so it cannot end up in a log."""

    private_pem: str = field(repr=False)
    public_key: str


def check_bits(bits: int) -> int:
    """Refuse a configured size Snowflake would reject (or that is absurd) before any work."""
    if isinstance(bits, bool) or not isinstance(bits, int) or not MIN_BITS <= bits <= MAX_BITS:
        raise ConfigurationError(
            f"warehouse_key_bits must be an integer from {MIN_BITS} to {MAX_BITS}, got {bits!r}"
        )
    return bits


def public_key_text(key: rsa.RSAPublicKey) -> str:
    """One-line base64 DER SubjectPublicKeyInfo (Snowflake's ``RSA_PUBLIC_KEY`` form)."""
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode("ascii")


def generate(bits: int) -> KeyPair:
    """Blocking: make a pair of ``bits`` bits. Call :func:`generate_async` from the loop."""
    key = rsa.generate_private_key(public_exponent=PUBLIC_EXPONENT, key_size=check_bits(bits))
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")
    return KeyPair(private_pem=pem, public_key=public_key_text(key.public_key()))


async def generate_async(bits: int) -> KeyPair:
    """:func:`generate` in a worker thread, so a 4096-bit key never stalls the event loop."""
    check_bits(bits)
    return await run_blocking(generate, bits)


def public_key_of(private_pem: str) -> str:
    """The public text for a stored private key (lets tests and repairs re-derive it)."""
    key = serialization.load_pem_private_key(private_pem.encode("ascii"), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("not an RSA private key")
    return public_key_text(key.public_key())
