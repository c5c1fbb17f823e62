"""Compile 1,000 SLOs and report the time (promtool rule checking reported separately).

Run: .venv/bin/python benchmarks/bench_slo_compile.py [--slos 1000] [--rounds 3]
Baselines measured in the same run:
- compiling a single SLO, scaled to N (ratio ~1 = linear);
- the previous implementation's two slow steps on the same input: PyYAML's pure-Python
  `yaml.safe_load` for reading and `yaml.dump` (libyaml's emitter) for rendering;
- the end-to-end CLI (`reliability slo compile --no-check`) next to `reliability --help`, the
  interpreter and import start-up every command pays.
Figures are medians of `--rounds` rounds (the machine is shared; single runs are noisy).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

from reliability.slo import compile_rules, load_slo_files
from reliability.slo.writer import HEADER, promtool_check, render, yaml_dump

CLI = [sys.executable, "-c", "from reliability.cli import main; main()"]


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


def seconds(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def median(rounds: int, fn: Callable[[], float]) -> float:
    return statistics.median(fn() for _ in range(rounds))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--slos", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    n, rounds = args.slos, args.rounds
    with tempfile.TemporaryDirectory() as tmp:
        one, many, out = Path(tmp) / "one.yaml", Path(tmp) / "many.yaml", Path(tmp) / "rules.yaml"
        one.write_text(yaml.safe_dump(spec(1)))
        many.write_text(yaml.safe_dump(spec(n)))
        timed(one)  # warm imports
        runs = [timed(many) for _ in range(rounds)]
        load_s, compile_s, yaml_s = (statistics.median(r[i] for r in runs) for i in range(3))
        size = runs[0][3]
        base = [statistics.median(timed(one)[i] for _ in range(rounds)) for i in range(3)]
        services = load_slo_files([many])
        rules = compile_rules(services)
        text = many.read_text()
        old_parse = median(rounds, lambda: seconds(lambda: yaml.safe_load(text)))
        old_yaml = median(rounds, lambda: seconds(lambda: HEADER + yaml_dump(rules)))
        assert HEADER + yaml_dump(rules) == render(services), "fast emitter differs from yaml.dump"
        cmd = [*CLI, "slo", "compile", str(many), "-o", str(out), "--no-check"]
        cli_s = median(rounds, lambda: seconds(lambda: subprocess.run(cmd, check=True, capture_output=True)))
        start_s = median(
            rounds, lambda: seconds(lambda: subprocess.run([*CLI, "--help"], capture_output=True))
        )
        check_s = seconds(lambda: promtool_check(rules, services))
    print(f"SLOs: {n}  output: {size / 1e6:.1f} MB  (median of {rounds} rounds)")
    print(f"load+validate: {load_s:.3f} s   (PyYAML safe_load alone, as before: {old_parse:.3f} s)")
    print(f"compile (rule dicts): {compile_s:.3f} s")
    print(
        f"YAML rendering: {yaml_s:.3f} s   "
        f"(yaml.dump, as before: {old_yaml:.3f} s; ratio {yaml_s / old_yaml:.2f})"
    )
    total, base_total = load_s + compile_s + yaml_s, sum(base) * n
    print(
        f"total {total:.3f} s; ratio to {n} x single-SLO baseline "
        f"({base_total:.3f} s): {total / base_total:.2f}"
    )
    print(
        f"end to end `slo compile --no-check`: {cli_s:.3f} s; CLI start-up (`--help`): {start_s:.3f} s; "
        f"difference {cli_s - start_s:.3f} s"
    )
    print(f"promtool check rules (separate): {check_s:.3f} s")


if __name__ == "__main__":
    main()
