"""Which key-encryption keys the service uses, as its Settings say: the key file or AWS KMS.

- Default: the local key file (``CONNHUB_KEY_FILE``, else ``$CONNHUB_HOME/master.key``),
  made on the first run while no secret exists.
- ``CONNHUB_KMS_KEY_ID`` set (a key id, ARN or ``alias/...``; ``CONNHUB_KMS_REGION`` and
  ``CONNHUB_KMS_ENDPOINT_URL`` optional, AWS credentials from boto3's usual chain): new
  secrets are wrapped by that KMS key. A key file that exists stays readable, so secrets
  sealed before the switch keep opening until ``connhub keys rewrap`` moves them; none is
  ever made.

The server and the CLI both build their keys here, so they always agree.
"""

from __future__ import annotations

from connhub.config import Settings
from connhub.kit.crypto import KeyMissing, KeyProvider, KeyRing, LocalKeyFile


def configured(settings: Settings, *, allow_create: bool) -> tuple[KeyProvider, bool]:
    """The key provider ``settings`` select, and whether a new key file was just made.

    Raises ``KeyMissing`` when the key file is needed, absent and may not be made, and
    ``CryptoError`` when a key source is unusable.
    """
    path = settings.resolved_key_file
    if settings.kms_key_id is None:
        return LocalKeyFile.load_or_create(path, allow_create=allow_create)
    from connhub.kit.kms import AwsKmsKeyProvider

    kms = AwsKmsKeyProvider(
        settings.kms_key_id,
        region_name=settings.kms_region,
        endpoint_url=settings.kms_endpoint_url,
    )
    try:
        return KeyRing(kms, LocalKeyFile.load(path)), False
    except KeyMissing:
        return KeyRing(kms), False


def describe(settings: Settings) -> str:
    """The configured key source, for operators' messages (names only, no key material)."""
    if settings.kms_key_id is None:
        return f"key file {settings.resolved_key_file}"
    return f"KMS key {settings.kms_key_id!r}"
