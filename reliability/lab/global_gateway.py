"""The service endpoint (`python -m reliability.lab.global_gateway SPEC`): routes predictions to the
regions (active-active, or active-passive with health-checked failover), retries on another region
when one cannot answer, and forwards `/store/...` to the store's current primary.

Region failover and failback are written to the lab's event log here, where they are decided.
"""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from reliability.lab.events import append_event
from reliability.lab.serving import json_response, serve, spec_from_argv, with_client_session

SERVICE = "inference-api"
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
REQUESTS = Counter(
    "inference_requests", "Predictions answered by the service.", ["service", "region", "code"]
)
DURATION = Histogram(
    "inference_request_duration_seconds",
    "Prediction latency at the service endpoint.",
    ["service", "region"],
    buckets=BUCKETS,
)
REGION_HEALTHY = Gauge("global_gateway_region_healthy", "1 while the region receives traffic.", ["region"])
REGION_ACTIVE = Gauge("global_gateway_region_active", "1 for the region(s) routed to by policy.", ["region"])
# Answers that mean "this region could not serve" (not "the model failed"): fail over on these.
FAILOVER_STATUSES = frozenset({502, 503, 504})


class Region:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.name = str(spec["name"])
        self.url = str(spec["url"]).rstrip("/")
        self.store_url = str(spec.get("store_url") or "").rstrip("/")
        # Unknown until the first check passes; failover/failback are only news once it has served.
        self.healthy = False
        self.has_served = False
        self.failures = 0


class GlobalGateway:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.regions = [Region(r) for r in spec["regions"]]
        self.by_name = {r.name: r for r in self.regions}
        self.routing = str(spec.get("routing", "active-active"))
        self.primary = str(spec.get("primary_region") or self.regions[0].name)
        self.health_interval_s = float(spec.get("health_interval_s", 0.25))
        self.unhealthy_after = int(spec.get("unhealthy_after", 2))
        self.timeout = aiohttp.ClientTimeout(total=float(spec.get("request_timeout_s", 1.0)))
        self.events_path = spec.get("events_path")
        self.state_file = Path(spec["state_file"]) if spec.get("state_file") else None
        self.store_primary = str(spec.get("store_primary") or self.regions[0].name)
        self._state_mtime = 0.0
        self._rr = 0
        self.session: aiohttp.ClientSession | None = None
        for r in self.regions:
            REGION_HEALTHY.labels(region=r.name).set(0)
            DURATION.labels(service=SERVICE, region=r.name)
            for code in ("200", "500", "503"):
                REQUESTS.labels(service=SERVICE, region=r.name, code=code)
        self._publish_active()

    # -- health ---------------------------------------------------------------------------------------
    def _mark(self, region: Region, ok: bool) -> None:
        if ok:
            region.failures = 0
            if not region.healthy:
                region.healthy = True
                if region.has_served:
                    self._event("region_failback", region=region.name)
                region.has_served = True
        else:
            region.failures += 1
            if region.healthy and region.has_served and region.failures >= self.unhealthy_after:
                region.healthy = False
                others = [r.name for r in self.regions if r.healthy]
                self._event("region_failover", region=region.name, to=others)
        REGION_HEALTHY.labels(region=region.name).set(1 if region.healthy else 0)
        self._publish_active()

    def _event(self, name: str, **fields: Any) -> None:
        if self.events_path:
            append_event(self.events_path, name, **fields)

    def _publish_active(self) -> None:
        active = (
            {r.name for r in self.route_order()[:1]}
            if self.routing == "active-passive"
            else {r.name for r in self.regions if r.healthy}
        )
        for r in self.regions:
            REGION_ACTIVE.labels(region=r.name).set(1 if r.name in active else 0)

    async def _check(self, region: Region) -> None:
        assert self.session is not None
        try:
            timeout = aiohttp.ClientTimeout(total=self.health_interval_s * 2)
            async with self.session.get(f"{region.url}/readyz", timeout=timeout) as r:
                ok = r.status == 200
        except (TimeoutError, aiohttp.ClientError):
            ok = False
        self._mark(region, ok)

    async def health_loop(self) -> None:
        while True:
            await asyncio.gather(*(self._check(r) for r in self.regions))
            self._reload_store_primary()
            await asyncio.sleep(self.health_interval_s)

    def _reload_store_primary(self) -> None:
        if self.state_file is None:
            return
        try:
            mtime = self.state_file.stat().st_mtime
            if mtime == self._state_mtime:
                return
            state = json.loads(self.state_file.read_text(encoding="utf-8"))
            self._state_mtime = mtime
        except (OSError, ValueError):
            return
        primary = (state.get("store") or {}).get("primary")
        if primary in self.by_name:
            self.store_primary = primary

    # -- routing --------------------------------------------------------------------------------------
    def route_order(self) -> list[Region]:
        """Regions to try, best first: healthy ones by policy, then the unhealthy as a last resort."""
        healthy = [r for r in self.regions if r.healthy]
        if self.routing == "active-passive":
            healthy.sort(key=lambda r: r.name != self.primary)
        elif healthy:
            self._rr = (self._rr + 1) % len(healthy)
            healthy = healthy[self._rr :] + healthy[: self._rr]
        return healthy + [r for r in self.regions if not r.healthy]

    async def _forward(self, region: Region, body: bytes) -> tuple[int, bytes] | None:
        assert self.session is not None
        try:
            async with self.session.post(
                f"{region.url}/v1/predict",
                data=body,
                headers={"Content-Type": "application/json"},
                timeout=self.timeout,
            ) as r:
                return r.status, await r.read()
        except (TimeoutError, aiohttp.ClientError):
            return None

    async def predict(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        body = await request.read()
        answer: tuple[int, bytes] | None = None
        answered_by = "none"
        for region in self.route_order()[:2]:  # one retry, on another region
            answer = await self._forward(region, body)
            if answer is None:
                self._mark(region, False)  # passive health check: do not wait for the next probe
            if answer is not None and answer[0] not in FAILOVER_STATUSES:
                answered_by = region.name
                break
        if answered_by == "none":
            status, payload = answer if answer is not None else (503, b'{"error":"no region could answer"}')
        else:
            assert answer is not None
            status, payload = answer
        REQUESTS.labels(service=SERVICE, region=answered_by, code=str(status)).inc()
        DURATION.labels(service=SERVICE, region=answered_by).observe(time.perf_counter() - started)
        return web.Response(body=payload, status=status, content_type="application/json")

    async def store(self, request: web.Request) -> web.Response:
        """The store's service address: always the current primary (clients never pick a region)."""
        assert self.session is not None
        region = self.by_name[self.store_primary]
        url = f"{region.store_url}/{request.match_info['tail']}"
        try:
            async with self.session.request(
                request.method,
                url,
                params=request.query,
                data=await request.read(),
                headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
                timeout=self.timeout,
            ) as r:
                return web.Response(body=await r.read(), status=r.status, content_type="application/json")
        except (TimeoutError, aiohttp.ClientError) as exc:
            return json_response({"error": f"store primary in {region.name} unreachable: {exc!r}"}, 503)

    async def readyz(self, _: web.Request) -> web.Response:
        healthy = [r.name for r in self.regions if r.healthy]
        return json_response({"healthy_regions": healthy}, 200 if healthy else 503)

    async def healthz(self, _: web.Request) -> web.Response:
        return json_response({"ok": True})


def build_app(gw: GlobalGateway) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/predict", gw.predict)
    app.router.add_route("*", "/store/{tail:.*}", gw.store)
    app.router.add_get("/readyz", gw.readyz)
    app.router.add_get("/healthz", gw.healthz)
    return with_client_session(app, gw, gw.health_loop)


def main() -> None:
    spec = spec_from_argv()
    serve(build_app(GlobalGateway(spec)), str(spec["host"]), int(spec["port"]))


if __name__ == "__main__":
    main()
