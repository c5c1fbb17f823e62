"""The LLM twin's budget, each figure against a baseline measured in the same run:

    .venv/bin/python benchmarks/bench_lab.py [--isolation auto] [--starts 3] [--seconds 8]
        [--connections 20] [--streams 256] [--max-tokens 200]

- start to all ready (`lab_up.startup_s` and the wall time of `Lab.start()`), over `--starts` starts;
  aim: under 2.5 s;
- idle memory of every lab process (RSS and PSS: PSS shares common pages fairly); aim: under 1 GB;
- predictions (KServe OIP v2, a small JSON POST) with wrk: a node alone, through its region gateway
  (one HAProxy hop), through the ingress (two hops); ratios against the node alone; aim: >= 0.8;
- streaming: `--streams` concurrent streaming completions through the ingress vs one node alone
  (the one-hop ceiling), with the aiohttp client of bench_llm_node.py in its own process: streamed
  tokens/s, concurrent streams, and the inter-token latency clients saw against the engine's own
  (`vllm:inter_token_latency_seconds`); aims: >= 10,000 tokens/s, >= 256 streams, ITL p99 within 2x
  the engine's.

For the streaming part the engine is sized so the fleet can hold every stream (max_num_seqs 64 per
node) - the point is the path, not the scheduler. Everything shares the machine's cores.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_haproxy_hop import wrk  # noqa: E402
from bench_llm_node import engine_itl, histogram_quantile  # noqa: E402

from reliability.lab import Lab, LabConfig  # noqa: E402
from reliability.lab.events import read_events  # noqa: E402
from reliability.lab.llm.engine import EngineConfig  # noqa: E402
from reliability.lab.state import LabState  # noqa: E402

PREDICT = json.dumps(
    {"inputs": [{"name": "input-0", "shape": [1, 4], "datatype": "FP32", "data": [0.1, 0.2, 0.3, 0.4]}]}
)


def memory_kib(pid: int) -> tuple[int, int]:
    rss = pss = 0
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Rss:"):
                rss = int(line.split()[1])
            elif line.startswith("Pss:"):
                pss = int(line.split()[1])
    except OSError:
        pass
    return rss, pss


def lab_pids(state: LabState) -> list[int]:
    pids = [c.pid for c in state.components if c.pid]
    return [p for p in [*pids, state.supervisor.pid, state.prometheus.pid] if p]


def stream_load(api: str, streams: int, seconds: float, max_tokens: int) -> dict[str, float]:
    out = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_llm_node.py"),
            "--client",
            "--api",
            api,
            "--streams",
            str(streams),
            "--seconds",
            str(seconds),
            "--warmup",
            "3",
            "--max-tokens",
            str(max_tokens),
        ],
        capture_output=True,
        text=True,
        timeout=seconds + 120,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--isolation", default="auto")
    ap.add_argument("--starts", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=8)
    ap.add_argument("--connections", type=int, default=20)
    ap.add_argument("--streams", type=int, default=256)
    ap.add_argument("--max-tokens", type=int, default=200)
    args = ap.parse_args()

    starts = []
    for i in range(args.starts):
        with tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp:
            t0 = time.monotonic()
            with Lab(LabConfig(), Path(tmp) / "lab", isolation=args.isolation) as lab:
                wall = time.monotonic() - t0
                up = next(e for e in read_events(lab.events_path) if e["event"] == "lab_up")
                starts.append((wall, float(up["startup_s"])))
                if i == args.starts - 1:
                    time.sleep(5)  # idle
                    state = lab.refresh()
                    assert state is not None
                    mem = [memory_kib(p) for p in lab_pids(state)]
                    rss, pss = sum(m[0] for m in mem) / 1024, sum(m[1] for m in mem) / 1024
                    procs = len(mem)
    print(
        f"start to ready: wall {', '.join(f'{w:.2f}' for w, _ in starts)} s; "
        f"supervisor's own {', '.join(f'{s:.2f}' for _, s in starts)} s  (aim < 2.5 s)"
    )
    print(f"idle memory of {procs} processes: RSS {rss:.0f} MiB, PSS {pss:.0f} MiB  (aim < 1024 MiB)")

    engine = EngineConfig.lab().model_copy(update={"max_num_seqs": 64, "kv_cache_tokens": 65536})
    config = LabConfig(engine=engine)
    with (
        tempfile.TemporaryDirectory(prefix="bench-lab-") as tmp,
        Lab(config, Path(tmp) / "lab", isolation=args.isolation) as lab,
    ):
        state = lab.refresh()
        assert state is not None
        node = next(n for n in state.nodes if n.region == "us-east")
        region = next(c for c in state.components if c.name == "region-gateway/us-east")
        paths = {
            "node alone": node.api_url,
            "region gateway (1 hop)": f"http://{region.host}:{region.port}",
            "ingress (2 hops)": state.endpoint,
        }
        name = config.predictor.name
        print(f"\npredictions (OIP v2 infer, wrk -c{args.connections}, {args.seconds} s each):")
        base = None
        for label, url in paths.items():
            rps, p99, failed = wrk(
                f"{url}/v2/models/{name}/infer", PREDICT, args.connections, args.seconds, Path(tmp)
            )
            base = base or rps
            print(
                f"  {label:24} {rps:8.0f} req/s  p99 {p99:6.1f} ms  failed {failed}  ratio {rps / base:.2f}"
            )
        print(f"\nstreaming ({args.streams} streams, max_tokens {args.max_tokens}, {args.seconds} s):")
        ceiling = None
        for label, url in (("node alone (ceiling)", node.api_url), ("ingress (2 hops)", state.endpoint)):
            before = engine_itl(node.api_url)[0]
            r = stream_load(
                url, args.streams if "ingress" in label else args.streams // 6, args.seconds, args.max_tokens
            )
            after = engine_itl(node.api_url)[0]
            delta = [(le, a - b) for (le, a), (_, b) in zip(after, before, strict=True)]
            engine_p99 = histogram_quantile(0.99, delta) * 1000
            tps = r["tokens"] / args.seconds
            ceiling = ceiling or tps
            print(
                f"  {label:22} {tps:8.0f} tokens/s  peak streams {r['peak_streams']:4.0f}  "
                f"client ITL p50 {r['itl_p50'] * 1000:5.1f} ms p99 {r['itl_p99'] * 1000:6.1f} ms  "
                f"engine ITL p99 {engine_p99:6.1f} ms (ratio {r['itl_p99'] * 1000 / engine_p99:.2f})"
            )


if __name__ == "__main__":
    main()
