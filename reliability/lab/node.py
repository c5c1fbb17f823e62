"""A GPU inference node: one OS process serving the MLP (`python -m reliability.lab.node SPEC`).

It loads and verifies the checkpoint, then "warms up" (the stand-in for loading large weights onto
the GPU) before `/readyz` turns green. Faults are set by the supervisor through `/admin/fault`.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import random
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import web
from prometheus_client import Counter, Gauge, Histogram

from reliability.lab.model import CheckpointError, Mlp, load_checkpoint
from reliability.lab.serving import json_response, serve, spec_from_argv

FAULT_MODES = ("errors", "latency", "nan", "wrong", "bad_version", "xid79")
BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
# Simulated device memory besides the weights (activations, CUDA context).
BASE_MEMORY_BYTES = 2 * 1024**3

REQUESTS = Counter("gpu_node_requests", "Predictions answered, by HTTP status.", ["code"])
DURATION = Histogram("gpu_node_request_duration_seconds", "Prediction latency at the node.", buckets=BUCKETS)
INFERENCE_ERRORS = Counter("gpu_node_inference_errors", "Predictions that failed inside the model.")
MODEL_INFO = Gauge("gpu_node_model_info", "The model version served (value 1).", ["version"])
GPU_UP = Gauge("gpu_up", "1 while the GPU answers, 0 after it fell off the bus.")
UTILIZATION = Gauge("gpu_utilization_ratio", "Simulated GPU utilisation (busy share of the last second).")
MEMORY = Gauge("gpu_memory_used_bytes", "Simulated GPU memory in use.")
XID = Counter("gpu_xid_errors", "NVIDIA Xid errors reported by the driver.", ["xid"])
READY = Gauge("gpu_node_ready", "1 once the model is loaded and warm.")


@dataclass
class Fault:
    mode: str
    rate: float = 1.0
    latency_ms: float = 0.0

    def hits(self) -> bool:
        return self.rate >= 1.0 or random.random() < self.rate


class Node:
    def __init__(self, spec: dict[str, Any], model: Mlp) -> None:
        self.id = str(spec["id"])
        self.version = str(spec.get("version", "v1"))
        self.model = model
        self.max_batch = int(spec.get("max_batch", 64))
        self.xid_die_after_s = float(spec.get("xid_die_after_s", 1.5))
        self.warmup_s = float(spec.get("warmup_s", 0.0))
        self.ready = False
        self.gpu_lost = False
        self.fault: Fault | None = None
        self._busy_s = 0.0
        self._window_start = time.monotonic()
        self._set_version(self.version)
        GPU_UP.set(1)
        MEMORY.set(BASE_MEMORY_BYTES + model.nbytes)

    def _set_version(self, version: str) -> None:
        MODEL_INFO.clear()
        MODEL_INFO.labels(version=version).set(1)

    async def warm_up(self) -> None:
        await asyncio.sleep(self.warmup_s)
        self.ready = True
        READY.set(1)

    async def utilisation_loop(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            now = time.monotonic()
            UTILIZATION.set(min(1.0, self._busy_s / max(now - self._window_start, 1e-6)))
            self._busy_s, self._window_start = 0.0, now

    def set_fault(self, body: dict[str, Any]) -> Fault | None:
        mode = body.get("mode")
        if mode is None:
            self.fault = None
            self._set_version(self.version)
            return None
        if mode not in FAULT_MODES:
            raise ValueError(f"unknown fault mode {mode!r}; one of {', '.join(FAULT_MODES)}")
        rate = float(body.get("rate", 1.0))
        if not 0.0 <= rate <= 1.0:
            raise ValueError("rate must be within [0, 1]")
        self.fault = Fault(mode, rate, float(body.get("latency_ms", 0.0)))
        if mode == "bad_version":
            self._set_version(str(body.get("version") or f"{self.version}-bad"))
        if mode == "xid79":
            self.lose_gpu()
        return self.fault

    def lose_gpu(self) -> None:
        """Xid 79: the GPU fell off the bus. The node reports it, fails every request, then dies."""
        self.gpu_lost, self.ready = True, False
        GPU_UP.set(0)
        READY.set(0)
        XID.labels(xid="79").inc()
        asyncio.get_running_loop().call_later(self.xid_die_after_s, os.kill, os.getpid(), signal.SIGKILL)

    def _answer(self, code: int, data: Any, started: float) -> web.Response:
        REQUESTS.labels(code=str(code)).inc()
        DURATION.observe(time.perf_counter() - started)
        return json_response(data, code)

    async def predict(self, request: web.Request) -> web.Response:
        started = time.perf_counter()
        if self.gpu_lost:
            INFERENCE_ERRORS.inc()
            return self._answer(
                500, {"error": "GPU has fallen off the bus (Xid 79)", "node": self.id}, started
            )
        if not self.ready:
            return self._answer(503, {"error": "model is warming up", "node": self.id}, started)
        try:
            body = json.loads(await request.read())
            x = np.asarray(body["inputs"], dtype=np.float32)
        except (ValueError, KeyError, TypeError):
            return self._answer(400, {"error": 'body must be {"inputs": [[number, ...], ...]}'}, started)
        if x.ndim != 2 or x.shape[1] != self.model.features or not 0 < x.shape[0] <= self.max_batch:
            return self._answer(
                400,
                {"error": f"inputs must be 1..{self.max_batch} rows of {self.model.features} numbers"},
                started,
            )
        fault = self.fault
        version = self.version
        if fault is not None and fault.hits():
            if fault.mode == "latency":
                await asyncio.sleep(fault.latency_ms / 1000.0)
            elif fault.mode in ("errors", "bad_version"):
                INFERENCE_ERRORS.inc()
                return self._answer(500, {"error": "inference failed", "node": self.id}, started)
        if fault is not None and fault.mode == "bad_version":
            version = f"{self.version}-bad"
        t0 = time.perf_counter()
        y = self.model.predict(x)
        self._busy_s += time.perf_counter() - t0
        if fault is not None and fault.mode in ("nan", "wrong") and fault.hits():
            y = np.full_like(y, np.nan) if fault.mode == "nan" else -y[:, ::-1]
        outputs = [[v if math.isfinite(v) else None for v in row] for row in y.tolist()]
        return self._answer(200, {"outputs": outputs, "model_version": version, "node": self.id}, started)

    async def healthz(self, _: web.Request) -> web.Response:
        if self.gpu_lost:
            return json_response({"ok": False, "error": "Xid 79"}, 500)
        return json_response({"ok": True, "node": self.id})

    async def readyz(self, _: web.Request) -> web.Response:
        return json_response({"ready": self.ready, "node": self.id}, 200 if self.ready else 503)

    async def admin_fault(self, request: web.Request) -> web.Response:
        try:
            fault = self.set_fault(await request.json())
        except (ValueError, TypeError) as exc:
            return json_response({"error": str(exc)}, 400)
        return json_response({"node": self.id, "fault": None if fault is None else fault.__dict__})


def build_app(node: Node) -> web.Application:
    app = web.Application()
    app.router.add_post("/v1/predict", node.predict)
    app.router.add_get("/healthz", node.healthz)
    app.router.add_get("/readyz", node.readyz)
    app.router.add_post("/admin/fault", node.admin_fault)

    async def background(_: web.Application):  # type: ignore[no-untyped-def]
        tasks = [asyncio.create_task(node.warm_up()), asyncio.create_task(node.utilisation_loop())]
        yield
        for t in tasks:
            t.cancel()

    app.cleanup_ctx.append(background)
    return app


def main() -> None:
    spec = spec_from_argv()
    try:
        model = load_checkpoint(Path(spec["checkpoint"]), str(spec["sha256"]))
    except (OSError, CheckpointError) as exc:
        raise SystemExit(f"node {spec.get('id')}: {exc}") from exc
    serve(build_app(Node(spec, model)), str(spec["host"]), int(spec["port"]))


if __name__ == "__main__":
    main()
