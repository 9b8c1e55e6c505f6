"""A tiny BigQuery + Google OAuth server on loopback, for the real google-cloud-bigquery client.

It implements exactly what the client calls for a verification (logged in ``calls``):

``POST /token``
    the service-account JWT-bearer grant. The assertion's RS256 signature is checked against
    the public half of the key in :meth:`BigQueryFake.credentials_json`, and its ``iss``/``aud``
    must be what Google expects, so a client that signs wrongly fails here as it would there.
    ``reject_token`` answers ``400 invalid_grant`` (what Google's token endpoint sends for a
    revoked or deleted key; RFC 6749 section 5.2 puts invalid_grant on 400, not 401).
``GET /bigquery/v2/projects/{p}/datasets/{d}``
    200 for a dataset in ``datasets``, 403 ``accessDenied`` for one in ``forbidden``, else 404
    ``notFound``; bodies shaped like the real API's errors.
``POST /bigquery/v2/projects/{p}/queries``
    ``jobs.query`` (what ``Client.query_and_wait`` uses) for ``SELECT 1`` only, answered
    complete with one row.

API calls need ``Authorization: Bearer <a token this server issued>`` (else 401).
``hang_token`` / ``hang_api`` make the endpoint accept the request and never answer, to test
deadlines. Everything listens on 127.0.0.1 only.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

HOST = "127.0.0.1"
CLIENT_EMAIL = "connhub-verifier@acme-analytics.iam.gserviceaccount.com"
# google-auth always signs for Google's token endpoint, whatever token_uri says; Google checks it.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"
_DATASET = re.compile(r"/bigquery/v2/projects/([^/]+)/datasets/([^/?]+)")
_QUERIES = re.compile(r"/bigquery/v2/projects/([^/]+)/queries")


def _b64url_decode(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


@dataclass
class BigQueryFake:
    host: str
    port: int
    private_key: rsa.RSAPrivateKey
    datasets: set[tuple[str, str]] = field(default_factory=set)
    forbidden: set[tuple[str, str]] = field(default_factory=set)
    reject_token: bool = False
    hang_token: bool = False
    hang_api: bool = False
    calls: list[tuple[str, str]] = field(default_factory=list)
    tokens: set[str] = field(default_factory=set)
    released: threading.Event = field(default_factory=threading.Event)

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def token_uri(self) -> str:
        return f"{self.endpoint}/token"

    def credentials_json(self, *, token_uri: str | None = None) -> str:
        """A service-account key file as Google issues it, signed by this fake's key."""
        pem = self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode()
        return json.dumps(
            {
                "type": "service_account",
                "project_id": "acme-analytics",
                "private_key_id": "0123456789abcdef0123456789abcdef01234567",
                "private_key": pem,
                "client_email": CLIENT_EMAIL,
                "client_id": "104857600000000000000",
                "auth_uri": "https://accounts.google.com/o/oauth2/auth",
                "token_uri": token_uri or self.token_uri,
                "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
                "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/x",
                "universe_domain": "googleapis.com",
            }
        )

    def reset(self) -> None:
        self.datasets.clear()
        self.forbidden.clear()
        self.reject_token = self.hang_token = self.hang_api = False
        self.calls.clear()
        self.tokens.clear()

    # --- request handling (called from the server's threads) ------------------------------

    def verify_assertion(self, assertion: str) -> bool:
        try:
            header_b64, claims_b64, signature_b64 = assertion.split(".")
            header = json.loads(_b64url_decode(header_b64))
            claims = json.loads(_b64url_decode(claims_b64))
            self.private_key.public_key().verify(
                _b64url_decode(signature_b64),
                f"{header_b64}.{claims_b64}".encode(),
                padding.PKCS1v15(),
                hashes.SHA256(),
            )
        except (ValueError, InvalidSignature):
            return False
        now = time.time()
        return bool(
            header.get("alg") == "RS256"
            and claims.get("iss") == CLIENT_EMAIL
            and claims.get("aud") == GOOGLE_TOKEN_AUDIENCE
            and claims.get("iat", now + 999) <= now + 60
            and claims.get("exp", 0) >= now
        )


def _error(code: int, status: str, reason: str, message: str) -> dict[str, Any]:
    return {
        "error": {
            "code": code,
            "message": message,
            "errors": [{"message": message, "domain": "global", "reason": reason}],
            "status": status,
        }
    }


def _handler(fake: BigQueryFake) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib name
            pass

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _hang(self) -> None:
            fake.released.wait(timeout=60)

        def _authorised(self) -> bool:
            auth = self.headers.get("Authorization", "")
            if auth.startswith("Bearer ") and auth[len("Bearer ") :] in fake.tokens:
                return True
            self._send(
                401,
                _error(
                    401,
                    "UNAUTHENTICATED",
                    "unauthorized",
                    "Request had invalid authentication credentials.",
                ),
            )
            return False

        def do_POST(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            fake.calls.append(("POST", path))
            body = self._body()
            if path == "/token":
                if fake.hang_token:
                    return self._hang()
                form = parse_qs(body.decode())
                grant = form.get("grant_type", [""])[0]
                assertion = form.get("assertion", [""])[0]
                if (
                    fake.reject_token
                    or grant != "urn:ietf:params:oauth:grant-type:jwt-bearer"
                    or not fake.verify_assertion(assertion)
                ):
                    return self._send(
                        400,
                        {"error": "invalid_grant", "error_description": "Invalid JWT Signature."},
                    )
                token = "ya29.fake-" + secrets.token_urlsafe(16)
                fake.tokens.add(token)
                return self._send(
                    200, {"access_token": token, "expires_in": 3599, "token_type": "Bearer"}
                )
            if fake.hang_api:
                return self._hang()
            if not self._authorised():
                return None
            match = _QUERIES.fullmatch(path)
            if match is None:
                return self._send(404, _error(404, "NOT_FOUND", "notFound", f"Not found: {path}"))
            project = match.group(1)
            query = json.loads(body or b"{}").get("query", "")
            if query.strip().rstrip(";").upper() != "SELECT 1":
                return self._send(
                    400, _error(400, "INVALID_ARGUMENT", "invalidQuery", "Only SELECT 1 here")
                )
            job_id = "job_" + secrets.token_hex(8)
            return self._send(
                200,
                {
                    "kind": "bigquery#queryResponse",
                    "schema": {"fields": [{"name": "f0_", "type": "INTEGER", "mode": "NULLABLE"}]},
                    "jobReference": {"projectId": project, "jobId": job_id, "location": "US"},
                    "totalRows": "1",
                    "rows": [{"f": [{"v": "1"}]}],
                    "totalBytesProcessed": "0",
                    "jobComplete": True,
                    "cacheHit": False,
                    "queryId": job_id,
                },
            )

        def do_GET(self) -> None:  # noqa: N802 - http.server's naming
            path = urlsplit(self.path).path
            fake.calls.append(("GET", path))
            if fake.hang_api:
                return self._hang()
            if not self._authorised():
                return None
            match = _DATASET.fullmatch(path)
            if match is None:
                return self._send(404, _error(404, "NOT_FOUND", "notFound", f"Not found: {path}"))
            project, dataset = match.groups()
            if (project, dataset) in fake.forbidden:
                message = (
                    f"Access Denied: Dataset {project}:{dataset}: Permission bigquery.datasets.get "
                    f"denied on dataset {project}:{dataset} (or it may not exist)."
                )
                return self._send(403, _error(403, "PERMISSION_DENIED", "accessDenied", message))
            if (project, dataset) not in fake.datasets:
                message = f"Not found: Dataset {project}:{dataset}"
                return self._send(404, _error(404, "NOT_FOUND", "notFound", message))
            return self._send(
                200,
                {
                    "kind": "bigquery#dataset",
                    "id": f"{project}:{dataset}",
                    "datasetReference": {"projectId": project, "datasetId": dataset},
                    "location": "US",
                    "creationTime": "1700000000000",
                    "lastModifiedTime": "1700000000000",
                },
            )

    return Handler


class _Server(ThreadingHTTPServer):
    daemon_threads = True


def start_bigquery_fake() -> tuple[BigQueryFake, ThreadingHTTPServer]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    fake = BigQueryFake(HOST, 0, key)
    server = _Server((HOST, 0), _handler(fake))
    fake.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, name="bigquery-fake", daemon=True).start()
    return fake, server


@pytest.fixture(scope="session")
def _bigquery_fake_server() -> Iterator[BigQueryFake]:
    fake, server = start_bigquery_fake()
    try:
        yield fake
    finally:
        fake.released.set()  # let hung handlers finish
        server.shutdown()
        server.server_close()


@pytest.fixture(name="bigquery_fake")
def bigquery_fake_fixture(_bigquery_fake_server: BigQueryFake) -> Iterator[BigQueryFake]:
    """The session's fake, reset before the test and its hung requests released after it."""
    fake = _bigquery_fake_server
    fake.reset()
    fake.released.clear()
    try:
        yield fake
    finally:
        fake.released.set()
