"""The real app plus a bare hello endpoint, served by one uvicorn worker (bench only)."""

from __future__ import annotations

import os

import uvicorn

from connhub.app import configure_logging, create_app
from connhub.config import Settings

# Benchmarks measure endpoints, not the limiter (their load would soon be refused with 429s):
# rate limiting is off unless the environment turns it on explicitly.
os.environ.setdefault("CONNHUB_RATE_LIMIT_ENABLED", "false")
settings = Settings()
configure_logging(settings)
print(
    "serve_for_bench: rate limiting "
    + (
        f"ON (Connections API {settings.connections_rate_limit_per_minute}/min, "
        f"{settings.connections_rate_limit_burst_per_second}/s)"
        if settings.rate_limit_enabled
        else "disabled"
    ),
    flush=True,
)
app = create_app(settings)


@app.get("/bench/hello", include_in_schema=False)
async def hello() -> dict[str, str]:
    return {"hello": "world"}


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(os.environ["BENCH_PORT"]),
        workers=1,
        log_config=None,
        access_log=False,
        loop="uvloop",
        http="httptools",
    )
