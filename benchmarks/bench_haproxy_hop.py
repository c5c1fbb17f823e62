"""What an HAProxy gateway hop costs: a stub GPU node alone vs through the region gateway (one hop)
vs through the global and region gateways (two hops), same client, same run, reported as ratios.

    .venv/bin/python benchmarks/bench_haproxy_hop.py [--seconds 2] [--repeats 7] [--connections 20]
        [--chunks 64]

The node is an aiohttp server on uvloop in its own process (small JSON POST answered with small
JSON; `stream: true` answers `--chunks` SSE chunks and [DONE], as fast as it can). The client is
wrk (Debian's `wrk`) in its own process; without wrk, an aiohttp client process. Everything on
127.0.0.1 and the same 2 cores, so HAProxy competes with the node and the client for CPU: the
ratios are what a lab on this machine sees. Aim (issue 12): two hops within 0.8x of the node alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from reliability.lab.haproxy.config import GlobalGatewaySpec, RegionGatewaySpec, Server  # noqa: E402
from reliability.lab.haproxy.process import HAProxyProcess  # noqa: E402
from reliability.tools import free_port, parent_death_signal  # noqa: E402

BODY = json.dumps({"model": "m", "prompt": "hello there", "max_tokens": 8})
STREAM_BODY = json.dumps({"model": "m", "prompt": "hello there", "max_tokens": 64, "stream": True})


def serve_node(port: int, chunks: int) -> None:
    """The stub GPU node (run as `--serve-node PORT`)."""
    from aiohttp import web

    from reliability.lab.serving import new_event_loop

    answer = json.dumps({"id": "cmpl-1", "object": "text_completion", "choices": [{"text": "hi"}]}).encode()
    chunk = b'data: {"object":"text_completion","choices":[{"index":0,"text":"tok"}]}\n\n'

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        if not body.get("stream"):
            return web.Response(body=answer, content_type="application/json")
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        try:
            await response.prepare(request)
            for _ in range(chunks):
                await response.write(chunk)
            await response.write(b"data: [DONE]\n\n")
            await response.write_eof()
        except ConnectionResetError:
            pass  # the client stopped at the end of its run, mid-stream
        return response

    app = web.Application()
    app.router.add_get("/health", health)
    app.router.add_post("/v1/completions", completions)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None, loop=new_event_loop())


def wrk(url: str, body: str, connections: int, seconds: int, workdir: Path) -> tuple[float, float, int]:
    """(requests/s, p99 ms, non-2xx + socket errors) of one wrk run."""
    script = workdir / f"post{abs(hash(body))}.lua"
    script.write_text(
        'wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
        f"wrk.body = {json.dumps(body)}\n"
    )
    result = subprocess.run(
        ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", str(script), url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"wrk failed: {result.stdout}{result.stderr}")
    out = result.stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p99_value, unit = re.search(r"99%\s+([\d.]+)(us|ms|s)", out).groups()  # type: ignore[union-attr]
    p99 = float(p99_value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    sock = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    failures = (int(errors.group(1)) if errors else 0) + (sum(map(int, sock.groups())) if sock else 0)
    return rps, p99, failures


async def _aiohttp_load(url: str, body: str, connections: int, seconds: int) -> tuple[float, float, int]:
    import aiohttp

    latencies: list[float] = []
    failures = 0
    deadline = time.monotonic() + seconds

    async def worker(session: aiohttp.ClientSession) -> None:
        nonlocal failures
        while time.monotonic() < deadline:
            t0 = time.perf_counter()
            async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as r:
                await r.read()
                if r.status != 200:
                    failures += 1
            latencies.append(time.perf_counter() - t0)

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=connections)) as session:
        started = time.monotonic()
        await asyncio.gather(*(worker(session) for _ in range(connections)))
        elapsed = time.monotonic() - started
    latencies.sort()
    return len(latencies) / elapsed, latencies[int(0.99 * (len(latencies) - 1))] * 1000, failures


def aiohttp_client(url: str, body: str, connections: int, seconds: int) -> tuple[float, float, int]:
    """Fallback load generator (run in a child process, like wrk)."""
    code = (
        "import asyncio, json, sys; sys.path.insert(0, sys.argv[1]);"
        "from benchmarks.bench_haproxy_hop import _aiohttp_load;"
        "a = sys.argv;"
        "print(json.dumps(asyncio.run(_aiohttp_load(a[2], a[3], int(a[4]), int(a[5])))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(REPO), url, body, str(connections), str(seconds)],
        capture_output=True,
        text=True,
        timeout=seconds + 60,
        check=True,
    ).stdout
    rps, p99, failures = json.loads(out)
    return rps, p99, failures


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process (children excluded), from /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def wait_until_serving(region: HAProxyProcess, edge: HAProxyProcess, timeout_s: float = 30.0) -> None:
    """Bounded: the node answers its health checks and both gateways see a usable server."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if all(
            any(s.usable for s in gw.runtime.show_servers_state(backend))
            for gw, backend in ((region, "vllm"), (edge, "regions"))
        ):
            return
        time.sleep(0.1)
    raise SystemExit(f"the stub node and gateways were not serving within {timeout_s:g}s")


Row = tuple[float, float, int]


def _rounds(
    run: Callable[[str, str], Row], paths: dict[str, tuple[str, str]], repeats: int
) -> dict[str, tuple[float, float, int, float]]:
    """Per path: median requests/s, median p99, failures summed, and the median over rounds of
    requests/s divided by the first path's in the same round. Rounds interleave the paths, and a
    ratio is taken within one round, so a neighbour's burst of CPU use on this shared machine
    hits both sides of a ratio alike."""
    samples: dict[str, list[Row]] = {name: [] for name in paths}
    for _ in range(repeats):
        for name, (url, body) in paths.items():
            samples[name].append(run(url, body))
    base = samples[next(iter(paths))]
    return {
        name: (
            statistics.median(r[0] for r in rows),
            statistics.median(r[1] for r in rows),
            sum(r[2] for r in rows),
            statistics.median(r[0] / b[0] for r, b in zip(rows, base, strict=True)),
        )
        for name, rows in samples.items()
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--chunks", type=int, default=64)
    ap.add_argument("--serve-node", type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.serve_node:
        serve_node(args.serve_node, args.chunks)
        return

    tmp = Path(tempfile.mkdtemp(prefix="bench-haproxy-", dir="/tmp"))
    node_port = free_port()
    node = subprocess.Popen(
        [sys.executable, __file__, "--serve-node", str(node_port), "--chunks", str(args.chunks)],
        preexec_fn=parent_death_signal(signal.SIGTERM),
    )
    region = HAProxyProcess(
        RegionGatewaySpec(
            name="region/bench",
            region="bench",
            port=free_port(),
            metrics_port=free_port(),
            stats_socket=tmp / "region.sock",
            nodes=[Server(name="node-1", host="127.0.0.1", port=node_port)],
        ),
        tmp,
    )
    region_spec = region.spec
    assert isinstance(region_spec, RegionGatewaySpec)
    edge = HAProxyProcess(
        GlobalGatewaySpec(
            name="global",
            port=free_port(),
            metrics_port=free_port(),
            stats_socket=tmp / "global.sock",
            regions=[
                Server(
                    name="bench", host="127.0.0.1", port=region_spec.port, check_port=region_spec.metrics_port
                )
            ],
        ),
        tmp,
    )
    load = wrk if shutil.which("wrk") else None
    client = "wrk -t1" if load else "aiohttp client (install Debian's wrk for a faster one)"
    try:
        region.start()
        edge.start()
        wait_until_serving(region, edge)
        paths = {
            "node alone": f"http://127.0.0.1:{node_port}/v1/completions",
            "region gateway (1 hop)": f"http://127.0.0.1:{region_spec.port}/v1/completions",
            "global + region (2 hops)": f"http://127.0.0.1:{edge.spec.port}/v1/completions",
        }
        print(f"client: {client}, {args.connections} connections, {args.seconds}s per row")

        pids = {"node": node.pid, "region HAProxy": region.pid, "global HAProxy": edge.pid}
        cpu_us: dict[tuple[str, str], list[float]] = {}  # (url, process) -> CPU us per request

        def run(url: str, body: str) -> tuple[float, float, int]:
            before = {name: cpu_seconds(pid) for name, pid in pids.items() if pid}
            if load is not None:
                row = load(url, body, args.connections, args.seconds, tmp)
            else:
                row = aiohttp_client(url, body, args.connections, args.seconds)
            requests = max(1.0, row[0] * args.seconds)
            for name, start in before.items():
                cpu_us.setdefault((url + body, name), []).append(
                    (cpu_seconds(pids[name] or 0) - start) * 1e6 / requests
                )
            return row

        def where_time_goes(url: str, body: str) -> str:
            parts = [
                f"{name} {statistics.median(cpu_us[(url + body, name)]):.0f}"
                for name in pids
                if statistics.median(cpu_us[(url + body, name)]) >= 0.5
            ]
            return "    CPU us per request: " + ", ".join(parts)

        json_rows = _rounds(run, {name: (url, BODY) for name, url in paths.items()}, args.repeats)
        sse_paths = {name: (paths[name], STREAM_BODY) for name in ("node alone", "global + region (2 hops)")}
        sse_rows = _rounds(run, sse_paths, args.repeats)
        print(f"small JSON POST /v1/completions (medians of {args.repeats} rounds)")
        for name, (rps, p99, failures, ratio) in json_rows.items():
            print(f"  {name:26s} {rps:8.0f} req/s  p99 {p99:6.2f} ms  failures {failures}", end="")
            print(f"  ratio {ratio:.2f}")
            print(where_time_goes(paths[name], BODY))
        print(f"SSE stream, {args.chunks} chunks + [DONE] per request (medians of {args.repeats} rounds)")
        for name, (rps, p99, failures, ratio) in sse_rows.items():
            chunks = rps * args.chunks
            print(f"  {name:26s} {chunks:8.0f} chunks/s ({rps:.0f} streams/s, p99 {p99:.2f} ms)", end="")
            print(f"  failures {failures}  ratio {ratio:.2f}")
            print(where_time_goes(sse_paths[name][0], STREAM_BODY))
    finally:
        edge.stop(grace_s=1.0)
        region.stop(grace_s=1.0)
        node.terminate()
        node.wait(5)
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
