"""BigQuery adapter with the real google-cloud-bigquery client against a local fake.

The fake (tests/support/bigquery_fake.py) serves the OAuth token endpoint and the three REST
calls a verification makes; the client signs a real JWT with a freshly generated service-account
key and the fake checks the signature. Nothing is mocked in the client or in google-auth.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from google.auth import exceptions as aexc

from connhub.errors import BadRequest, UpstreamError
from connhub.kit.egress import EgressPolicy
from connhub.providers.custom.bigquery import ADAPTER
from connhub.providers.kinds.sql import close_session, open_session, sql_steps
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed, VerificationOutcome
from connhub.verification.runner import run_steps
from support.bigquery_fake import (
    BigQueryFake,
    _bigquery_fake_server,  # noqa: F401 - registers the session fixture
    bigquery_fake_fixture,  # noqa: F401 - registers the fixture
)
from support.dns import fake_dns
from support.fakesnow_server import closed_port, non_loopback_traffic

PROJECT = "acme-analytics"


def config_for(fake: BigQueryFake, dataset: str = "marts", **extra: Any) -> dict[str, Any]:
    return {"projectId": PROJECT, "dataset": dataset, "apiEndpoint": fake.endpoint, **extra}


def connect(config: dict[str, Any], credentials: dict[str, str], timeout_s: float = 10.0) -> Any:
    ADAPTER.validate_options(config)
    return ADAPTER.connect(
        ConnectRequest(
            config=config,
            credentials=credentials,
            target=ADAPTER.target(config),
            address="127.0.0.1",
            timeout_s=timeout_s,
        )
    )


def check(fake: BigQueryFake, dataset: str = "marts", timeout_s: float = 10.0) -> str:
    config = config_for(fake, dataset)
    conn = connect(config, {"credentialsJson": fake.credentials_json()}, timeout_s)
    try:
        return ADAPTER.permission_checks(conn, config)
    finally:
        conn.close()


def test_success_calls_token_dataset_and_query(bigquery_fake: BigQueryFake) -> None:
    bigquery_fake.datasets.add((PROJECT, "marts"))
    message = check(bigquery_fake)
    assert message == f"Dataset {PROJECT}.marts (US) is readable; SELECT 1 query job succeeded"
    assert bigquery_fake.calls == [
        ("POST", "/token"),
        ("GET", f"/bigquery/v2/projects/{PROJECT}/datasets/marts"),
        ("POST", f"/bigquery/v2/projects/{PROJECT}/queries"),
    ]


async def verify_against(fake: BigQueryFake) -> VerificationOutcome:
    """The SQL kind's three steps against the fake, with its own key."""
    steps = sql_steps(
        "bigquery",
        config_for(fake),
        {"credentialsJson": fake.credentials_json()},
        egress=EgressPolicy(allow=["127.0.0.1"]),
    )
    return await run_steps(steps, budget_s=10.0)


async def test_whole_sql_kind_run(bigquery_fake: BigQueryFake) -> None:
    bigquery_fake.datasets.add((PROJECT, "marts"))
    outcome = await verify_against(bigquery_fake)
    assert outcome.success, outcome
    assert outcome.identity["serviceAccount"].startswith("connhub-verifier@")


def test_no_traffic_leaves_loopback(bigquery_fake: BigQueryFake) -> None:
    """google-auth's background Regional Access Boundary lookup (iamcredentials) stays off."""
    bigquery_fake.datasets.add((PROJECT, "marts"))
    with non_loopback_traffic(settle_s=1.0) as seen:
        check(bigquery_fake)
    assert seen == []


def test_unknown_dataset_is_invalid_config(bigquery_fake: BigQueryFake) -> None:
    with pytest.raises(gexc.NotFound) as info:
        check(bigquery_fake, "nope")
    assert "Not found: Dataset acme-analytics:nope" in str(info.value)
    assert ADAPTER.classify(info.value) == ErrorCode.INVALID_CONFIG


def test_forbidden_dataset_is_permission_denied(bigquery_fake: BigQueryFake) -> None:
    bigquery_fake.forbidden.add((PROJECT, "secret"))
    with pytest.raises(gexc.Forbidden) as info:
        check(bigquery_fake, "secret")
    assert "Permission bigquery.datasets.get denied" in str(info.value)
    assert ADAPTER.classify(info.value) == ErrorCode.PERMISSION_DENIED


def test_rejected_token_is_invalid_credentials(bigquery_fake: BigQueryFake) -> None:
    bigquery_fake.datasets.add((PROJECT, "marts"))
    bigquery_fake.reject_token = True
    with pytest.raises(aexc.RefreshError) as info:
        check(bigquery_fake)
    assert "invalid_grant" in str(info.value)
    assert ADAPTER.classify(info.value) == ErrorCode.INVALID_CREDENTIALS


def test_key_not_matching_the_fake_is_rejected(bigquery_fake: BigQueryFake) -> None:
    """A different key signs the JWT: the fake's signature check refuses it, as Google would."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    bigquery_fake.datasets.add((PROJECT, "marts"))
    info = json.loads(bigquery_fake.credentials_json())
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    info["private_key"] = other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    with pytest.raises(aexc.RefreshError) as err:
        connect(config_for(bigquery_fake), {"credentialsJson": json.dumps(info)})
    assert ADAPTER.classify(err.value) == ErrorCode.INVALID_CREDENTIALS
    assert bigquery_fake.calls == [("POST", "/token")]  # refused at login: no API call made


async def test_a_rejected_key_fails_the_authentication_step(bigquery_fake: BigQueryFake) -> None:
    bigquery_fake.datasets.add((PROJECT, "marts"))
    bigquery_fake.reject_token = True
    outcome = await verify_against(bigquery_fake)
    assert [(s.name, s.status, s.code) for s in outcome.steps] == [
        ("connectivity", "passed", None),
        ("authentication", "failed", "invalid_credentials"),
        ("permissions", "skipped", None),
    ]


@pytest.mark.parametrize("flag", ["hang_api", "hang_token"])
def test_hanging_server_times_out_within_the_deadline(
    bigquery_fake: BigQueryFake, flag: str
) -> None:
    bigquery_fake.datasets.add((PROJECT, "marts"))
    setattr(bigquery_fake, flag, True)
    started = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: B017 - the class is what classify judges
        check(bigquery_fake, timeout_s=2.0)
    elapsed = time.monotonic() - started
    assert elapsed < 2.0 + 1, elapsed
    assert ADAPTER.classify(info.value) == ErrorCode.TIMEOUT


def test_dbapi_queries_run_and_honour_the_deadline(bigquery_fake: BigQueryFake) -> None:
    """The returned DB-API connection (schema browsing, queries) is bounded by the same budget."""
    bigquery_fake.datasets.add((PROJECT, "marts"))
    config = config_for(bigquery_fake)
    credentials = {"credentialsJson": bigquery_fake.credentials_json()}
    conn = connect(config, credentials)
    cur = conn.cursor()
    cur.execute("SELECT 1")
    assert [tuple(row) for row in cur.fetchall()] == [(1,)]
    conn.close()

    bigquery_fake.hang_api = True
    conn = connect(config, credentials, timeout_s=2.0)
    started = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: B017 - dbapi.DatabaseError wrapping
        conn.cursor().execute("SELECT 1")
    assert time.monotonic() - started < 2.0 + 1
    assert ADAPTER.classify(info.value) == ErrorCode.TIMEOUT


def test_unreachable_endpoint_is_network_unreachable(bigquery_fake: BigQueryFake) -> None:
    config = {
        "projectId": PROJECT,
        "dataset": "marts",
        "apiEndpoint": f"http://127.0.0.1:{closed_port()}",
    }
    # token endpoint on the fake, API on a closed port
    conn = connect(config, {"credentialsJson": bigquery_fake.credentials_json()}, timeout_s=2.0)
    started = time.monotonic()
    with pytest.raises(Exception) as info:  # noqa: B017
        ADAPTER.permission_checks(conn, config)
    assert time.monotonic() - started < 3
    assert ADAPTER.classify(info.value) == ErrorCode.NETWORK_UNREACHABLE


# --- targets, options, credentials -----------------------------------------------------------


def test_targets(bigquery_fake: BigQueryFake) -> None:
    assert ADAPTER.target({"projectId": PROJECT, "dataset": "d"}) == ConnectTarget(
        "bigquery.googleapis.com", 443
    )
    config = config_for(bigquery_fake)
    assert ADAPTER.target(config) == ConnectTarget("127.0.0.1", bigquery_fake.port)
    # the fake serves both, so the token endpoint adds nothing
    credentials = {"credentialsJson": bigquery_fake.credentials_json()}
    assert ADAPTER.extra_targets(config, credentials) == []
    google = {
        "credentialsJson": bigquery_fake.credentials_json(
            token_uri="https://oauth2.googleapis.com/token"
        )
    }
    assert ADAPTER.extra_targets(config, google) == [ConnectTarget("oauth2.googleapis.com", 443)]


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"apiEndpoint": "file:///etc/passwd"}, "config.apiEndpoint"),
        ({"apiEndpoint": "https://user:pw@bigquery.googleapis.com"}, "config.apiEndpoint"),
        ({"apiEndpoint": "https://bigquery.googleapis.com/evil"}, "config.apiEndpoint"),
        ({"apiEndpoint": "bigquery.googleapis.com"}, "config.apiEndpoint"),
        ({"projectId": "Bad Project"}, "config.projectId"),
        ({"dataset": "a.b"}, "config.dataset"),
        ({"credentials_file": "/root/key.json"}, "config.credentials_file"),
    ],
)
def test_dangerous_options_are_refused(extra: dict[str, Any], field: str) -> None:
    with pytest.raises(BadRequest) as info:
        ADAPTER.validate_options({"projectId": PROJECT, "dataset": "marts", **extra})
    assert info.value.code == ErrorCode.INVALID_CONFIG
    assert info.value.field == field


@pytest.mark.parametrize(
    "credentials_json",
    [
        "not json",
        json.dumps({"type": "external_account", "credential_source": {"file": "/etc/passwd"}}),
        json.dumps({"type": "service_account", "client_email": "a@b"}),
    ],
)
def test_unusable_credentials_json_is_invalid_credentials(credentials_json: str) -> None:
    with pytest.raises(BadRequest) as info:
        ADAPTER.extra_targets(
            {"projectId": PROJECT, "dataset": "d"}, {"credentialsJson": credentials_json}
        )
    assert info.value.code == ErrorCode.INVALID_CREDENTIALS
    assert info.value.field == "credentials.credentialsJson"


def test_garbage_private_key_fails_before_the_network(bigquery_fake: BigQueryFake) -> None:
    info = json.loads(bigquery_fake.credentials_json())
    info["private_key"] = "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"
    with pytest.raises(StepFailed) as err:
        connect(config_for(bigquery_fake), {"credentialsJson": json.dumps(info)})
    assert err.value.code == ErrorCode.INVALID_CREDENTIALS
    assert bigquery_fake.calls == []


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (
            gexc.Unauthorized("Request had invalid authentication credentials."),
            ErrorCode.INVALID_CREDENTIALS,
        ),
        (
            gexc.Forbidden("Access Denied: Project p: User does not have bigquery.jobs.create"),
            ErrorCode.PERMISSION_DENIED,
        ),
        (
            gexc.Forbidden("Quota exceeded", errors=[{"reason": "quotaExceeded"}]),
            ErrorCode.PROVIDER_ERROR,
        ),
        (gexc.DeadlineExceeded("deadline"), ErrorCode.TIMEOUT),
        (gexc.InternalServerError("backend error"), ErrorCode.PROVIDER_ERROR),
        (aexc.RefreshError("invalid_grant: Invalid JWT Signature."), ErrorCode.INVALID_CREDENTIALS),
        (
            aexc.RefreshError("invalid_grant: Token has been expired or revoked."),
            ErrorCode.TOKEN_EXPIRED,
        ),
    ],
)
def test_classify(exc: BaseException, code: ErrorCode) -> None:
    assert ADAPTER.classify(exc) == code


# --- names reached by the client: the checked addresses, never a second lookup ------------


def _by_name(
    fake: BigQueryFake, token_answer: str = "127.0.0.1"
) -> tuple[dict[str, Any], dict[str, str], EgressPolicy]:
    """Config and key naming the fake by host names only the policy's resolver knows."""
    config = config_for(fake, apiEndpoint=f"http://bigquery.pinned.test:{fake.port}")
    token_uri = f"http://oauth2.pinned.test:{fake.port}/token"
    credentials = {"credentialsJson": fake.credentials_json(token_uri=token_uri)}
    names = {"bigquery.pinned.test": ["127.0.0.1"], "oauth2.pinned.test": [token_answer]}
    return config, credentials, EgressPolicy(allow=["127.0.0.1"], resolver=fake_dns(names))


async def test_the_token_endpoint_is_reached_at_the_address_the_policy_checked(
    bigquery_fake: BigQueryFake,
) -> None:
    """google-auth connects to the token endpoint by name; the name is in no DNS but the
    policy's, so only the pinned address can get the request there."""
    bigquery_fake.datasets.add((PROJECT, "marts"))
    config, credentials, policy = _by_name(bigquery_fake)
    outcome = await run_steps(
        sql_steps("bigquery", config, credentials, egress=policy), budget_s=10
    )
    assert outcome.success, outcome
    assert ("POST", "/token") in bigquery_fake.calls


async def test_sessions_check_and_pin_the_token_endpoint_too(bigquery_fake: BigQueryFake) -> None:
    bigquery_fake.datasets.add((PROJECT, "marts"))
    config, credentials, policy = _by_name(bigquery_fake)
    conn = await open_session("bigquery", config, credentials, egress=policy, timeout_s=10)
    try:
        assert ("POST", "/token") in bigquery_fake.calls
    finally:
        await close_session(conn)

    config, credentials, policy = _by_name(bigquery_fake, token_answer="169.254.169.254")
    with pytest.raises(UpstreamError) as info:
        await open_session("bigquery", config, credentials, egress=policy, timeout_s=10)
    assert info.value.code == ErrorCode.NETWORK_UNREACHABLE
    assert "oauth2.pinned.test" in info.value.message
