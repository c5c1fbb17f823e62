"""A stand-in inference API on loopback for tests and benchmarks (until the lab exists, and for
measuring Locust without the lab's own cost): `python -m reliability.load.stub_server PORT`.

POST /v1/predict answers {"outputs": [...]}; POST /_fault {"status": 503} makes it fail with that
status until POST /_heal, so tests can produce outages with known start and end; GET /_count
tells how many predictions it answered.
"""

from __future__ import annotations

import sys

from aiohttp import web

_STATE: dict[str, int | None] = {"status": None, "served": 0}


async def predict(request: web.Request) -> web.Response:
    body = await request.json()
    _STATE["served"] = (_STATE["served"] or 0) + 1
    status = _STATE["status"]
    if status is not None:
        return web.json_response({"error": "injected"}, status=status)
    return web.json_response({"outputs": [sum(row) for row in body.get("inputs", [])]})


async def fault(request: web.Request) -> web.Response:
    _STATE["status"] = int((await request.json()).get("status", 503))
    return web.json_response({"ok": True})


async def heal(request: web.Request) -> web.Response:
    _STATE["status"] = None
    return web.json_response({"ok": True})


async def count(request: web.Request) -> web.Response:
    return web.json_response({"served": _STATE["served"]})


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/v1/predict", predict)
    application.router.add_post("/_fault", fault)
    application.router.add_post("/_heal", heal)
    application.router.add_get("/_count", count)
    return application


if __name__ == "__main__":
    web.run_app(app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
