"""Envelope encryption: round trips, binding to workspace/connection, tampering, key files,
rotation, and that nothing secret leaks through repr/str/exceptions."""

from __future__ import annotations

import base64
import json
import os
import stat
import sys
import traceback
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from connhub.kit.crypto import (
    CryptoError,
    Envelope,
    KeyMismatch,
    KeyMissing,
    KeyRing,
    LocalKeyFile,
    SealedSecret,
    secret_aad,
)
from support import moto_kms

AAD = secret_aad("ws_1", "conn_1")
PLAINTEXT = b"hunter2-super-secret-password"


class SpyProvider:
    """Delegates to a real provider, remembering every data key it sees."""

    blocking = False

    def __init__(self, inner: LocalKeyFile) -> None:
        self.inner = inner
        self.data_keys: list[bytes] = []

    def holds(self, key_id: str) -> bool:
        return self.inner.holds(key_id)

    @property
    def active_key_id(self) -> str:
        return self.inner.active_key_id

    def wrap(self, data_key: bytes, *, aad: bytes) -> tuple[str, bytes]:
        self.data_keys.append(data_key)
        return self.inner.wrap(data_key, aad=aad)

    def unwrap(self, key_id: str, wrapped: bytes, *, aad: bytes) -> bytes:
        return self.inner.unwrap(key_id, wrapped, aad=aad)


@pytest.fixture
def key_path(tmp_path: Path) -> Path:
    return tmp_path / "keys" / "connhub.key"


@pytest.fixture
def provider(key_path: Path) -> LocalKeyFile:
    return LocalKeyFile.create(key_path)


@pytest.fixture
def env(provider: LocalKeyFile) -> Envelope:
    return Envelope(provider)


def _kek_bytes(path: Path) -> list[bytes]:
    data = json.loads(path.read_text())
    return [base64.b64decode(v) for v in data["keys"].values()]


def _flip(data: bytes, index: int) -> bytes:
    out = bytearray(data)
    out[index] ^= 0x01
    return bytes(out)


# -- round trips ----------------------------------------------------------------------------


@pytest.mark.parametrize("plaintext", [PLAINTEXT, b"", os.urandom(5000)])
def test_round_trip(env: Envelope, provider: LocalKeyFile, plaintext: bytes) -> None:
    sealed = env.seal(plaintext, aad=AAD)
    assert sealed.key_id == provider.active_key_id
    assert len(sealed.nonce) == 12
    assert len(sealed.ciphertext) == len(plaintext) + 16
    assert plaintext == b"" or plaintext not in sealed.ciphertext
    assert env.open(sealed, aad=AAD) == plaintext


def test_each_seal_uses_fresh_data_key_and_nonce(provider: LocalKeyFile) -> None:
    spy = SpyProvider(provider)
    env = Envelope(spy)
    a, b = env.seal(PLAINTEXT, aad=AAD), env.seal(PLAINTEXT, aad=AAD)
    assert spy.data_keys[0] != spy.data_keys[1]
    assert all(len(k) == 32 for k in spy.data_keys)
    assert a.nonce != b.nonce and a.ciphertext != b.ciphertext and a.wrapped_key != b.wrapped_key


def test_json_round_trip(env: Envelope) -> None:
    creds = {"user": "alice", "password": "p@ss wörd \u2603", "token": ""}
    sealed = env.seal_json(creds, aad=AAD)
    assert env.open_json(sealed, aad=AAD) == creds


def test_seal_json_rejects_non_string_values(env: Envelope) -> None:
    with pytest.raises(TypeError, match="port"):
        env.seal_json({"port": 5432}, aad=AAD)  # type: ignore[dict-item]


def test_open_json_rejects_non_object_payload(env: Envelope) -> None:
    sealed = env.seal(b'["not", "an", "object"]', aad=AAD)
    with pytest.raises(CryptoError, match="object of strings"):
        env.open_json(sealed, aad=AAD)


def test_sealed_secret_json_round_trip(env: Envelope) -> None:
    sealed = env.seal(PLAINTEXT, aad=AAD)
    text = sealed.to_json()
    assert isinstance(json.loads(text), dict)
    restored = SealedSecret.from_json(text)
    assert restored == sealed
    assert env.open(restored, aad=AAD) == PLAINTEXT


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        "[]",
        '{"v": 2, "key_id": "k", "wrapped_key": "", "nonce": "", "ciphertext": ""}',
        '{"v": 1, "key_id": "k", "wrapped_key": "!!", "nonce": "AAAA", "ciphertext": "AAAA"}',
        '{"v": 1, "wrapped_key": "AAAA", "nonce": "AAAAAAAAAAAAAAAA", "ciphertext": "AAAA"}',
        # nonce decodes to 3 bytes, not 12
        '{"v": 1, "key_id": "k", "wrapped_key": "AAAA", "nonce": "AAAA",'
        ' "ciphertext": "AAAAAAAAAAAAAAAAAAAAAA=="}',
    ],
)
def test_sealed_secret_from_json_rejects_malformed(text: str) -> None:
    with pytest.raises(CryptoError):
        SealedSecret.from_json(text)


# -- binding and tampering ------------------------------------------------------------------


@pytest.mark.parametrize(
    "other_aad",
    [
        secret_aad("ws_2", "conn_1"),  # another workspace
        secret_aad("ws_1", "conn_2"),  # another connection
        secret_aad("ws_1", "conn_1", purpose="oauth"),
        b"",
    ],
)
def test_swapped_aad_fails(env: Envelope, other_aad: bytes) -> None:
    sealed = env.seal(PLAINTEXT, aad=AAD)
    with pytest.raises(KeyMismatch):
        env.open(sealed, aad=other_aad)
    with pytest.raises(KeyMismatch):
        env.rewrap(sealed, aad=other_aad)


def test_wrapped_key_is_bound_to_aad_too(provider: LocalKeyFile) -> None:
    """Pairing a victim's ciphertext with a data key unwrapped under another AAD must fail."""
    _, wrapped = provider.wrap(os.urandom(32), aad=AAD)
    with pytest.raises(KeyMismatch):
        provider.unwrap(provider.active_key_id, wrapped, aad=secret_aad("ws_1", "conn_2"))


def test_secret_aad_is_unambiguous() -> None:
    assert secret_aad("a:b", "c") != secret_aad("a", "b:c")
    assert secret_aad("ab", "c") != secret_aad("a", "bc")
    assert secret_aad("w", "c") == secret_aad("w", "c", "credentials")
    with pytest.raises(ValueError):
        secret_aad("", "c")


@pytest.mark.parametrize("field", ["ciphertext", "nonce", "wrapped_key"])
@pytest.mark.parametrize("where", [0, -1, 7])
def test_tampering_fails(env: Envelope, field: str, where: int) -> None:
    sealed = env.seal(PLAINTEXT, aad=AAD)
    blob: bytes = getattr(sealed, field)
    changes: dict[str, Any] = {field: _flip(blob, where)}
    tampered = replace(sealed, **changes)
    with pytest.raises(KeyMismatch):
        env.open(tampered, aad=AAD)


def test_truncated_wrapped_key_fails(env: Envelope) -> None:
    sealed = env.seal(PLAINTEXT, aad=AAD)
    with pytest.raises(KeyMismatch):
        env.open(replace(sealed, wrapped_key=sealed.wrapped_key[:-1]), aad=AAD)


def test_unknown_key_id_fails(env: Envelope) -> None:
    sealed = env.seal(PLAINTEXT, aad=AAD)
    with pytest.raises(KeyMismatch, match="v99-nope"):
        env.open(replace(sealed, key_id="v99-nope"), aad=AAD)


# -- key file -------------------------------------------------------------------------------


def test_key_file_modes_and_format(tmp_path: Path) -> None:
    path = tmp_path / "a" / "b" / "connhub.key"
    provider = LocalKeyFile.create(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert stat.S_IMODE(path.parent.parent.stat().st_mode) == 0o700
    data = json.loads(path.read_text())
    assert data["version"] == 1
    assert data["active"] == provider.active_key_id
    assert list(data["keys"]) == [provider.active_key_id]
    assert len(base64.b64decode(data["keys"][provider.active_key_id])) == 32
    assert [p.name for p in path.parent.iterdir()] == ["connhub.key"]  # no tmp left behind


def test_key_file_mode_survives_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "k" / "connhub.key"
        provider = LocalKeyFile.create(path)
        provider.rotate()
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700


def test_existing_parent_dir_mode_is_left_alone(tmp_path: Path) -> None:
    tmp_path.chmod(0o755)
    LocalKeyFile.create(tmp_path / "connhub.key")
    assert stat.S_IMODE(tmp_path.stat().st_mode) == 0o755


def test_load_round_trip(env: Envelope, provider: LocalKeyFile, key_path: Path) -> None:
    sealed = env.seal(PLAINTEXT, aad=AAD)
    loaded = LocalKeyFile.load(key_path)
    assert loaded.active_key_id == provider.active_key_id
    assert loaded.fingerprint == provider.fingerprint
    assert Envelope(loaded).open(sealed, aad=AAD) == PLAINTEXT


def test_load_missing_raises_key_missing(tmp_path: Path) -> None:
    with pytest.raises(KeyMissing):
        LocalKeyFile.load(tmp_path / "nope.key")


def test_load_refuses_group_or_other_access(provider: LocalKeyFile, key_path: Path) -> None:
    key_path.chmod(0o644)
    with pytest.raises(CryptoError, match="chmod 600") as info:
        LocalKeyFile.load(key_path)
    assert not isinstance(info.value, KeyMissing)
    key_path.chmod(0o620)
    with pytest.raises(CryptoError, match="group/other"):
        LocalKeyFile.load(key_path)
    key_path.chmod(0o400)  # read-only for the owner is fine
    assert LocalKeyFile.load(key_path).active_key_id == provider.active_key_id


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"[]",
        b'{"version": 2, "active": "v1-a", "keys": {"v1-a": "' + b"A" * 44 + b'"}}',
        b'{"version": 1, "active": "v2-b", "keys": {"v1-a": "' + b"A" * 44 + b'"}}',
        b'{"version": 1, "active": "v1-a", "keys": {"v1-a": "AAAA"}}',  # 3-byte key
        b'{"version": 1, "active": "v1-a", "keys": {"v1-a": "!!"}}',
        b'{"version": 1, "active": "v1-a", "keys": {}}',
        b'{"version": 1, "active": "bad id", "keys": {"bad id": "' + b"A" * 44 + b'"}}',
    ],
)
def test_load_refuses_malformed(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "connhub.key"
    path.write_bytes(content)
    path.chmod(0o600)
    with pytest.raises(CryptoError):
        LocalKeyFile.load(path)


def test_create_refuses_to_overwrite(provider: LocalKeyFile, key_path: Path) -> None:
    before = key_path.read_bytes()
    with pytest.raises(CryptoError, match="already exists"):
        LocalKeyFile.create(key_path)
    assert key_path.read_bytes() == before
    assert [p.name for p in key_path.parent.iterdir()] == [key_path.name]


def test_load_or_create(tmp_path: Path) -> None:
    path = tmp_path / "d" / "connhub.key"
    with pytest.raises(KeyMissing):
        LocalKeyFile.load_or_create(path, allow_create=False)
    assert not path.exists()
    first, created = LocalKeyFile.load_or_create(path, allow_create=True)
    assert created is True and path.exists()
    second, created = LocalKeyFile.load_or_create(path, allow_create=True)
    assert created is False
    assert second.fingerprint == first.fingerprint
    third, created = LocalKeyFile.load_or_create(path, allow_create=False)
    assert created is False and third.fingerprint == first.fingerprint


def test_different_key_file_cannot_open(env: Envelope, tmp_path: Path) -> None:
    sealed = env.seal(PLAINTEXT, aad=AAD)
    other = Envelope(LocalKeyFile.create(tmp_path / "other" / "connhub.key"))
    with pytest.raises(KeyMismatch):
        other.open(sealed, aad=AAD)


def test_different_key_file_with_same_key_id_cannot_open(
    env: Envelope, provider: LocalKeyFile, tmp_path: Path
) -> None:
    """Even if ids collide, the tag check catches a different key under the same id."""
    sealed = env.seal(PLAINTEXT, aad=AAD)
    impostor = LocalKeyFile(
        tmp_path / "x.key", active=provider.active_key_id, keys={provider.active_key_id: b"\0" * 32}
    )
    with pytest.raises(KeyMismatch, match="does not unwrap"):
        Envelope(impostor).open(sealed, aad=AAD)


def test_fingerprint(provider: LocalKeyFile, key_path: Path) -> None:
    fp = provider.fingerprint
    assert len(fp) == 16 and int(fp, 16) >= 0
    for kek in _kek_bytes(key_path):
        assert kek.hex()[:16] != fp and kek.hex() not in fp
    provider.rotate()
    assert provider.fingerprint != fp


# -- rotation -------------------------------------------------------------------------------


def test_rotate_rewrap_retire(env: Envelope, provider: LocalKeyFile, key_path: Path) -> None:
    old_id = provider.active_key_id
    old_a = env.seal(b"secret-a", aad=secret_aad("ws", "a"))
    old_b = env.seal(b"secret-b", aad=secret_aad("ws", "b"))

    new_id = provider.rotate()
    assert new_id != old_id and provider.active_key_id == new_id
    assert set(provider.key_ids) == {old_id, new_id}
    assert LocalKeyFile.load(key_path).active_key_id == new_id  # persisted
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600

    # Old secrets keep opening; new ones go under the new key.
    assert env.open(old_a, aad=secret_aad("ws", "a")) == b"secret-a"
    assert env.seal(b"x", aad=AAD).key_id == new_id

    moved = env.rewrap(old_a, aad=secret_aad("ws", "a"))
    assert moved.key_id == new_id
    assert moved.nonce == old_a.nonce and moved.ciphertext == old_a.ciphertext
    assert moved.wrapped_key != old_a.wrapped_key
    assert env.rewrap(moved, aad=secret_aad("ws", "a")) is moved  # already current

    provider.retire(old_id)
    assert provider.key_ids == (new_id,)
    assert env.open(moved, aad=secret_aad("ws", "a")) == b"secret-a"
    with pytest.raises(KeyMismatch):
        env.open(old_b, aad=secret_aad("ws", "b"))

    reloaded = Envelope(LocalKeyFile.load(key_path))
    assert reloaded.open(moved, aad=secret_aad("ws", "a")) == b"secret-a"
    with pytest.raises(KeyMismatch):
        reloaded.open(old_b, aad=secret_aad("ws", "b"))
    assert old_id not in key_path.read_text()


def test_rotate_keeps_ids_ordered_and_unique(provider: LocalKeyFile) -> None:
    ids = [provider.active_key_id] + [provider.rotate() for _ in range(3)]
    assert [i.split("-")[0] for i in ids] == ["v1", "v2", "v3", "v4"]
    assert len(set(ids)) == 4


def test_retire_refuses_active_and_unknown(provider: LocalKeyFile, key_path: Path) -> None:
    with pytest.raises(CryptoError, match="active"):
        provider.retire(provider.active_key_id)
    with pytest.raises(CryptoError, match="no key version"):
        provider.retire("v42-dead")
    assert LocalKeyFile.load(key_path).key_ids == (provider.active_key_id,)


# -- no leaks -------------------------------------------------------------------------------


def _leak_needles(plaintext: bytes, keys: list[bytes]) -> list[str]:
    needles = [plaintext.decode()]
    for key in keys:
        needles += [repr(key), key.hex(), base64.b64encode(key).decode()]
    return needles


def test_nothing_secret_in_repr_str_or_errors(key_path: Path, provider: LocalKeyFile) -> None:
    spy = SpyProvider(provider)
    env = Envelope(spy)
    sealed = env.seal(PLAINTEXT, aad=AAD)
    needles = _leak_needles(PLAINTEXT, spy.data_keys + _kek_bytes(key_path))

    texts = [repr(sealed), str(sealed), repr(provider), str(provider), repr(env), sealed.to_json()]
    assert "ciphertext=<" in repr(sealed)

    failures: list[BaseException] = []
    for attempt in (
        lambda: env.open(sealed, aad=secret_aad("ws_2", "conn_1")),
        lambda: env.open(replace(sealed, ciphertext=_flip(sealed.ciphertext, 0)), aad=AAD),
        lambda: env.open(replace(sealed, key_id="v9-zz"), aad=AAD),
        lambda: env.open_json(sealed, aad=AAD),  # plaintext is not JSON
        lambda: LocalKeyFile.create(key_path),
    ):
        with pytest.raises(CryptoError) as info:
            attempt()
        failures.append(info.value)
    key_path.chmod(0o644)
    with pytest.raises(CryptoError) as info:
        LocalKeyFile.load(key_path)
    failures.append(info.value)

    for exc in failures:
        texts += [str(exc), repr(exc), "".join(traceback.format_exception(exc))]
    for text in texts:
        for needle in needles:
            assert needle not in text


# -- AWS KMS via moto -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def kms_client() -> Iterator[Any]:
    with moto_kms.kms_endpoint() as endpoint:
        yield moto_kms.kms_client(endpoint)


def test_kms_provider_round_trip_binding_and_rotation(kms_client: Any) -> None:
    from connhub.kit.kms import AwsKmsKeyProvider

    key1 = kms_client.create_key(Description="connhub test 1")["KeyMetadata"]
    key2 = kms_client.create_key(Description="connhub test 2")["KeyMetadata"]
    kms_client.create_alias(AliasName="alias/connhub-test", TargetKeyId=key1["KeyId"])

    provider1 = AwsKmsKeyProvider("alias/connhub-test", client=kms_client)
    assert provider1.active_key_id == key1["Arn"]  # alias resolved so ids compare
    env1 = Envelope(provider1)
    sealed = env1.seal_json({"password": "s3cret"}, aad=AAD)
    assert sealed.key_id == key1["Arn"]
    assert env1.open_json(sealed, aad=AAD) == {"password": "s3cret"}
    assert env1.open_json(SealedSecret.from_json(sealed.to_json()), aad=AAD) == {
        "password": "s3cret"
    }

    # Encryption context binds the wrapped key to the AAD.
    with pytest.raises(KeyMismatch) as info:
        env1.open(sealed, aad=secret_aad("ws_2", "conn_1"))
    assert "s3cret" not in str(info.value)
    with pytest.raises(KeyMismatch):
        env1.open(replace(sealed, wrapped_key=_flip(sealed.wrapped_key, -3)), aad=AAD)
    # A blob presented as belonging to a different KMS key is refused.
    with pytest.raises(KeyMismatch):
        env1.open(replace(sealed, key_id=key2["Arn"]), aad=AAD)

    # Rotation to a new CMK: old secrets still open, rewrap moves them.
    env2 = Envelope(AwsKmsKeyProvider(key2["KeyId"], client=kms_client))
    assert env2.open_json(sealed, aad=AAD) == {"password": "s3cret"}
    moved = env2.rewrap(sealed, aad=AAD)
    assert moved.key_id == key2["Arn"] and moved.ciphertext == sealed.ciphertext
    assert env2.open_json(moved, aad=AAD) == {"password": "s3cret"}
    assert env2.rewrap(moved, aad=AAD) is moved


def test_kms_provider_unknown_key_is_crypto_error(kms_client: Any) -> None:
    from connhub.kit.kms import AwsKmsKeyProvider

    provider = AwsKmsKeyProvider("alias/does-not-exist", client=kms_client)
    with pytest.raises(CryptoError, match="NotFound"):
        Envelope(provider).seal(PLAINTEXT, aad=AAD)


def test_kms_provider_without_boto3_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    from connhub.kit.kms import AwsKmsKeyProvider

    monkeypatch.setitem(sys.modules, "botocore.exceptions", None)
    with pytest.raises(CryptoError, match="pip install boto3"):
        AwsKmsKeyProvider("alias/x")


def test_key_ring_wraps_under_the_active_provider_and_opens_under_the_holder(
    tmp_path: Path,
) -> None:
    old = LocalKeyFile.create(tmp_path / "old.key")
    new = LocalKeyFile.create(tmp_path / "new.key")
    sealed_before = Envelope(old).seal_json({"password": "s3cret"}, aad=AAD)
    ring = KeyRing(new, old)
    assert not ring.blocking and ring.active_key_id == new.active_key_id
    assert ring.holds(old.active_key_id) and ring.holds(new.active_key_id)

    envelope = Envelope(ring)
    assert envelope.open_json(sealed_before, aad=AAD) == {"password": "s3cret"}
    sealed_after = envelope.seal_json({"password": "s3cret"}, aad=AAD)
    assert sealed_after.key_id == new.active_key_id
    moved = envelope.rewrap(sealed_before, aad=AAD)
    assert moved.key_id == new.active_key_id and moved.ciphertext == sealed_before.ciphertext
    assert Envelope(new).open_json(moved, aad=AAD) == {"password": "s3cret"}

    with pytest.raises(KeyMismatch, match="no configured key provider holds"):
        Envelope(KeyRing(new)).open(sealed_before, aad=AAD)


def test_kms_provider_holds_only_kms_arns(kms_client: Any) -> None:
    from connhub.kit.kms import AwsKmsKeyProvider

    key = kms_client.create_key(Description="connhub holds")["KeyMetadata"]
    provider = AwsKmsKeyProvider(key["KeyId"], client=kms_client)
    assert provider.blocking and KeyRing(provider).blocking
    assert provider.holds(provider.active_key_id)
    assert not provider.holds("v1-0123abcd")  # a key file's id
