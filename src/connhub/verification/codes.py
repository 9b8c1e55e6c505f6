"""Machine-readable verification error codes (API.md section 3, ``verificationErrorCode``).

Every face shows the same seven codes, so a failed check is classified once, where the
driver error is understood (the provider adapter), and never re-guessed from a message.
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    INVALID_CREDENTIALS = "invalid_credentials"
    PERMISSION_DENIED = "permission_denied"
    NETWORK_UNREACHABLE = "network_unreachable"
    TIMEOUT = "timeout"
    INVALID_CONFIG = "invalid_config"
    TOKEN_EXPIRED = "token_expired"
    PROVIDER_ERROR = "provider_error"

    @classmethod
    def coerce(cls, value: str | None, *, default: ErrorCode | None = None) -> ErrorCode:
        """Turn an adapter's string into a code; anything unknown becomes ``provider_error``.

        Adapters are written by several hands; a typo there must not leak an unknown code to
        the wire, where clients switch on these values.
        """
        try:
            return cls(value) if value is not None else (default or cls.PROVIDER_ERROR)
        except ValueError:
            return default or cls.PROVIDER_ERROR
