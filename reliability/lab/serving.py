"""What every lab component process shares: argv spec, /metrics, serving an aiohttp app."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import aiohttp
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


def spec_from_argv() -> dict[str, Any]:
    if len(sys.argv) != 2:
        raise SystemExit(f"usage: python -m {sys.argv[0]} SPEC_JSON")
    spec = json.loads(sys.argv[1])
    if not isinstance(spec, dict):
        raise SystemExit("spec must be a JSON object")
    return spec


async def metrics(_: web.Request) -> web.Response:
    return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(data, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )


def new_event_loop() -> asyncio.AbstractEventLoop:
    """uvloop where installed: every request crosses several Python hops (gateways, proxies), and
    with it the lab serves ~15% more predictions at a lower p99 (benchmarks/bench_lab.py)."""
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop()
    return uvloop.new_event_loop()


def serve(app: web.Application, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT (aiohttp turns both into a graceful exit)."""
    app.router.add_get("/metrics", metrics)
    web.run_app(
        app,
        host=host,
        port=port,
        print=None,
        access_log=None,
        handle_signals=True,
        reuse_address=True,
        loop=new_event_loop(),
    )


async def sleep_forever() -> None:
    await asyncio.Event().wait()


class SessionOwner(Protocol):
    session: aiohttp.ClientSession | None


def with_client_session(
    app: web.Application, owner: SessionOwner, *loops: Callable[[], Awaitable[None]]
) -> web.Application:
    """Give `owner` one pooled client session for the app's lifetime and run its background loops
    (health checks, replication) alongside the server; both end when the server stops."""

    async def lifetime(_: web.Application) -> AsyncIterator[None]:
        owner.session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0))
        tasks = [asyncio.create_task(loop()) for loop in loops]  # type: ignore[arg-type]
        yield
        for task in tasks:
            task.cancel()
        await owner.session.close()

    app.cleanup_ctx.append(lifetime)
    return app
