"""A real AWS KMS API on loopback: moto's server (dev extra), for the KMS key provider."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest

from support.live import free_port

REGION = "us-east-1"
# moto accepts any credentials; boto3 needs some to sign requests.
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing"}


@contextmanager
def kms_endpoint() -> Iterator[str]:
    """Start moto's server on a free loopback port; yields its URL."""
    pytest.importorskip("boto3", reason="boto3 not installed (dev extra): KMS provider untested")
    server_mod = pytest.importorskip(
        "moto.server", reason="moto[server] not installed (dev extra): KMS provider untested"
    )
    server = server_mod.ThreadedMotoServer(ip_address="127.0.0.1", port=free_port(), verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    try:
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def kms_client(endpoint: str) -> object:
    import boto3

    return boto3.client("kms", region_name=REGION, endpoint_url=endpoint, **CREDENTIALS)
