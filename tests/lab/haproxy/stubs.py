"""Stub servers behind the gateways under test: real aiohttp servers on 127.0.0.1, run by one event
loop in a background thread of the test process, each switchable at run time (health, errors,
streaming, store primary) and closable (connection refused) and reopenable on the same port."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from reliability.tools import free_port


@dataclass
class StubNode:
    name: str
    port: int
    health_status: int = 200  # GET /health (and /primary for a store: see `primary`)
    reply_status: int = 200  # POST /v1/completions
    primary: bool = False  # GET /primary answers 200 only when set (a store replica)
    sse_chunks: int = 5
    sse_gap_s: float = 0.0
    sse_abort_after: int | None = None  # drop the connection after this many chunks
    hits: int = 0
    paths: list[str] = field(default_factory=list)
    sse_writes: list[float] = field(default_factory=list)  # time.monotonic() of each chunk written
    runner: web.AppRunner | None = None

    @property
    def addr(self) -> tuple[str, int]:
        return "127.0.0.1", self.port


class StubFleet:
    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="stub-fleet", daemon=True)
        self.nodes: list[StubNode] = []

    def __enter__(self) -> StubFleet:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        for node in self.nodes:
            self.close(node)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()

    def _run(self, coro: Any) -> Any:
        future: Future[Any] = asyncio.run_coroutine_threadsafe(coro, self.loop)
        return future.result(10)

    def node(self, name: str, **settings: Any) -> StubNode:
        node = StubNode(name=name, port=free_port(), **settings)
        self.nodes.append(node)
        self.open(node)
        return node

    def open(self, node: StubNode) -> None:
        self._run(self._open(node))

    def close(self, node: StubNode) -> None:
        """Stop listening: connections to the port are refused from now on."""
        if node.runner is not None:
            self._run(node.runner.cleanup())
            node.runner = None

    async def _open(self, node: StubNode) -> None:
        app = web.Application()

        async def health(_: web.Request) -> web.Response:
            return web.Response(status=node.health_status, text="ok" if node.health_status == 200 else "sick")

        async def primary(_: web.Request) -> web.Response:
            return web.Response(status=200 if node.primary else 503, text=str(node.primary))

        async def completions(request: web.Request) -> web.StreamResponse:
            body = await request.json()
            node.hits += 1
            if node.reply_status != 200:
                error = {
                    "error": {"message": "stub failure", "type": "server_error", "param": None, "code": None}
                }
                return web.json_response(error, status=node.reply_status)
            if not body.get("stream"):
                return web.json_response({"node": node.name})
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            for i in range(node.sse_chunks):
                if i == node.sse_abort_after:
                    assert request.transport is not None
                    request.transport.abort()  # the node dies mid-stream
                    return response
                if i:
                    await asyncio.sleep(node.sse_gap_s)
                node.sse_writes.append(time.monotonic())
                await response.write(f"data: {json.dumps({'node': node.name, 'i': i})}\n\n".encode())
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
            return response

        async def anything(request: web.Request) -> web.Response:
            node.hits += 1
            node.paths.append(request.path_qs)
            return web.json_response({"node": node.name, "path": request.path_qs, "method": request.method})

        app.router.add_get("/health", health)
        app.router.add_get("/primary", primary)
        app.router.add_post("/v1/completions", completions)
        app.router.add_route("*", "/{tail:.*}", anything)
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.1)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", node.port, reuse_address=True).start()
        node.runner = runner


@contextmanager
def stub_fleet() -> Iterator[StubFleet]:
    with StubFleet() as fleet:
        yield fleet
