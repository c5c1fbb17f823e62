"""The node's two HTTP faces: the api port (what vLLM's OpenAI server serves, plus KServe OIP v2 for
the predictive model) and the agent port (the node's DCGM exporter and the lab's admin API).

Lifecycle as on a real GPU node: the agent port answers from the start; the api port opens only
after `load_s` (vLLM starts its HTTP server once the weights are on the GPU, so a health check sees
"connection refused" before), and `/health` turns 200 after a further `warmup_s`. Xid 79 closes the
api port and cuts every connection on it, while the agent keeps reporting the Xid until the process
is killed.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
import zlib
from typing import Any

import numpy as np
from aiohttp import HttpVersion11, web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from reliability.lab.llm import oip
from reliability.lab.llm.engine import Engine, Sequence
from reliability.lab.llm.faults import Fault
from reliability.lab.llm.metrics import (
    DCGM_CONTENT_TYPE,
    DcgmState,
    GpuIdentity,
    HttpMetrics,
    VllmMetrics,
    render_dcgm,
)
from reliability.lab.llm.openai import (
    ENGINE_DEAD,
    Api,
    OpenAIError,
    StreamEncoder,
    full_response,
    internal_error,
    max_tokens_for,
    model_list,
    new_request_id,
    parse_request,
    unknown_model,
)
from reliability.lab.llm.runner import LlmRequest, Runner, cancel_task
from reliability.lab.llm.spec import NodeSpec
from reliability.lab.llm.tinylm import EOS, TinyLm, encode, version_config
from reliability.lab.model import Mlp

log = logging.getLogger(__name__)
VLLM_VERSION = "0.33.0"
_SSE_HEADERS = {"Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache"}
_CUDA_CONTEXT_MIB = 512  # framebuffer in use once a CUDA context exists, before the weights


def _json(data: Any, status: int = 200) -> web.Response:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False).encode()
    return web.Response(body=body, status=status, content_type="application/json")


def _bad_mlp(mlp: Mlp, version: str) -> Mlp:
    rng = np.random.default_rng(zlib.crc32(version.encode()))
    return Mlp(*(w + rng.normal(0.0, 0.5, size=w.shape).astype(w.dtype) for w in mlp.__dict__.values()))


class Node:
    def __init__(self, spec: NodeSpec, model: TinyLm, predictor: Mlp) -> None:
        self.spec = spec
        self.golden = model
        self.predictor_golden = predictor
        self.predictor = predictor
        self.model_version = spec.model_version
        self.state = "loading"  # loading -> warming -> ready; lost after Xid 79
        self.fault: Fault | None = None
        # Requests admitted under a `wrong` fault keep answering wrong after it is cleared: when the
        # last of them ended is the lab's ground truth for the end of the fault's effect.
        self.wrong_inflight = 0
        self.last_wrong_done_ts: float | None = None
        self._unhang = asyncio.Event()
        self._unhang.set()
        self.api_registry = CollectorRegistry(auto_describe=True)
        self.vllm = VllmMetrics(self.api_registry, spec.served_model_name, spec.engine.max_model_len)
        self.http = HttpMetrics(self.api_registry)
        gpu = spec.gpu
        self.gpu = GpuIdentity(
            gpu.index, gpu.uuid, gpu.pci_bus_id, gpu.model_name, spec.hostname or spec.id, gpu.driver_version
        )
        self.dcgm = DcgmState(fb_total_mib=gpu.fb_total_mib)
        self.engine = Engine(spec.engine, eos_token=EOS)
        self.runner = Runner(self.engine, model, self.vllm, self.dcgm)
        self.api_runner: web.AppRunner | None = None
        self.api_site: web.TCPSite | None = None
        self.created = int(time.time())

    # --- lifecycle -----------------------------------------------------------------------------

    async def serve(self, stop: asyncio.Event) -> None:
        agent = web.AppRunner(self.agent_app(), access_log=None)
        await agent.setup()
        await web.TCPSite(agent, self.spec.host, self.spec.agent_port, reuse_address=True).start()
        loop_task = asyncio.create_task(self.runner.run())
        loop_task.add_done_callback(self._engine_loop_ended)
        self.dcgm.fb_used_mib = _CUDA_CONTEXT_MIB
        try:
            if await self._wait(stop, self.spec.load_s):
                return
            if self.state != "lost":
                self.dcgm.fb_used_mib = int(self.spec.gpu.fb_total_mib * self.spec.gpu.memory_utilization)
                self.api_runner = web.AppRunner(self.api_app(), access_log=None, handler_cancellation=False)
                await self.api_runner.setup()
                self.api_site = web.TCPSite(
                    self.api_runner, self.spec.host, self.spec.api_port, reuse_address=True
                )
                await self.api_site.start()
                self.state = "warming"
                if await self._wait(stop, self.spec.warmup_s):
                    return
                if self.state == "warming":
                    self.state = "ready"
            await stop.wait()
        finally:
            await cancel_task(loop_task)
            if self.api_runner is not None:
                await self.api_runner.cleanup()
            await agent.cleanup()

    def _engine_loop_ended(self, task: asyncio.Task[None]) -> None:
        """A bug in the engine loop is an engine death, as vLLM's EngineDeadError: say so, fail."""
        if task.cancelled() or task.exception() is None:
            return
        log.error("engine loop died", exc_info=task.exception())
        self.runner.fail_inflight(OpenAIError(500, ENGINE_DEAD, "InternalServerError"), kill=True)

    @staticmethod
    async def _wait(stop: asyncio.Event, seconds: float) -> bool:
        """Sleep, unless asked to stop first (True)."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), seconds)
        return stop.is_set()

    async def lose_gpu(self) -> None:
        """Xid 79: the GPU fell off the bus. The engine dies, the api port closes and every connection
        on it is cut; only the agent keeps answering."""
        self.state = "lost"
        self.dcgm.last_xid = 79
        self.runner.fail_inflight(OpenAIError(500, ENGINE_DEAD, "InternalServerError"), kill=True)
        if self.api_site is not None:
            await self.api_site.stop()
        if self.api_runner is not None and self.api_runner.server is not None:
            for conn in self.api_runner.server.connections:
                if conn.transport is not None:
                    conn.transport.abort()

    # --- faults --------------------------------------------------------------------------------

    def _clear_effects(self) -> None:
        self.runner.revive()
        self.engine.slow_factor = 1.0
        self.engine.set_capacity(1.0)
        self.runner.model = self.golden
        self.predictor = self.predictor_golden
        self.model_version = self.spec.model_version
        self.dcgm.last_xid = 0
        self.dcgm.row_remap_failure = 0
        self._unhang.set()

    async def set_fault(self, fault: Fault) -> None:
        if self.state == "lost":
            raise OpenAIError(409, "the GPU fell off the bus (Xid 79): replace the node", "Conflict")
        self._clear_effects()
        self.fault = None if fault.mode is None else fault
        if fault.mode == "xid":
            await self._xid(int(fault.code or 0))
        elif fault.mode == "gray" and fault.hang:
            self.runner.paused = True
            self._unhang.clear()
        elif fault.mode == "slow_decode":
            self.engine.slow_factor = float(fault.factor or 1.0)
        elif fault.mode == "kv_cache_cut":
            self.engine.set_capacity(float(fault.fraction or 1.0))
        elif fault.mode == "bad_version":
            version = fault.version or f"{self.spec.model_version}-bad"
            self.runner.model = TinyLm.seeded(version_config(self.golden.config, version))
            self.predictor = _bad_mlp(self.predictor_golden, version)
            self.model_version = version
        self.runner.wake()

    async def _xid(self, code: int) -> None:
        self.dcgm.last_xid = code
        if code == 79:
            await self.lose_gpu()
        elif code in (48, 95):  # double-bit / uncontained ECC: the engine dies
            self.dcgm.uncorrectable_remapped_rows += 1
            self.runner.fail_inflight(OpenAIError(500, ENGINE_DEAD, "InternalServerError"), kill=True)
        elif code == 94:  # contained ECC: the requests in flight fail, the engine goes on
            self.dcgm.uncorrectable_remapped_rows += 1
            self.runner.fail_inflight(internal_error(), kill=False)
        elif code == 63:
            self.dcgm.correctable_remapped_rows += 1
        elif code == 64:
            self.dcgm.row_remap_failure = 1

    def _hit(self, mode: str) -> bool:
        f = self.fault
        return f is not None and f.mode == mode and (f.rate >= 1.0 or random.random() < f.rate)

    def status(self) -> dict[str, Any]:
        engine_state = "dead" if self.runner.dead else "hung" if self.runner.paused else "running"
        return {
            "node": self.spec.id,
            "region": self.spec.region,
            "state": self.state,
            "engine": engine_state,
            "model_version": self.model_version,
            "served_model_name": self.spec.served_model_name,
            "fault": None if self.fault is None else self.fault.model_dump(exclude_none=True),
            "running": self.engine.num_running,
            "waiting": self.engine.num_waiting,
            "kv_cache_usage": round(self.engine.kv_cache_usage, 6),
            "last_xid": self.dcgm.last_xid,
            "api_listening": self.state in ("warming", "ready") and self.api_site is not None,
            "steps": self.runner.steps,
            "wrong_inflight": self.wrong_inflight,
            "last_wrong_done_ts": self.last_wrong_done_ts,
        }

    # --- the api port --------------------------------------------------------------------------

    def _check_generation(self) -> None:
        if self.state == "warming":
            raise OpenAIError(503, "The model is still warming up", "ServiceUnavailableError")
        if self.runner.dead:
            raise OpenAIError(500, ENGINE_DEAD, "InternalServerError")
        if self.fault is not None and self.fault.mode == "gray" and not self.fault.hang:
            raise internal_error()

    async def generate(self, request: web.Request, api: Api) -> web.StreamResponse:
        arrival = time.monotonic()
        try:
            self._check_generation()
            req = parse_request(api, await request.read())
            served = self.spec.served_model_name
            if req.model not in (None, "", served):
                raise unknown_model(req.model, served)
            prompt = req.prompt_text()
            max_tokens = max_tokens_for(
                req.requested_max_tokens(), len(prompt), self.spec.engine.max_model_len
            )
        except OpenAIError as err:
            return _json(err.body(), err.status)
        if self._hit("latency"):
            await asyncio.sleep(float(self.fault.latency_ms or 0.0) / 1000.0)  # type: ignore[union-attr]
        request_id = new_request_id(api)
        stream = bool(req.stream)
        model = self.runner.model
        temperature = 1.0 if req.temperature is None else req.temperature
        llm = LlmRequest(
            encoder=StreamEncoder(api, request_id, served, int(time.time())) if stream else None,
            include_usage=bool(stream and req.stream_options and req.stream_options.include_usage),
            temperature=temperature,
            seed=random.getrandbits(63) if req.seed is None else req.seed,
            min_tokens=np.iinfo(np.int64).max if req.ignore_eos else req.min_tokens,
            stops=req.stop_strings(),
            prompt_tail=encode(prompt[-model.context :]),
            state=model.prompt_state(prompt),
            fail_at_first_token=self._hit("errors"),
            wrong=self._hit("wrong"),
        )
        seq = Sequence(request_id, len(prompt), max_tokens, arrival, payload=llm)
        if not llm.wrong:
            return await self._serve(request, seq, llm, api)
        self.wrong_inflight += 1
        try:
            return await self._serve(request, seq, llm, api)
        finally:
            self.wrong_inflight -= 1
            self.last_wrong_done_ts = time.time()

    async def _serve(
        self, request: web.Request, seq: Sequence, llm: LlmRequest, api: Api
    ) -> web.StreamResponse:
        if llm.encoder is not None:
            return await self._stream(request, seq, llm)
        self.runner.submit(seq)
        await llm.done.wait()
        if llm.error is not None:
            return _json(llm.error.body(), llm.error.status)
        body = full_response(
            api,
            seq.request_id,
            self.spec.served_model_name,
            int(time.time()),
            llm.text or "",
            llm.finish_reason or "stop",
            llm.stop_reason,
            seq.prompt_len,
            len(seq.output),
        )
        return _json(body)

    async def _stream(self, request: web.Request, seq: Sequence, llm: LlmRequest) -> web.StreamResponse:
        """Headers now (as vLLM's StreamingResponse), then the engine loop writes the chunks itself."""
        resp = web.StreamResponse(headers=_SSE_HEADERS)
        llm.chunked = request.version >= HttpVersion11
        if llm.chunked:
            resp.enable_chunked_encoding()
        await resp.prepare(request)
        llm.transport = request.transport  # type: ignore[assignment]
        self.runner.submit(seq)
        try:
            await llm.done.wait()
        except asyncio.CancelledError:
            self.runner.abort(seq, "abort")
            raise
        return resp

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self.generate(request, "chat")

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self.generate(request, "completions")

    async def models(self, _: web.Request) -> web.Response:
        name = self.spec.served_model_name
        return _json(
            model_list(name, self.spec.model_root or name, self.spec.engine.max_model_len, self.created)
        )

    async def health(self, _: web.Request) -> web.Response:
        """200 while the engine is alive, as vLLM (also during a gray failure); 503 when it died."""
        return web.Response(status=503 if self.runner.dead or self.state != "ready" else 200)

    async def version(self, _: web.Request) -> web.Response:
        return _json({"version": VLLM_VERSION})

    async def metrics(self, _: web.Request) -> web.Response:
        return web.Response(
            body=generate_latest(self.api_registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
        )

    # --- OIP v2 --------------------------------------------------------------------------------

    def _predictor_ready(self) -> bool:
        return self.state == "ready" and not self.runner.dead

    async def v2_live(self, _: web.Request) -> web.Response:
        return _json({"live": True})

    async def v2_ready(self, _: web.Request) -> web.Response:
        ready = self._predictor_ready()
        return _json({"ready": ready}, 200 if ready else 503)

    def _known(self, request: web.Request) -> str:
        name = request.match_info["name"]
        if name != self.spec.predictor_name:
            raise oip.OipError(404, f"Model with name {name} does not exist.")
        return name

    async def v2_model_ready(self, request: web.Request) -> web.Response:
        try:
            name = self._known(request)
        except oip.OipError as err:
            return _json(err.body(), err.status)
        ready = self._predictor_ready()
        return _json({"name": name, "ready": ready}, 200 if ready else 503)

    async def v2_model(self, request: web.Request) -> web.Response:
        try:
            name = self._known(request)
        except oip.OipError as err:
            return _json(err.body(), err.status)
        return _json(oip.model_metadata(name, self.model_version, self.predictor))

    async def v2_infer(self, request: web.Request) -> web.Response:
        try:
            name = self._known(request)
            if not self._predictor_ready():
                raise oip.OipError(503, f"Model with name {name} is not ready.")
            f = self.fault
            if f is not None and f.mode == "gray":
                if f.hang:
                    await self._unhang.wait()
                else:
                    raise oip.OipError(500, "Internal server error")
            request_id, x = oip.parse_infer(
                await request.read(), self.predictor, self.spec.predictor_max_batch
            )
            if self._hit("latency"):
                await asyncio.sleep(float(f.latency_ms or 0.0) / 1000.0)  # type: ignore[union-attr]
            if self._hit("errors"):
                raise oip.OipError(500, "Inference failed")
            t0 = time.monotonic()
            y = self.predictor.predict(x)
            self.dcgm.busy_s += time.monotonic() - t0
            if self._hit("wrong"):
                y = -y[:, ::-1]
        except oip.OipError as err:
            return _json(err.body(), err.status)
        return _json(oip.infer_response(name, self.model_version, request_id, y))

    # --- apps ----------------------------------------------------------------------------------

    @web.middleware
    async def _http_metrics(self, request: web.Request, handler: Any) -> web.StreamResponse:
        """prometheus-fastapi-instrumentator's accounting, and FastAPI's JSON for unknown routes."""
        start = time.perf_counter()
        status, out = 500, 0
        try:
            resp = await handler(request)
            status = resp.status
            out = resp.content_length or 0 if isinstance(resp, web.Response) else 0
            return resp
        except web.HTTPException as exc:
            status = exc.status
            if request.match_info.route.resource is None:
                return _json({"detail": exc.reason}, exc.status)
            raise
        finally:
            resource = request.match_info.route.resource
            name = resource.canonical if resource is not None else "none"
            self.http.observe(
                name, request.method, status, time.perf_counter() - start, request.content_length or 0, out
            )

    def api_app(self) -> web.Application:
        app = web.Application(middlewares=[self._http_metrics], client_max_size=64 * 1024**2)
        r = app.router
        r.add_post("/v1/chat/completions", self.chat)
        r.add_post("/v1/completions", self.completions)
        r.add_get("/v1/models", self.models)
        r.add_get("/health", self.health)
        r.add_get("/version", self.version)
        r.add_get("/metrics", self.metrics)
        r.add_get("/v2/health/live", self.v2_live)
        r.add_get("/v2/health/ready", self.v2_ready)
        r.add_get("/v2/models/{name}", self.v2_model)
        r.add_get("/v2/models/{name}/ready", self.v2_model_ready)
        r.add_post("/v2/models/{name}/infer", self.v2_infer)
        r.add_post("/v2/models/{name}/versions/{version}/infer", self.v2_infer)
        return app

    async def dcgm_metrics(self, _: web.Request) -> web.Response:
        self.dcgm.sample_utilisation(time.monotonic())
        return web.Response(
            body=render_dcgm(self.gpu, self.dcgm), headers={"Content-Type": DCGM_CONTENT_TYPE}
        )

    async def admin_fault(self, request: web.Request) -> web.Response:
        try:
            fault = Fault.model_validate_json(await request.read())
        except ValueError as exc:
            return _json({"error": str(exc).splitlines()[0] + ": " + str(exc).splitlines()[-1]}, 400)
        try:
            await self.set_fault(fault)
        except OpenAIError as err:
            return _json({"error": err.message}, err.status)
        return _json(self.status())

    async def admin_status(self, _: web.Request) -> web.Response:
        return _json(self.status())

    def agent_app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/metrics", self.dcgm_metrics)
        app.router.add_post("/admin/fault", self.admin_fault)
        app.router.add_get("/admin/status", self.admin_status)
        return app
