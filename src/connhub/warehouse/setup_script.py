"""The Snowflake SQL the customer runs once to create what our connection uses.

The template is API.md section 1 ("``setup_script``") verbatim. Every value spliced into it
is checked here first, whoever called: names must be unquoted Snowflake identifiers
(``^[A-Za-z_][A-Za-z0-9_$]*$``, 1-255 characters) and are upper-cased, which is how Snowflake
stores unquoted names anyway; the public key must be base64. Nothing else can reach the SQL,
so a script a customer pastes into an ACCOUNTADMIN session cannot carry statements of ours
they did not expect.

The script is idempotent (``IF NOT EXISTS`` throughout, and ``ALTER USER`` re-applies the key
to a user that already exists), so running it again after an edit is safe.
"""

from __future__ import annotations

import re

STAGE = "FLAGSMITH_STAGE"
MAX_IDENTIFIER = 255

_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Account locator (``xy12345``, ``xy12345.us-east-1.aws``) or ``orgname-account``: it becomes
# part of a host name, so no scheme, path, port or spaces.
_ACCOUNT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")
_BASE64 = re.compile(r"[A-Za-z0-9+/]+={0,2}")

IDENTIFIER_MESSAGE = (
    "Must be a Snowflake identifier: 1-255 letters, digits, _ or $, not starting with a digit or $."
)
ACCOUNT_MESSAGE = (
    "Must be a Snowflake account identifier such as xy12345.us-east-1 or myorg-myaccount "
    "(letters, digits, '.', '-' and '_'; no URL)."
)


def identifier(value: str) -> str:
    """The upper-cased identifier, or ``ValueError(IDENTIFIER_MESSAGE)``."""
    if len(value) > MAX_IDENTIFIER or not _IDENTIFIER.fullmatch(value):
        raise ValueError(IDENTIFIER_MESSAGE)
    return value.upper()


def account_identifier(value: str) -> str:
    """The account identifier as given (case kept: it is a host label), or ``ValueError``."""
    if len(value) > MAX_IDENTIFIER or not _ACCOUNT.fullmatch(value):
        raise ValueError(ACCOUNT_MESSAGE)
    return value


def _comment(product_name: str) -> str:
    """One comment line: a newline in the configured name must not start a statement."""
    return "-- " + " ".join(product_name.split())


def render(
    *,
    product_name: str,
    warehouse: str,
    database: str,
    schema: str,
    role: str,
    user: str,
    public_key: str,
) -> str:
    """The setup script for these names and key (checked again here: defence in depth)."""
    wh, db, sc, rl, us = (identifier(v) for v in (warehouse, database, schema, role, user))
    if not _BASE64.fullmatch(public_key):
        raise ValueError("public_key must be one line of base64")
    lines = [
        _comment(product_name),
        "USE ROLE SYSADMIN;",
        f"CREATE WAREHOUSE IF NOT EXISTS {wh} WAREHOUSE_SIZE='XSMALL' AUTO_SUSPEND=60 "
        "AUTO_RESUME=TRUE INITIALLY_SUSPENDED=TRUE;",
        f"CREATE DATABASE IF NOT EXISTS {db};",
        f"CREATE SCHEMA IF NOT EXISTS {db}.{sc};",
        f"CREATE STAGE IF NOT EXISTS {db}.{sc}.{STAGE};",
        "USE ROLE SECURITYADMIN;",
        f"CREATE ROLE IF NOT EXISTS {rl};",
        f"GRANT ROLE {rl} TO ROLE SYSADMIN;",
        f"CREATE USER IF NOT EXISTS {us} TYPE=SERVICE DEFAULT_ROLE={rl} DEFAULT_WAREHOUSE={wh}",
        f"  DEFAULT_NAMESPACE={db}.{sc} RSA_PUBLIC_KEY='{public_key}';",
        f"ALTER USER {us} SET RSA_PUBLIC_KEY='{public_key}';",
        f"GRANT ROLE {rl} TO USER {us};",
        f"GRANT USAGE ON WAREHOUSE {wh} TO ROLE {rl};",
        f"GRANT USAGE ON DATABASE {db} TO ROLE {rl};",
        f"GRANT USAGE, CREATE TABLE ON SCHEMA {db}.{sc} TO ROLE {rl};",
        f"GRANT READ, WRITE ON STAGE {db}.{sc}.{STAGE} TO ROLE {rl};",
    ]
    return "\n".join(lines) + "\n"
