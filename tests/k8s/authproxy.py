"""A Prometheus that wants a bearer token, for the Kubernetes game-day tests: a reverse proxy on
127.0.0.1 in front of a real Prometheus (the lab's) that answers 401 to any request without
`Authorization: Bearer <token>`, as a Prometheus behind an auth proxy, Thanos or Mimir gateway would.
It counts what it answered, so a test can show every part of the harness (series pull, probes,
guardrails, console, partition check) sent the token.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter

from aiohttp import ClientSession, web


class AuthProxy:
    def __init__(self, upstream: str, token: str) -> None:
        self.upstream = upstream.rstrip("/")
        self.token = token
        self.answered: Counter[int] = Counter()
        self.port = 0
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.answered[401] += 1
            return web.Response(status=401, text="unauthorized\n")
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() in ("content-type", "accept")}
        async with (
            ClientSession() as session,
            session.request(
                request.method, self.upstream + request.path_qs, data=body or None, headers=headers
            ) as resp,
        ):
            data = await resp.read()
            self.answered[resp.status] += 1
            return web.Response(
                status=resp.status, body=data, content_type=resp.content_type or "application/json"
            )

    def start(self) -> AuthProxy:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_route("*", "/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
            ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=run, name="auth-proxy", daemon=True)
        self._thread.start()
        if not ready.wait(10):
            raise RuntimeError("auth proxy did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(10)
            self._loop = None
