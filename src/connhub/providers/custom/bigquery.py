"""BigQuery adapter (google-cloud-bigquery, REST) for the SQL kind.

Two hosts are contacted: the BigQuery API (``target``) and the OAuth token endpoint named by
the service-account JSON's ``token_uri`` (``extra_targets``): google-auth signs a JWT with the
key and trades it there for an access token before the first API call. The egress policy must
check both; the SQL kind checks ``target`` and should also check ``extra_targets``.

``apiEndpoint`` (optional config, not in API.md section 4 yet): replaces
``https://bigquery.googleapis.com``. Justified the way Snowflake's ``host`` is: Google serves
BigQuery on regional endpoints (``https://bigquery.<region>.rep.googleapis.com``) and on
Private Service Connect names (``https://bigquery-<endpoint>.p.googleapis.com``), and tests
use a local fake. Only ``scheme://host[:port]`` is accepted, nothing else.

Where we connect: over HTTPS by name (certificate checks need it). requests looks the names
up again through urllib3, and ``kit.egress_pins`` answers with the addresses the egress check
passed (the API's and the token endpoint's), so there is no second lookup. Over plain
``http`` (local fakes) the checked address is also put into the endpoint URL.

Deadlines: one absolute deadline is set at connect time (``timeout_s`` from now). Every HTTP
request the client makes, token exchange included, gets ``timeout`` and ``max_allowed_time``
cut to what is left of it, and each API call's retry has the same deadline, so a server that
never answers fails as ``timeout`` within the budget. The same deadline bounds queries run on
the returned DB-API connection (``open_session`` passes the query timeout as ``timeout_s``).

Side traffic turned off: google-auth's background Regional Access Boundary lookup (to
``iamcredentials.googleapis.com``) and the BigQuery Storage API (gRPC, another host).

Only ``"type": "service_account"`` JSON is accepted: ``external_account`` credentials read
local files or fetch arbitrary URLs to get their subject token.
"""

from __future__ import annotations

import functools
import json
import re
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from connhub.errors import BadRequest
from connhub.providers.kinds.driver_errors import (
    REQUESTS_UNREACHABLE,
    exception_chain,
    network_code,
)
from connhub.providers.kinds.sql import invalid_option, optional_text, refuse_options, require_text
from connhub.providers.kinds.sql_driver import ConnectRequest, ConnectTarget, is_ipv6, url_host
from connhub.verification.codes import ErrorCode
from connhub.verification.result import StepFailed

DEFAULT_ENDPOINT = "https://bigquery.googleapis.com"
DEFAULT_TOKEN_URI = "https://oauth2.googleapis.com/token"
_PROJECT = re.compile(r"(?:[a-z][a-z0-9.-]*:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z0-9_]{1,1024}")
_LOCATION = re.compile(r"[A-Za-z0-9-]{1,64}")
_HOST = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9._-]{0,251}[A-Za-z0-9_])?")
_DENIED = (
    "credentials_json",
    "credentials_file",
    "key_file",
    "keyfile",
    "credential_source",
    "impersonate_service_account",
    "client_cert_source",
    "quota_project_id",
)


def _url_parts(url: str, field: str) -> tuple[str, str, int]:
    """``scheme://host[:port]`` only: no user-info, path, query or fragment."""
    if not isinstance(url, str) or len(url) > 2048:
        raise invalid_option(f"{field} must be an http(s) URL", field.removeprefix("config."))
    parts = urlsplit(url.strip())
    try:
        port = parts.port
    except ValueError:
        port = -1
    host = parts.hostname or ""
    if (
        parts.scheme not in ("https", "http")
        or parts.username is not None
        or port == -1
        or not (_HOST.fullmatch(host) or is_ipv6(host))
    ):
        raise invalid_option(
            f"{field} must be an http(s) URL with a host name", field.removeprefix("config.")
        )
    return parts.scheme, host, port or (443 if parts.scheme == "https" else 80)


def endpoint(config: Mapping[str, Any]) -> tuple[str, str, int]:
    """(scheme, host, port) of the BigQuery API for this config."""
    raw = config.get("apiEndpoint")
    if raw in (None, ""):
        return "https", "bigquery.googleapis.com", 443
    scheme, host, port = _url_parts(raw, "config.apiEndpoint")
    parts = urlsplit(str(raw).strip())
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise invalid_option(
            "config.apiEndpoint must be scheme://host[:port], without a path", "apiEndpoint"
        )
    return scheme, host, port


def service_account_info(credentials: Mapping[str, str]) -> dict[str, Any]:
    """The parsed ``credentialsJson``; only service-account keys with what google-auth needs."""
    raw = credentials.get("credentialsJson")
    field = "credentials.credentialsJson"
    if not raw:
        raise BadRequest(f"{field} is required", code=ErrorCode.INVALID_CREDENTIALS, field=field)
    try:
        info = json.loads(raw)
    except ValueError:
        raise BadRequest(
            f"{field} is not valid JSON", code=ErrorCode.INVALID_CREDENTIALS, field=field
        ) from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        raise BadRequest(
            f'{field} must be a service account key ("type": "service_account")',
            code=ErrorCode.INVALID_CREDENTIALS,
            field=field,
        )
    missing = [k for k in ("client_email", "private_key") if not isinstance(info.get(k), str)]
    if missing:
        raise BadRequest(
            f"{field} lacks {', '.join(missing)}", code=ErrorCode.INVALID_CREDENTIALS, field=field
        )
    info.setdefault("token_uri", DEFAULT_TOKEN_URI)
    try:
        _url_parts(info["token_uri"], f"{field}.token_uri")
    except BadRequest as exc:
        raise BadRequest(exc.message, code=ErrorCode.INVALID_CREDENTIALS, field=field) from None
    return info


def _remaining(deadline: float) -> float:
    return max(0.001, deadline - time.monotonic())


def _deadline_session(credentials: Any, deadline: float) -> Any:
    """An AuthorizedSession whose every request (token refresh included) ends by ``deadline``."""
    from google.auth.transport import requests as auth_requests

    base: Any = auth_requests.AuthorizedSession  # typed or not depending on the release

    class DeadlineSession(base):  # type: ignore[misc]
        def request(
            self,
            method: str,
            url: str,
            data: Any = None,
            headers: Any = None,
            max_allowed_time: float | None = None,
            timeout: Any = None,
            **kwargs: Any,
        ) -> Any:
            if deadline <= time.monotonic():
                # Not retryable for google-api-core: the caller's retry loop stops here too.
                from google.api_core import exceptions as gexc

                expired: Any = gexc.DeadlineExceeded
                raise expired("the time budget for this BigQuery session ran out")
            left = _remaining(deadline)
            if isinstance(timeout, int | float):
                timeout = min(float(timeout), left)
            elif isinstance(timeout, tuple):
                timeout = tuple(min(float(t), left) if t is not None else left for t in timeout)
            else:
                timeout = left
            allowed = left if max_allowed_time is None else min(max_allowed_time, left)
            return super().request(
                method,
                url,
                data=data,
                headers=headers,
                max_allowed_time=allowed,
                timeout=timeout,
                **kwargs,
            )

    return DeadlineSession(credentials)


def _log_in(credentials: Any, deadline: float) -> None:
    """Fetch the access token now, within ``deadline``.

    google-auth would fetch it on the first API call, in the permissions step; fetched here,
    a rejected key fails the authentication step, where it belongs.
    """
    import requests
    from google.auth.transport import requests as auth_requests

    with requests.Session() as http:
        request = auth_requests.Request(http)
        credentials.refresh(functools.partial(request, timeout=_remaining(deadline)))


@functools.cache
def _credentials_class() -> Any:
    """Service-account credentials without google-auth's Regional Access Boundary lookup.

    Since 2.4x, google-auth follows every token refresh with a background GET to
    ``iamcredentials.googleapis.com`` (a host the egress policy never checked, from a thread
    that outlives the verification). The boundary only adds a routing header; BigQuery works
    without it, so the lookup is switched off.
    """
    from google.oauth2 import service_account

    base: Any = service_account.Credentials

    class VerifierCredentials(base):  # type: ignore[misc]
        def _is_regional_access_boundary_lookup_required(self) -> bool:
            return False

    return VerifierCredentials


def _dbapi_connection_class() -> Any:
    from google.cloud.bigquery import dbapi

    base: Any = dbapi.Connection

    class BigQueryConnection(base):  # type: ignore[misc]
        """DB-API connection that remembers its client and deadline for the checks."""

        def __init__(self, client: Any, deadline: float, service_account: str | None) -> None:
            # No BigQuery Storage client: it is gRPC to another host the policy never checked.
            super().__init__(client=client, prefer_bqstorage_client=False)
            self.client = client
            self.deadline = deadline
            self.service_account = service_account

        def close(self) -> None:
            super().close()
            self.client.close()  # we own the client: release its HTTP session too

    return BigQueryConnection


def _network_code(exc: BaseException) -> ErrorCode | None:
    """Timeout or unreachable from anywhere in the chain, with this client's class names."""
    return network_code(exc, unreachable_names=REQUESTS_UNREACHABLE)


class BigQueryAdapter:
    name = "bigquery"
    display_name = "BigQuery"
    dialect = "bigquery"
    driver_module = "google.cloud.bigquery"

    def target(self, config: Mapping[str, Any]) -> ConnectTarget:
        _scheme, host, port = endpoint(config)
        return ConnectTarget(host, port)

    def extra_targets(
        self, config: Mapping[str, Any], credentials: Mapping[str, str]
    ) -> list[ConnectTarget]:
        """Other hosts the driver contacts: the OAuth token endpoint from the key's JSON."""
        info = service_account_info(credentials)
        _scheme, host, port = _url_parts(info["token_uri"], "credentials.credentialsJson")
        token = ConnectTarget(host, port)
        return [] if token == self.target(config) else [token]

    def validate_options(self, config: Mapping[str, Any]) -> None:
        refuse_options(config, _DENIED, why="credentials and key files are not options")
        project = require_text(config, "projectId", max_len=100)
        if not _PROJECT.fullmatch(project):
            raise invalid_option("config.projectId must be a Google Cloud project ID", "projectId")
        if not _DATASET.fullmatch(require_text(config, "dataset", max_len=1024)):
            raise invalid_option("config.dataset must be letters, digits and _", "dataset")
        location = optional_text(config, "location", max_len=64)
        if location is not None and not _LOCATION.fullmatch(location):
            raise invalid_option("config.location must be a location such as EU", "location")
        endpoint(config)

    def connect(self, request: ConnectRequest) -> Any:
        from google.api_core.client_options import ClientOptions
        from google.cloud import bigquery

        config = request.config
        self.validate_options(config)
        deadline = time.monotonic() + max(0.001, request.timeout_s)
        info = service_account_info(request.credentials)
        from_info: Any = _credentials_class().from_service_account_info
        try:
            credentials = from_info(info, scopes=bigquery.Client.SCOPE)
        except (ValueError, KeyError, TypeError):
            # google-auth's message can quote the key material: keep only the verdict.
            raise StepFailed(
                ErrorCode.INVALID_CREDENTIALS,
                "credentials.credentialsJson holds no usable private key",
            ) from None
        _log_in(credentials, deadline)
        scheme, host, port = endpoint(config)
        if scheme == "http" and request.address is not None:
            host = request.address  # no TLS to break: skip the second lookup
        api_endpoint = f"{scheme}://{url_host(host)}:{port}"
        client = bigquery.Client(
            project=config["projectId"],
            credentials=credentials,
            _http=_deadline_session(credentials, deadline),
            location=optional_text(config, "location"),
            client_options=ClientOptions(api_endpoint=api_endpoint),
        )
        connection_class = _dbapi_connection_class()
        return connection_class(client, deadline, info.get("client_email"))

    def permission_checks(self, conn: Any, config: Mapping[str, Any]) -> str:
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        client = conn.client
        deadline: float = conn.deadline
        project, dataset = config["projectId"], config["dataset"]
        left = _remaining(deadline)
        found = client.get_dataset(
            f"{project}.{dataset}", retry=DEFAULT_RETRY.with_deadline(left), timeout=left
        )
        left = _remaining(deadline)
        rows = client.query_and_wait(
            "SELECT 1",
            location=optional_text(config, "location") or found.location,
            api_timeout=left,
            wait_timeout=left,
            retry=DEFAULT_RETRY.with_deadline(left),
            job_retry=None,
            max_results=1,
        )
        list(rows)
        where = f" ({found.location})" if found.location else ""
        return f"Dataset {project}.{dataset}{where} is readable; SELECT 1 query job succeeded"

    def identity(self, conn: Any, config: Mapping[str, Any]) -> dict[str, Any]:
        return {"serviceAccount": conn.service_account, "project": config["projectId"]}

    def classify(self, exc: BaseException) -> str:
        # The DB-API layer wraps client errors (DatabaseError from GoogleCloudError): judge the
        # first Google error in the chain.
        for cause in exception_chain(exc):
            code = self._classify_one(cause)
            if code is not None:
                return code
        return _network_code(exc) or ErrorCode.PROVIDER_ERROR

    def statement_refusal(self, exc: BaseException) -> str | None:
        """BigQuery answered about the statement: invalid SQL (400), a table or column that
        is not there (404), no access to what it reads (403 ``accessDenied``)."""
        from google.api_core import exceptions as gexc

        for cause in exception_chain(exc):
            if isinstance(cause, gexc.BadRequest | gexc.NotFound):
                return "query_failed"
            if isinstance(cause, gexc.Forbidden):
                reasons = {e.get("reason") for e in (cause.errors or []) if isinstance(e, dict)}
                return ErrorCode.PERMISSION_DENIED if "accessDenied" in reasons else None
        return None

    @staticmethod
    def _classify_one(exc: BaseException) -> ErrorCode | None:
        if isinstance(exc, StepFailed):
            return exc.code
        from google.api_core import exceptions as gexc
        from google.auth import exceptions as aexc

        if isinstance(exc, gexc.RetryError | gexc.DeadlineExceeded | gexc.GatewayTimeout):
            # the retry ran out of time; a refused connection underneath is still unreachable
            if _network_code(exc) is ErrorCode.NETWORK_UNREACHABLE:
                return ErrorCode.NETWORK_UNREACHABLE
            return ErrorCode.TIMEOUT
        if isinstance(exc, aexc.RefreshError):
            text = str(exc).lower()
            if "expired" in text:
                return ErrorCode.TOKEN_EXPIRED
            if getattr(exc, "retryable", False):
                return ErrorCode.PROVIDER_ERROR
            return ErrorCode.INVALID_CREDENTIALS  # invalid_grant, unauthorized_client, ...
        if isinstance(exc, aexc.TransportError):
            return _network_code(exc) or ErrorCode.NETWORK_UNREACHABLE
        if isinstance(exc, gexc.Unauthorized):
            return ErrorCode.INVALID_CREDENTIALS
        if isinstance(exc, gexc.Forbidden):
            reasons = {e.get("reason") for e in (exc.errors or []) if isinstance(e, dict)}
            if reasons & {"rateLimitExceeded", "quotaExceeded"}:
                return ErrorCode.PROVIDER_ERROR
            return ErrorCode.PERMISSION_DENIED
        if isinstance(exc, gexc.NotFound):
            # BigQuery says 403 "(or it may not exist)" when access is the problem; a 404
            # means the project or dataset named in the config really is not there.
            return ErrorCode.INVALID_CONFIG
        if isinstance(exc, gexc.BadRequest):
            return ErrorCode.INVALID_CONFIG
        if isinstance(exc, gexc.GoogleAPICallError):
            return ErrorCode.PROVIDER_ERROR
        return None


ADAPTER = BigQueryAdapter()
