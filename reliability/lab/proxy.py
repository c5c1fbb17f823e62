"""In-path TCP proxies for the lab's proxy isolation mode (`python -m reliability.lab.proxy SPEC`).

Every path that crosses a region boundary (global -> region, region -> region) goes through a
listener here tagged with its source and destination. Partitioning a region blackholes every path
touching it: bytes are read and dropped, nothing is answered, new connections are accepted and
then ignored - callers see timeouts, as with dropped packets, never a fast "connection refused".
Everything binds to loopback.
"""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from aiohttp import web

from reliability.lab.serving import json_response, new_event_loop, spec_from_argv

CHUNK = 65536


class Route:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.listen_port = int(spec["listen_port"])
        self.target_host, port = str(spec["target"]).rsplit(":", 1)
        self.target_port = int(port)
        self.src = str(spec["src"])
        self.dst = str(spec["dst"])
        self.connections: set[asyncio.StreamWriter] = set()


class ProxyFabric:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.host = str(spec.get("host", "127.0.0.1"))
        self.routes = [Route(r) for r in spec["routes"]]
        self.partitioned: set[str] = set()

    def cut(self, route: Route) -> bool:
        return route.src in self.partitioned or route.dst in self.partitioned

    async def _blackhole(self, reader: asyncio.StreamReader) -> None:
        while await reader.read(CHUNK):
            pass

    async def _pipe(self, route: Route, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(CHUNK):
            if self.cut(route):
                await self._blackhole(reader)
                return
            writer.write(data)
            await writer.drain()

    async def handle(
        self, route: Route, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter
    ) -> None:
        route.connections.add(client_w)
        upstream_w: asyncio.StreamWriter | None = None
        try:
            if self.cut(route):
                await self._blackhole(client_r)
                return
            upstream_r, upstream_w = await asyncio.open_connection(route.target_host, route.target_port)
            route.connections.add(upstream_w)
            await asyncio.gather(
                self._pipe(route, client_r, upstream_w), self._pipe(route, upstream_r, client_w)
            )
        except (OSError, asyncio.IncompleteReadError):
            pass
        finally:
            for w in (client_w, upstream_w):
                if w is not None:
                    route.connections.discard(w)
                    w.close()

    def set_partitions(self, regions: set[str]) -> None:
        healed = {r for r in self.routes if self.cut(r)}
        self.partitioned = set(regions)
        healed -= {r for r in self.routes if self.cut(r)}
        # Connections that were blackholed stay dead after healing: close them so clients reconnect.
        for route in healed:
            for w in list(route.connections):
                w.close()

    async def admin(self, request: web.Request) -> web.Response:
        if request.method == "POST":
            body = await request.json()
            self.set_partitions({str(r) for r in body.get("partitioned", [])})
        return json_response({"partitioned": sorted(self.partitioned)})


async def run(spec: dict[str, Any]) -> None:
    fabric = ProxyFabric(spec)
    servers = []
    for route in fabric.routes:
        servers.append(
            await asyncio.start_server(
                lambda r, w, route=route: fabric.handle(route, r, w),
                fabric.host,
                route.listen_port,
                reuse_address=True,
            )
        )
    app = web.Application()
    app.router.add_route("*", "/partitions", fabric.admin)
    app.router.add_get("/healthz", lambda _: _ok())
    app.router.add_get("/readyz", lambda _: _ok())  # every listener is bound before the admin port
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, fabric.host, int(spec["admin_port"]), reuse_address=True).start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    for server in servers:
        server.close()
    await runner.cleanup()


async def _ok() -> web.Response:
    return json_response({"ok": True})


def main() -> None:
    with asyncio.Runner(loop_factory=new_event_loop) as runner:
        runner.run(run(spec_from_argv()))


if __name__ == "__main__":
    main()
