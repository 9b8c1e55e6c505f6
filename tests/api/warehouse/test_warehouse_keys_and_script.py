"""The key pair and the setup script, below the HTTP layer."""

from __future__ import annotations

import asyncio
import base64
import threading

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from wh_support import base, body

from connhub.errors import ConfigurationError
from connhub.warehouse import keypair, setup_script

KEY = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAtest+/key=="

EXPECTED = """-- Flagsmith Analytics
USE ROLE SYSADMIN;
CREATE WAREHOUSE IF NOT EXISTS COMPUTE_WH WAREHOUSE_SIZE='XSMALL' AUTO_SUSPEND=60 AUTO_RESUME=TRUE INITIALLY_SUSPENDED=TRUE;
CREATE DATABASE IF NOT EXISTS FLAGSMITH;
CREATE SCHEMA IF NOT EXISTS FLAGSMITH.ANALYTICS;
CREATE STAGE IF NOT EXISTS FLAGSMITH.ANALYTICS.FLAGSMITH_STAGE;
USE ROLE SECURITYADMIN;
CREATE ROLE IF NOT EXISTS FLAGSMITH_LOADER;
GRANT ROLE FLAGSMITH_LOADER TO ROLE SYSADMIN;
CREATE USER IF NOT EXISTS FLAGSMITH_SERVICE TYPE=SERVICE DEFAULT_ROLE=FLAGSMITH_LOADER DEFAULT_WAREHOUSE=COMPUTE_WH
  DEFAULT_NAMESPACE=FLAGSMITH.ANALYTICS RSA_PUBLIC_KEY='{key}';
ALTER USER FLAGSMITH_SERVICE SET RSA_PUBLIC_KEY='{key}';
GRANT ROLE FLAGSMITH_LOADER TO USER FLAGSMITH_SERVICE;
GRANT USAGE ON WAREHOUSE COMPUTE_WH TO ROLE FLAGSMITH_LOADER;
GRANT USAGE ON DATABASE FLAGSMITH TO ROLE FLAGSMITH_LOADER;
GRANT USAGE, CREATE TABLE ON SCHEMA FLAGSMITH.ANALYTICS TO ROLE FLAGSMITH_LOADER;
GRANT READ, WRITE ON STAGE FLAGSMITH.ANALYTICS.FLAGSMITH_STAGE TO ROLE FLAGSMITH_LOADER;
"""  # noqa: E501 - API.md's template, line for line

DEFAULT_NAMES = {
    "warehouse": "COMPUTE_WH",
    "database": "FLAGSMITH",
    "schema": "ANALYTICS",
    "role": "FLAGSMITH_LOADER",
    "user": "FLAGSMITH_SERVICE",
}


def test_script_is_the_contract_template() -> None:
    script = setup_script.render(
        product_name="Flagsmith Analytics", public_key=KEY, **DEFAULT_NAMES
    )
    assert script == EXPECTED.format(key=KEY)


def test_script_upper_cases_and_names_the_product_on_one_line() -> None:
    script = setup_script.render(
        product_name="Acme\nDROP DATABASE X;",
        public_key=KEY,
        **{**DEFAULT_NAMES, "role": "loader_role"},
    )
    first, second = script.splitlines()[:2]
    assert first == "-- Acme DROP DATABASE X;" and second == "USE ROLE SYSADMIN;"
    assert "CREATE ROLE IF NOT EXISTS LOADER_ROLE;" in script


@pytest.mark.parametrize("name", ["", "1ABC", "$A", "A B", "A-B", "A;B", "A" * 256, "É"])
def test_script_refuses_what_is_not_an_identifier(name: str) -> None:
    with pytest.raises(ValueError, match="Snowflake identifier"):
        setup_script.render(product_name="P", public_key=KEY, **{**DEFAULT_NAMES, "user": name})


def test_script_refuses_a_key_that_is_not_base64() -> None:
    with pytest.raises(ValueError):
        setup_script.render(product_name="P", public_key="abc'; DROP USER X; --", **DEFAULT_NAMES)


@pytest.mark.parametrize(
    "account", ["xy12345", "xy12345.us-east-1", "myorg-my_account", "xy12345.us-east-1.aws"]
)
def test_account_identifiers_accepted(account: str) -> None:
    assert setup_script.account_identifier(account) == account


@pytest.mark.parametrize("account", ["", ".x", "-x", "a b", "https://x", "x:443", "x/y", "x@y"])
def test_account_identifiers_refused(account: str) -> None:
    with pytest.raises(ValueError):
        setup_script.account_identifier(account)


def test_generated_pair_formats() -> None:
    pair = keypair.generate(2048)
    assert pair.private_pem.startswith("-----BEGIN PRIVATE KEY-----\n")  # PKCS#8
    assert "ENCRYPTED" not in pair.private_pem
    private = serialization.load_pem_private_key(pair.private_pem.encode(), password=None)
    assert isinstance(private, rsa.RSAPrivateKey)
    der = base64.b64decode(pair.public_key, validate=True)
    public = serialization.load_der_public_key(der)
    assert isinstance(public, rsa.RSAPublicKey)
    assert public.public_numbers() == private.public_key().public_numbers()
    assert keypair.public_key_of(pair.private_pem) == pair.public_key
    assert "PRIVATE" not in repr(pair) and pair.public_key in repr(pair)


@pytest.mark.parametrize("bits", [1024, 2047, 16384, True])
def test_key_sizes_snowflake_would_refuse_are_a_configuration_error(bits: int) -> None:
    with pytest.raises(ConfigurationError):
        keypair.check_bits(bits)


async def test_key_generation_runs_off_the_event_loop(wh, admin, monkeypatch) -> None:
    """Deterministic: generation waits for a signal only the event loop can send. Run on
    the loop it would wait in vain (and fail after 5 s); in a worker thread it gets it."""
    real = keypair.generate
    loop = asyncio.get_running_loop()
    started = asyncio.Event()
    signal = threading.Event()
    threads: list[str] = []

    def gated(bits: int) -> keypair.KeyPair:
        threads.append(threading.current_thread().name)
        loop.call_soon_threadsafe(started.set)
        if not signal.wait(timeout=5):
            raise AssertionError("key generation blocked the event loop")
        return real(bits)

    async def release() -> None:
        await started.wait()
        signal.set()

    monkeypatch.setattr(keypair, "generate", gated)
    releaser = asyncio.create_task(release())
    resp = await wh.post(base(admin.workspace_slug), json=body(), headers=admin.headers)
    await releaser
    assert resp.status_code == 201, resp.text
    assert threads and threads[0] != threading.main_thread().name
