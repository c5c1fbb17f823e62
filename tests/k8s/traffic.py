"""Per-region traffic as Prometheus sees it, for partition tests against the fake API server.

The fake API server has no CNI, so a NetworkPolicy changes nothing by itself. Here the test plays
the CNI: a metrics endpoint on 127.0.0.1 reports each region's requests per second, and while
`enforced`, a NetworkPolicy of the fake cluster that isolates a region (our annotation names it)
drops that region's rate to 0 at the next scrape. A real Prometheus scrapes it (every 0.5 s), and
the harness reads it through a real signals profile (`data/traffic-profile.yaml`, whose
`requests_by_region` is `sum by (region) (...)`). `enforced = False` is a CNI that does not cut
existing connections: the policy is stored, the traffic goes on.
"""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests

from reliability.prometheus import LocalPrometheus
from reliability.prometheus.server import ScrapeTarget

PROFILE = Path(__file__).resolve().parent / "data" / "traffic-profile.yaml"
METRIC = "reliability_test_region_requests_per_second"
PARTITIONED = "reliability.dev/partitioned-region"


class RegionTraffic:
    def __init__(self, workdir: Path) -> None:
        self.api: Any = None  # the FakeKubeAPI of the running test
        self.enforced = True
        self.rps: dict[str, float] = {}
        self.reset()
        traffic = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = traffic.exposition().encode()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        port = self.server.server_address[1]
        self.prometheus = LocalPrometheus(
            workdir, targets=[ScrapeTarget("traffic", f"127.0.0.1:{port}")], scrape_interval="500ms"
        )

    def reset(self) -> None:
        self.enforced = True
        self.rps = {"us-east": 10.0, "eu-west": 10.0}

    @property
    def url(self) -> str:
        return self.prometheus.url

    def isolated(self) -> set[str]:
        if self.api is None or not self.enforced:
            return set()
        policies = self.api.list("networkpolicies")
        return {str((p["metadata"].get("annotations") or {}).get(PARTITIONED)) for p in policies}

    def exposition(self) -> str:
        cut = self.isolated()
        lines = [f"# TYPE {METRIC} gauge"]
        for region, rps in sorted(self.rps.items()):
            lines.append(f'{METRIC}{{region="{region}"}} {0.0 if region in cut else rps}')
        return "\n".join(lines) + "\n"

    def seen(self) -> dict[str, float]:
        r = requests.get(f"{self.url}/api/v1/query", params={"query": METRIC}, timeout=5)
        r.raise_for_status()
        return {s["metric"]["region"]: float(s["value"][1]) for s in r.json()["data"]["result"]}

    def settle(self, timeout: float = 30.0) -> None:
        """Wait until Prometheus shows what the endpoint reports now (one scrape later), so that a
        test starts from its own cluster's traffic, not the previous test's."""
        cut = self.isolated()
        wanted = {r: 0.0 if r in cut else v for r, v in self.rps.items()}
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.seen() == wanted:
                return
            time.sleep(0.1)
        raise RuntimeError(f"Prometheus shows {self.seen()}, not {wanted}")

    def start(self) -> RegionTraffic:
        self.thread.start()
        self.prometheus.start()
        self.settle()
        return self

    def stop(self) -> None:
        self.prometheus.stop()
        self.server.shutdown()
        self.server.server_close()
