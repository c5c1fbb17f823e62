"""Compile 1,000 SLOs and report the time (promtool rule checking reported separately).

Run: .venv/bin/python benchmarks/bench_slo_compile.py [--slos 1000]
Baseline measured in the same run: compiling a single SLO, scaled to N (ratio ~1 = linear).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import yaml

from reliability.slo import compile_rules, load_slo_files
from reliability.slo.writer import promtool_check, render


def spec(n: int) -> dict[str, object]:
    return {
        "version": "reliability/v1",
        "service": "bench",
        "period": "28d",
        "slos": [
            {
                "name": f"slo-{i}",
                "objective": 99.9,
                "runbook": "bench",
                "min_request_rate": 1,
                "sli": {
                    "events": {
                        "error_query": f'sum(rate(http_total{{route="r{i}",code=~"5.."}}[{{{{.window}}}}]))',
                        "total_query": f'sum(rate(http_total{{route="r{i}"}}[{{{{.window}}}}]))',
                    }
                },
                "alerting": {"name": f"Bench{i}"},
            }
            for i in range(n)
        ],
    }


def timed(path: Path) -> tuple[float, float, float, int]:
    """(load+validate, compile to rule dicts, YAML rendering) seconds, output size."""
    t0 = time.perf_counter()
    services = load_slo_files([path])
    t1 = time.perf_counter()
    compile_rules(services)
    t2 = time.perf_counter()
    text = render(services)  # compiles again, then emits YAML
    t3 = time.perf_counter()
    return t1 - t0, t2 - t1, (t3 - t2) - (t2 - t1), len(text)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=1000)
    n = parser.parse_args().slos
    with tempfile.TemporaryDirectory() as tmp:
        one, many = Path(tmp) / "one.yaml", Path(tmp) / "many.yaml"
        one.write_text(yaml.safe_dump(spec(1)))
        many.write_text(yaml.safe_dump(spec(n)))
        timed(one)  # warm imports
        base = timed(one)
        load_s, compile_s, yaml_s, size = timed(many)
        services = load_slo_files([many])
        t0 = time.perf_counter()
        promtool_check(compile_rules(services), services)
        check_s = time.perf_counter() - t0
    print(f"SLOs: {n}  output: {size / 1e6:.1f} MB")
    print(f"load+validate: {load_s:.3f} s")
    print(f"compile (rule dicts): {compile_s:.3f} s")
    print(f"YAML rendering: {yaml_s:.3f} s")
    total, base_total = load_s + compile_s + yaml_s, sum(base[:3]) * n
    print(
        f"total {total:.3f} s; ratio to {n} x single-SLO baseline "
        f"({base_total:.3f} s): {total / base_total:.2f}"
    )
    print(f"promtool check rules (separate): {check_s:.3f} s")


if __name__ == "__main__":
    main()
