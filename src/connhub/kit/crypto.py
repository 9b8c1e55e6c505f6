"""Envelope encryption for connection credentials.

Design
------
Every secret gets its own fresh 256-bit *data key*. The plaintext is sealed with
AES-256-GCM under that data key, and the data key itself is *wrapped* (encrypted) by a
key-encryption key (KEK) held by a :class:`KeyProvider` — a local key file
(:class:`LocalKeyFile`) or AWS KMS (:mod:`connhub.kit.kms`). The database only ever
stores the :class:`SealedSecret`: KEK id, wrapped data key, nonce and ciphertext.

Why an envelope rather than encrypting with the KEK directly:

* Rotation is cheap and online. Several KEK versions can be live at once; a new secret
  is wrapped under the *active* one, old secrets keep opening under theirs, and
  :meth:`Envelope.rewrap` moves a secret to the active KEK by re-wrapping its 32-byte
  data key — the ciphertext is never touched. Once nothing references an old version it
  can be retired.
* The KEK can live outside the process (KMS) and sees only data keys, never credentials.
* A random 96-bit nonce is safe because each data key encrypts exactly one message.

Associated data (:func:`secret_aad`) binds a ciphertext to its workspace, connection and
purpose. The same AAD is passed to the data-key wrap as well, so neither the ciphertext
nor the wrapped key can be copied onto another row: it fails to open there
(:class:`KeyMismatch`). Nothing here logs, and no exception message or ``repr`` carries
plaintext or key bytes.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hashlib
import json
import os
import re
import secrets
import stat
import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "CryptoError",
    "Envelope",
    "KeyMismatch",
    "KeyMissing",
    "KeyProvider",
    "KeyRing",
    "LocalKeyFile",
    "SealedSecret",
    "secret_aad",
]

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # GCM's native nonce size
TAG_BYTES = 16
_KEY_FILE_VERSION = 1
_SEALED_VERSION = 1
_KEY_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
_VERSIONED_ID_RE = re.compile(r"v(\d+)-[0-9a-f]+")
_AAD_DOMAIN = b"connhub.secret.v1"


class CryptoError(Exception):
    """Sealing/opening/key handling failed. Messages never include key material or plaintext."""


class KeyMissing(CryptoError):
    """The key file (or another key source) does not exist."""


class KeyMismatch(CryptoError):
    """A sealed secret cannot be opened with the available keys and this associated data."""


def _b64e(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _b64d(text: object, what: str) -> bytes:
    if not isinstance(text, str):
        raise CryptoError(f"{what} must be a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise CryptoError(f"{what} is not valid base64") from None


def secret_aad(workspace_id: str, connection_id: str, purpose: str = "credentials") -> bytes:
    """Canonical AAD for a secret: a domain tag plus length-prefixed UTF-8 fields.

    Length prefixes make the encoding injective, so ``("a:b", "c")`` and ``("a", "b:c")``
    can never collide the way a joined string could.
    """
    fields = (workspace_id, connection_id, purpose)
    if not all(isinstance(f, str) and f for f in fields):
        raise ValueError("workspace_id, connection_id and purpose must be non-empty strings")
    out = bytearray(_AAD_DOMAIN)
    for field in fields:
        raw = field.encode("utf-8")
        out += struct.pack(">I", len(raw))
        out += raw
    return bytes(out)


@dataclass(frozen=True, repr=False)
class SealedSecret:
    """What gets stored: enough to open the secret given the KEK and the same AAD."""

    key_id: str  # KEK version id that wrapped the data key
    wrapped_key: bytes
    nonce: bytes
    ciphertext: bytes  # AESGCM output (ciphertext + 16-byte tag)

    def __post_init__(self) -> None:
        # Reject structurally broken values up front so open() only deals with
        # authentication failures.
        if not isinstance(self.key_id, str) or not self.key_id:
            raise CryptoError("sealed secret has no key id")
        for name in ("wrapped_key", "nonce", "ciphertext"):
            if not isinstance(getattr(self, name), bytes):
                raise CryptoError(f"sealed secret field {name} must be bytes")
        if len(self.nonce) != NONCE_BYTES:
            raise CryptoError(f"sealed secret nonce must be {NONCE_BYTES} bytes")
        if len(self.ciphertext) < TAG_BYTES:
            raise CryptoError("sealed secret ciphertext is shorter than its tag")
        if not self.wrapped_key:
            raise CryptoError("sealed secret has an empty wrapped key")

    def __repr__(self) -> str:
        # Lengths only: the blobs are encrypted, but there is no reason to spray them into logs.
        return (
            f"SealedSecret(key_id={self.key_id!r}, wrapped_key=<{len(self.wrapped_key)} bytes>, "
            f"nonce=<{len(self.nonce)} bytes>, ciphertext=<{len(self.ciphertext)} bytes>)"
        )

    __str__ = __repr__

    def to_json(self) -> str:
        """Serialise to one compact JSON string (base64 fields) for a single TEXT column."""
        return json.dumps(
            {
                "v": _SEALED_VERSION,
                "key_id": self.key_id,
                "wrapped_key": _b64e(self.wrapped_key),
                "nonce": _b64e(self.nonce),
                "ciphertext": _b64e(self.ciphertext),
            },
            separators=(",", ":"),
        )

    @classmethod
    def from_json(cls, s: str) -> SealedSecret:
        """Parse :meth:`to_json` output; :class:`CryptoError` on anything malformed."""
        try:
            data = json.loads(s)
        except (TypeError, ValueError):
            raise CryptoError("sealed secret is not valid JSON") from None
        if not isinstance(data, dict):
            raise CryptoError("sealed secret JSON must be an object")
        if data.get("v") != _SEALED_VERSION:
            raise CryptoError("sealed secret has an unsupported format version")
        key_id = data.get("key_id")
        if not isinstance(key_id, str):
            raise CryptoError("sealed secret key_id must be a string")
        return cls(
            key_id=key_id,
            wrapped_key=_b64d(data.get("wrapped_key"), "wrapped_key"),
            nonce=_b64d(data.get("nonce"), "nonce"),
            ciphertext=_b64d(data.get("ciphertext"), "ciphertext"),
        )


class KeyProvider(Protocol):
    """Holds the key-encryption keys; wraps and unwraps data keys, bound to the AAD."""

    #: Wrap and unwrap are network calls (KMS): async code runs them in a worker thread.
    blocking: bool

    def holds(self, key_id: str) -> bool:
        """Whether ``key_id`` names a key of this provider (a :class:`KeyRing` routes by it)."""
        ...

    @property
    def active_key_id(self) -> str:
        """KEK version new data keys are wrapped under."""
        ...

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        """Wrap ``data_key`` under the active KEK; returns ``(key_id, wrapped)``."""
        ...

    def unwrap(self, key_id: str, wrapped: bytes, *, aad: bytes) -> bytes:
        """Recover a data key; :class:`KeyMismatch` if the key is unknown or the tag fails."""
        ...


@dataclass(frozen=True)
class _KeyState:
    """Active id and key versions, swapped as one reference so readers never see a mix."""

    active: str
    keys: Mapping[str, bytes]


class LocalKeyFile(KeyProvider):
    """KEKs in a local JSON file kept outside the database (mode 0600, directory 0700).

    Format: ``{"version": 1, "active": "<id>", "keys": {"<id>": "<base64 32 bytes>"}}``.
    Every write goes to a temporary file that is fsynced and then renamed over the real
    one, so a crash never leaves a half-written key file. Run :meth:`rotate` and
    :meth:`retire` from one place at a time: there is no cross-process lock.
    """

    blocking = False

    def __init__(self, path: Path, *, active: str, keys: Mapping[str, bytes]) -> None:
        self.path = Path(path)
        self._state = self._validated(active, keys)

    @staticmethod
    def _validated(active: str, keys: Mapping[str, bytes]) -> _KeyState:
        if not keys:
            raise CryptoError("key file holds no keys")
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID_RE.fullmatch(key_id):
                raise CryptoError(f"key file has an invalid key id {key_id!r}")
            if not isinstance(key, bytes) or len(key) != KEY_BYTES:
                raise CryptoError(f"key {key_id!r} must be {KEY_BYTES} bytes")
        if active not in keys:
            raise CryptoError(f"active key {active!r} is not among the keys")
        return _KeyState(active=active, keys=MappingProxyType(dict(keys)))

    def __repr__(self) -> str:
        return (
            f"LocalKeyFile(path={str(self.path)!r}, active={self.active_key_id!r}, "
            f"versions={len(self._state.keys)})"
        )

    # -- loading / creating -------------------------------------------------------------

    @classmethod
    def load(cls, path: Path) -> LocalKeyFile:
        """Read an existing key file; refuses files that group or others can access."""
        path = Path(path)
        try:
            st = path.stat()
        except FileNotFoundError:
            raise KeyMissing(f"key file {path} does not exist") from None
        except OSError as exc:
            raise CryptoError(f"cannot stat key file {path}: {exc.strerror}") from None
        if not stat.S_ISREG(st.st_mode):
            raise CryptoError(f"key file {path} is not a regular file")
        if os.name == "posix" and st.st_mode & 0o077:
            raise CryptoError(
                f"key file {path} is accessible by group/other "
                f"(mode {stat.S_IMODE(st.st_mode):04o}); run: chmod 600 {path}"
            )
        try:
            raw = path.read_bytes()
        except OSError as exc:
            raise CryptoError(f"cannot read key file {path}: {exc.strerror}") from None
        return cls._parse(path, raw)

    @classmethod
    def _parse(cls, path: Path, raw: bytes) -> LocalKeyFile:
        try:
            data: Any = json.loads(raw)
        except ValueError:
            raise CryptoError(f"key file {path} is not valid JSON") from None
        if not isinstance(data, dict) or data.get("version") != _KEY_FILE_VERSION:
            raise CryptoError(f"key file {path} is not a version {_KEY_FILE_VERSION} key file")
        active, keys_b64 = data.get("active"), data.get("keys")
        if not isinstance(active, str) or not isinstance(keys_b64, dict):
            raise CryptoError(f"key file {path} needs an 'active' id and a 'keys' object")
        keys = {kid: _b64d(val, f"key {kid!r} in {path}") for kid, val in keys_b64.items()}
        return cls(path, active=active, keys=keys)

    @classmethod
    def create(cls, path: Path) -> LocalKeyFile:
        """Make a new key file with one fresh key; never overwrites an existing file."""
        try:
            return cls._create_new(Path(path))
        except FileExistsError:
            raise CryptoError(f"key file {path} already exists; refusing to overwrite") from None

    @classmethod
    def _create_new(cls, path: Path) -> LocalKeyFile:
        key_id = _new_key_id(())
        provider = cls(path, active=key_id, keys={key_id: AESGCM.generate_key(bit_length=256)})
        provider._write(provider._state, exclusive=True)
        return provider

    @classmethod
    def load_or_create(cls, path: Path, *, allow_create: bool) -> tuple[LocalKeyFile, bool]:
        """Load the key file, or make it on first run; returns ``(provider, created)``.

        Safe against two workers starting at once: creation never clobbers, and the loser
        of the race loads the winner's file.
        """
        path = Path(path)
        try:
            return cls.load(path), False
        except KeyMissing:
            if not allow_create:
                raise
        try:
            return cls._create_new(path), True
        except FileExistsError:
            return cls.load(path), False

    # -- persistence ----------------------------------------------------------------------

    def _write(self, state: _KeyState, *, exclusive: bool) -> None:
        """Atomically publish ``state``: tmp file (0600) + fsync, then rename or link."""
        _ensure_private_dir(self.path.parent)
        payload = json.dumps(
            {
                "version": _KEY_FILE_VERSION,
                "active": state.active,
                "keys": {kid: _b64e(key) for kid, key in state.keys.items()},
            },
            indent=2,
        ).encode("ascii")
        tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                os.fchmod(fd, 0o600)  # umask can only narrow; make it exact
                os.write(fd, payload)
                os.fsync(fd)
            finally:
                os.close(fd)
            if exclusive:
                os.link(tmp, self.path)  # fails with FileExistsError instead of clobbering
            else:
                os.replace(tmp, self.path)
            _fsync_dir(self.path.parent)
        except FileExistsError:
            raise
        except OSError as exc:
            raise CryptoError(f"cannot write key file {self.path}: {exc.strerror}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()

    # -- KeyProvider ----------------------------------------------------------------------

    @property
    def active_key_id(self) -> str:
        return self._state.active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All live key versions (for listing; reveals no key material)."""
        return tuple(self._state.keys)

    @property
    def fingerprint(self) -> str:
        """Short sha256 over the active id and key: identifies the KEK in logs, reveals nothing."""
        state = self._state
        digest = hashlib.sha256(state.active.encode() + b"\0" + state.keys[state.active])
        return digest.hexdigest()[:16]

    def holds(self, key_id: str) -> bool:
        return key_id in self._state.keys

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        state = self._state
        nonce = os.urandom(NONCE_BYTES)
        wrapped = AESGCM(state.keys[state.active]).encrypt(nonce, data_key, aad)
        return state.active, nonce + wrapped

    def unwrap(self, key_id: str, wrapped: bytes, *, aad: bytes) -> bytes:
        kek = self._state.keys.get(key_id)
        if kek is None:
            raise KeyMismatch(f"no key-encryption key {key_id!r} in {self.path}")
        if len(wrapped) != NONCE_BYTES + KEY_BYTES + TAG_BYTES:
            raise KeyMismatch(f"wrapped data key for {key_id!r} has the wrong length")
        try:
            return AESGCM(kek).decrypt(wrapped[:NONCE_BYTES], wrapped[NONCE_BYTES:], aad)
        except InvalidTag:
            raise KeyMismatch(
                f"data key does not unwrap with key {key_id!r} "
                "(different key file, or the secret belongs to another connection)"
            ) from None

    # -- rotation -------------------------------------------------------------------------

    def rotate(self) -> str:
        """Add a fresh key version, make it active and persist; returns the new id.

        Old versions stay so existing secrets keep opening until they are re-wrapped.
        """
        state = self._state
        key_id = _new_key_id(state.keys)
        keys = {**state.keys, key_id: AESGCM.generate_key(bit_length=256)}
        new_state = self._validated(key_id, keys)
        self._write(new_state, exclusive=False)
        self._state = new_state
        return key_id

    def retire(self, key_id: str) -> None:
        """Drop an old version once every secret wrapped under it has been re-wrapped."""
        state = self._state
        if key_id == state.active:
            raise CryptoError(f"refusing to retire the active key {key_id!r}; rotate first")
        if key_id not in state.keys:
            raise CryptoError(f"no key version {key_id!r} to retire")
        new_state = self._validated(
            state.active, {k: v for k, v in state.keys.items() if k != key_id}
        )
        self._write(new_state, exclusive=False)
        self._state = new_state


class KeyRing(KeyProvider):
    """New data keys under ``active``; older ones open under whichever provider holds them.

    Why: moving to another key holder (the local key file to KMS, say) is then online.
    Secrets keep opening under the old provider until ``connhub keys rewrap`` re-wraps them
    under the new one; after that the old one can go.
    """

    def __init__(self, active: KeyProvider, *older: KeyProvider) -> None:
        self.active = active
        self.providers = (active, *older)
        self.blocking = any(provider.blocking for provider in self.providers)

    def __repr__(self) -> str:
        return f"KeyRing({', '.join(repr(provider) for provider in self.providers)})"

    @property
    def active_key_id(self) -> str:
        return self.active.active_key_id

    def holds(self, key_id: str) -> bool:
        return any(provider.holds(key_id) for provider in self.providers)

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        return self.active.wrap(data_key, aad=aad)

    def unwrap(self, key_id: str, wrapped: bytes, *, aad: bytes) -> bytes:
        for provider in self.providers:
            if provider.holds(key_id):
                return provider.unwrap(key_id, wrapped, aad=aad)
        raise KeyMismatch(f"no configured key provider holds key {key_id!r}")


def _new_key_id(existing: Iterable[str]) -> str:
    """``v<n>-<random>``: ordered for humans, random so two key files never share an id."""
    numbers = [int(m.group(1)) for k in existing if (m := _VERSIONED_ID_RE.fullmatch(k))]
    return f"v{max(numbers, default=0) + 1}-{secrets.token_hex(4)}"


def _ensure_private_dir(directory: Path) -> None:
    """Create missing directories as 0700; leave existing ones (e.g. the cwd) alone."""
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        current = current.parent
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        except OSError as exc:
            raise CryptoError(f"cannot create key directory {d}: {exc.strerror}") from None
        os.chmod(d, 0o700)


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class Envelope:
    """Seals and opens secrets with a fresh data key each, wrapped by ``provider``.

    With a network provider (KMS) these calls block: run them in a worker thread from
    async code.
    """

    def __init__(self, provider: KeyProvider) -> None:
        self.provider = provider

    def __repr__(self) -> str:
        return f"Envelope(provider={self.provider!r})"

    @property
    def blocking(self) -> bool:
        return self.provider.blocking

    def seal(self, plaintext: bytes, *, aad: bytes) -> SealedSecret:
        data_key = AESGCM.generate_key(bit_length=256)
        nonce = os.urandom(NONCE_BYTES)
        ciphertext = AESGCM(data_key).encrypt(nonce, plaintext, aad)
        key_id, wrapped = self.provider.wrap(data_key, aad=aad)
        return SealedSecret(key_id=key_id, wrapped_key=wrapped, nonce=nonce, ciphertext=ciphertext)

    def open(self, sealed: SealedSecret, *, aad: bytes) -> bytes:
        """Decrypt; :class:`KeyMismatch` on an unknown key id, wrong AAD or any tampering."""
        data_key = self.provider.unwrap(sealed.key_id, sealed.wrapped_key, aad=aad)
        try:
            return AESGCM(data_key).decrypt(sealed.nonce, sealed.ciphertext, aad)
        except InvalidTag:
            raise KeyMismatch(
                f"secret sealed under key {sealed.key_id!r} fails authentication "
                "(tampered, or associated data does not match)"
            ) from None

    def seal_json(self, obj: Mapping[str, str], *, aad: bytes) -> SealedSecret:
        """Seal a flat mapping of credential fields as compact UTF-8 JSON."""
        for key, value in obj.items():
            if not isinstance(key, str) or not isinstance(value, str):
                raise TypeError(f"credential fields must map str to str (field {key!r})")
        payload = json.dumps(dict(obj), separators=(",", ":"), ensure_ascii=False)
        return self.seal(payload.encode("utf-8"), aad=aad)

    def open_json(self, sealed: SealedSecret, *, aad: bytes) -> dict[str, str]:
        raw = self.open(sealed, aad=aad)
        try:
            data = json.loads(raw)
        except ValueError:
            raise CryptoError("sealed payload is not JSON") from None
        if not isinstance(data, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in data.items()
        ):
            raise CryptoError("sealed payload is not a JSON object of strings")
        return data

    def rewrap(self, sealed: SealedSecret, *, aad: bytes) -> SealedSecret:
        """Re-wrap the data key under the active KEK; nonce and ciphertext are kept as is.

        Always unwraps first (so a wrong AAD or unavailable key raises even if nothing
        needs doing) and returns ``sealed`` itself when it is already under the active
        key, so callers can skip the write with ``if new is not sealed``.
        """
        data_key = self.provider.unwrap(sealed.key_id, sealed.wrapped_key, aad=aad)
        if sealed.key_id == self.provider.active_key_id:
            return sealed
        key_id, wrapped = self.provider.wrap(data_key, aad=aad)
        return dataclasses.replace(sealed, key_id=key_id, wrapped_key=wrapped)
