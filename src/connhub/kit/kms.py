"""AWS KMS as the key-encryption-key holder for :class:`connhub.kit.crypto.Envelope`.

Data keys are generated locally (as for :class:`~connhub.kit.crypto.LocalKeyFile`) and
sent to ``kms:Encrypt``/``kms:Decrypt`` for wrapping, so the KEK never leaves KMS. The
secret's AAD travels as the KMS encryption context ``{"aad": base64(aad)}``, which KMS
authenticates just like GCM associated data: a wrapped key copied to another connection
does not decrypt. The key id stored in a sealed secret is the key ARN KMS reports, so a
new CMK (or a re-pointed alias, after a restart) makes old secrets candidates for
``Envelope.rewrap`` while they keep opening meanwhile. boto3 is optional and imported
only when this provider is built. Calls block on the network: run them off the event loop.
"""

from __future__ import annotations

import base64
from typing import Any

from connhub.kit.crypto import CryptoError, KeyMismatch, KeyProvider

__all__ = ["AwsKmsKeyProvider"]

# KMS error codes meaning "these keys cannot open this blob", not "KMS is unwell".
_MISMATCH_CODES = frozenset(
    {
        "InvalidCiphertextException",
        "IncorrectKeyException",
        "NotFoundException",
        "DisabledException",
        "KMSInvalidStateException",
        "AccessDeniedException",
    }
)


class AwsKmsKeyProvider(KeyProvider):
    """Wraps data keys with a KMS symmetric key (id, ARN or ``alias/...``)."""

    blocking = True

    def __init__(
        self,
        key_id: str,
        *,
        client: Any | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
    ) -> None:
        try:
            from botocore.exceptions import BotoCoreError, ClientError
        except ImportError:
            raise CryptoError("the AWS KMS key provider needs boto3: pip install boto3") from None
        if client is None:
            import boto3

            client = boto3.client("kms", region_name=region_name, endpoint_url=endpoint_url)
        self._client = client
        self._key_id = key_id
        self._arn: str | None = None
        self._client_error: type[Exception] = ClientError
        self._boto_error: type[Exception] = BotoCoreError

    def __repr__(self) -> str:
        return f"AwsKmsKeyProvider(key_id={self._key_id!r})"

    def holds(self, key_id: str) -> bool:
        """KMS names its keys by ARN (``arn:<partition>:kms:...``), which ``wrap`` stores."""
        return key_id.startswith("arn:") and ":kms:" in key_id

    def _call(self, op: str, **kwargs: Any) -> dict[str, Any]:
        """Run a KMS call, mapping failures to CryptoError/KeyMismatch without echoing inputs."""
        try:
            response: dict[str, Any] = getattr(self._client, op)(**kwargs)
        except self._client_error as exc:
            err = getattr(exc, "response", {}).get("Error", {})
            code, msg = str(err.get("Code", "Unknown")), str(err.get("Message", ""))
            cls = KeyMismatch if code in _MISMATCH_CODES else CryptoError
            raise cls(f"KMS {op} failed: {code}: {msg}") from None
        except self._boto_error as exc:
            raise CryptoError(f"KMS {op} failed: {type(exc).__name__}") from None
        return response

    @staticmethod
    def _context(aad: bytes) -> dict[str, str]:
        return {"aad": base64.b64encode(aad).decode("ascii")}

    @property
    def active_key_id(self) -> str:
        """The configured key resolved to its ARN once, so it compares equal to stored ids."""
        if self._arn is None:
            meta = self._call("describe_key", KeyId=self._key_id)["KeyMetadata"]
            self._arn = str(meta["Arn"])
        return self._arn

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        response = self._call(
            "encrypt",
            KeyId=self.active_key_id,
            Plaintext=data_key,
            EncryptionContext=self._context(aad),
        )
        return str(response["KeyId"]), bytes(response["CiphertextBlob"])

    def unwrap(self, key_id: str, wrapped: bytes, *, aad: bytes) -> bytes:
        response = self._call(
            "decrypt",
            KeyId=key_id,  # KMS then refuses a blob made under a different key
            CiphertextBlob=wrapped,
            EncryptionContext=self._context(aad),
        )
        return bytes(response["Plaintext"])
