"""The operator CLI, run as a real subprocess against a fresh store."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from support.live import free_port

CLI = [sys.executable, "-m", "connhub.cli"]


def run(env: dict[str, str], *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [*CLI, *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def env(tmp_path: Path, store_url: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith("CONNHUB_")}
    e["CONNHUB_HOME"] = str(tmp_path / "home")
    return e


def test_workspace_and_token_commands(env: dict[str, str]) -> None:
    ws = json.loads(run(env, "workspaces", "create", "Acme Data", "--slug", "acme").stdout)
    assert ws["slug"] == "acme" and ws["name"] == "Acme Data" and ws["id"]
    tok = json.loads(
        run(
            env,
            "tokens",
            "create",
            "--workspace",
            "acme",
            "--email",
            "Ops@Example.com",
            "--role",
            "admin",
        ).stdout
    )
    assert {"token", "user_id", "workspace_id", "role"} <= set(tok)
    assert tok["workspace_id"] == ws["id"] and tok["role"] == "admin"
    dup = run(env, "workspaces", "create", "Other", "--slug", "acme", check=False)
    assert dup.returncode != 0 and "taken" in dup.stderr
    bad_role = run(
        env,
        "tokens",
        "create",
        "--workspace",
        "acme",
        "--email",
        "a@b.c",
        "--role",
        "root",
        check=False,
    )
    assert bad_role.returncode != 0
    missing = run(
        env,
        "tokens",
        "create",
        "--workspace",
        "nope",
        "--email",
        "a@b.c",
        "--role",
        "admin",
        check=False,
    )
    assert missing.returncode != 0 and "not found" in missing.stderr
    db = Path(env["CONNHUB_HOME"]) / "connhub.db"
    assert tok["token"].encode() not in db.read_bytes()  # stored only as a hash


def test_serve_embedded_end_to_end(env: dict[str, str]) -> None:
    json.loads(run(env, "workspaces", "create", "Live", "--slug", "live").stdout)
    tok = json.loads(
        run(
            env,
            "tokens",
            "create",
            "--workspace",
            "live",
            "--email",
            "a@example.com",
            "--role",
            "member",
        ).stdout
    )["token"]
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        for _ in range(200):
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                import time

                time.sleep(0.05)
        headers = {"Authorization": f"Bearer {tok}"}
        created = httpx.post(
            f"{url}/api/v1/connections",
            headers=headers,
            json={
                "name": "pg",
                "provider": "postgres",
                "config": {"host": "h.example.com", "database": "d", "username": "u"},
                "credentials": {"password": "served-secret-999"},
            },
        )
        assert created.status_code == 201
        assert httpx.get(f"{url}/openapi.json").json()["info"]["title"] == "connhub"
        assert httpx.get(f"{url}/docs").status_code == 200
    finally:
        proc.terminate()
        out, err = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}" in err
    lines = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    access = [line for line in lines if line.get("msg") == "request"]
    assert access and all("request_id" in line for line in access)
    assert "served-secret-999" not in out + err
    key = Path(env["CONNHUB_HOME"]) / "master.key"
    assert key.exists() and oct(key.stat().st_mode & 0o777) == "0o600"
