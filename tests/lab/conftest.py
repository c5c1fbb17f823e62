"""The lab under test: one running twin per isolation mode for the whole session, healed between
tests, and small helpers that read what a user of the lab would read (the event log, Prometheus,
HAProxy's runtime API, the ingress).

`twin` is session-scoped and parametrized by isolation (`proxy` always; `netns` as root); modules
whose tests do not depend on the isolation mode pin it to `PREFERRED` with
`pytestmark = pytest.mark.parametrize("twin", [PREFERRED], indirect=True)`. Tests take `lab`, which
after each test undoes every fault and waits until the fleet is whole again.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from reliability.lab import Lab, LabConfig, faults
from reliability.lab.events import read_events
from reliability.lab.haproxy.runtime import RuntimeAPI, StatRow
from reliability.lab.netns import netns_available
from reliability.lab.state import LabState, NodeState, read_state
from reliability.lab.topology import tmp_socket_dir

REPO = Path(__file__).resolve().parents[2]
HAS_NETNS = netns_available()
# The isolation mode of tests that do not depend on it (override: RELIABILITY_TEST_ISOLATION=proxy).
PREFERRED = os.environ.get("RELIABILITY_TEST_ISOLATION") or ("netns" if HAS_NETNS else "proxy")
ISOLATIONS = [
    "proxy",
    pytest.param("netns", marks=pytest.mark.skipif(not HAS_NETNS, reason="netns needs root")),
]
SLO_FILES = [REPO / "slos" / "llm-serving.yaml"]


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in extra.items():
        out[key] = deep_merge(out[key], value) if isinstance(value, dict) and key in out else value
    return out


def fast_config(**extra: Any) -> LabConfig:
    """The default topology with the slow parts of a real cluster shortened for tests."""
    base: dict[str, Any] = {
        "model": {"load_s": 0.3, "warmup_s": 0.2},
        "controller": {"provisioning_delay_s": 0.5, "rollout": {"analysis_s": 6.0, "probe_interval_s": 0.5}},
        "store": {"replication_lag_s": 1.0},
    }
    return LabConfig.model_validate(deep_merge(base, extra))


def small_config(**extra: Any) -> LabConfig:
    """One region of one GPU node: the cheapest lab, for tests of starting and stopping."""
    return fast_config(regions=[{"name": "solo", "nodes": 1}], **extra)


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.1, what: str = "") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {timeout}s: {what or check}")
        time.sleep(interval)


# -- what the lab says ----------------------------------------------------------------------------------
def events(lab: Lab, after: float = 0.0) -> list[dict[str, Any]]:
    return [e for e in read_events(lab.events_path) if e["mono"] > after]


def events_named(lab: Lab, name: str, after: float = 0.0, **match: Any) -> list[dict[str, Any]]:
    """Events of the lab's ground-truth log with this name and fields, after a monotonic time."""
    return [
        e for e in events(lab, after) if e["event"] == name and all(e.get(k) == v for k, v in match.items())
    ]


def wait_event(lab: Lab, name: str, after: float, timeout: float = 30.0, **match: Any) -> dict[str, Any]:
    found = wait_for(
        lambda: events_named(lab, name, after, **match), timeout, what=f"event {name} {match or ''}"
    )
    return found[0]  # type: ignore[no-any-return]


def state(lab: Lab) -> LabState:
    s = read_state(lab.state_file)
    assert s is not None, f"no state at {lab.state_file}"
    return s


def serving_nodes(lab: Lab, region: str) -> list[NodeState]:
    return [n for n in state(lab).nodes if n.region == region and n.status == "ready" and not n.standby]


def prom_query(lab: Lab, query: str) -> list[dict[str, Any]]:
    r = requests.get(f"{lab.prometheus_url}/api/v1/query", params={"query": query}, timeout=5)
    r.raise_for_status()
    return list(r.json()["data"]["result"])


def prom_value(lab: Lab, query: str) -> float | None:
    result = prom_query(lab, query)
    return float(result[0]["value"][1]) if result else None


def gateway(lab: Lab, name: str) -> RuntimeAPI:
    """HAProxy's runtime API of a gateway: `global` or a region's name."""
    stem = "global" if name == "global" else f"region-{name}"
    gateways = lab.workdir / "gateways"
    sock = gateways / f"{stem}.sock"
    if not sock.exists():  # a long work dir: sockets live under /tmp (topology.Planner.socket_dir)
        sock = Path("/tmp") / f"rl-{state(lab).lab_id}" / f"{stem}.sock"
    return RuntimeAPI(sock)


def servers(lab: Lab, gw: str, backend: str) -> dict[str, StatRow]:
    return {r.svname: r for r in gateway(lab, gw).show_stat(backend) if r.is_server}


# -- talking to the service -------------------------------------------------------------------------------
def chat_body(lab: Lab, content: str = "Hello", max_tokens: int = 8, stream: bool = False) -> dict[str, Any]:
    return {
        "model": state(lab).served_model_name,
        "messages": [{"role": "user", "content": content}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": stream,
    }


class Traffic:
    """Chat completions through the ingress from a thread, each outcome recorded with its time."""

    def __init__(self, lab: Lab, interval_s: float = 0.05) -> None:
        self.url = f"{lab.endpoint}/v1/chat/completions"
        self.body = chat_body(lab, max_tokens=4)
        self.interval_s = interval_s
        self.results: list[tuple[float, int]] = []  # (mono when sent, HTTP status or 0)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        session = requests.Session()
        while not self._stop.is_set():
            sent = time.monotonic()
            try:
                code = session.post(self.url, json=self.body, timeout=5).status_code
            except requests.RequestException:
                code = 0
            self.results.append((sent, code))
            self._stop.wait(self.interval_s)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def between(self, start: float, end: float) -> list[int]:
        """Outcomes of the requests sent between two monotonic times."""
        return [code for t, code in self.results if start <= t <= end]


# -- the shared twin -------------------------------------------------------------------------------------
def fleet_whole(lab: Lab) -> bool:
    """Every region serves with its configured number of ready nodes, nothing is being replaced,
    no fault or partition is in place, and every gateway routes to all its servers."""
    s = state(lab)
    if s.phase != "ready" or s.faults or s.partitioned:
        return False
    live = [n for n in s.nodes if n.status not in ("replaced", "stopped")]
    if any(not n.ready or n.status != "ready" for n in live):
        return False
    for region in lab.config.regions:
        if len([n for n in live if n.region == region.name and not n.standby]) != region.nodes:
            return False
    with contextlib.suppress(Exception):
        regions = servers(lab, "global", "regions")
        nodes = {r: servers(lab, r, "vllm") for r in s.regions}
        return all(r.status == "UP" for r in regions.values()) and all(
            row.status == "UP" for rows in nodes.values() for row in rows.values()
        )
    return False


def scraped(lab: Lab) -> bool:
    """Prometheus scrapes every target of the lab as it is now (Prometheus 2.42 applies new
    targets on a 5 s tick, also the first ones: a lab just up is not monitored for a few seconds)."""
    s = state(lab)
    live = [n for n in s.nodes if n.status not in ("replaced", "stopped")]
    expected = (
        2 * len(live) + 2 * len(s.regions) + 1 + 2
    )  # vllm + dcgm, region gw + store, ingress, ksm + canary
    return len(prom_query(lab, "up == 1")) == expected


def start_lab(config: LabConfig, workdir: Path, isolation: str, **kw: Any) -> Lab:
    lab = Lab(config, workdir, isolation=isolation, slo_files=kw.pop("slo_files", SLO_FILES), **kw)
    try:
        return lab.start()
    except BaseException:
        lab.stop()
        raise


@pytest.fixture(scope="session", params=ISOLATIONS)
def twin(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Lab]:
    lab = start_lab(fast_config(), tmp_path_factory.mktemp(f"twin-{request.param}"), request.param)
    try:
        yield lab
    finally:
        lab.stop()


@pytest.fixture
def lab(twin: Lab) -> Iterator[Lab]:
    """The shared twin, whole at the start of the test and healed after it."""
    wait_for(lambda: fleet_whole(twin), 60, what="the fleet whole before the test")
    wait_for(lambda: scraped(twin), 30, what="Prometheus scraping every target")
    yield twin
    with contextlib.suppress(Exception):
        faults.heal(twin.state_file)
    wait_for(lambda: fleet_whole(twin), 60, what="the fleet whole again after the test")


def leftovers(state_doc: dict[str, Any]) -> list[str]:
    """Processes and network pieces of a lab (from its state.json as read while it ran) that still
    exist: empty when the lab left nothing behind."""
    from reliability.lab.netns import list_links, list_namespaces
    from reliability.lab.processes import process_matches

    out = []
    refs = [(c["pid"], c["marker"] or c["kind"]) for c in state_doc["components"] if c.get("pid")]
    refs += [(state_doc[k]["pid"], state_doc[k]["marker"]) for k in ("supervisor", "prometheus")]
    for pid, marker in refs:
        if pid and process_matches(pid, marker) and not _zombie(pid):
            out.append(f"pid {pid} ({marker})")
    sockets = tmp_socket_dir(state_doc["lab_id"])
    if sockets.exists():
        out.append(f"dir {sockets}")
    if state_doc["fabric"].get("mode") == "netns":
        lab_id = state_doc["fabric"]["lab_id"]
        out += [f"netns {ns}" for ns in list_namespaces() if ns.startswith(f"rl{lab_id}")]
        out += [f"link {ln}" for ln in list_links() if ln.startswith(f"rl{lab_id}")]
        import subprocess

        subnet = state_doc["fabric"]["subnet"]
        routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True).stdout
        out += [f"route {line}" for line in routes.splitlines() if subnet.rsplit(".", 1)[0] + "." in line]
    return out


def _zombie(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except (OSError, IndexError):
        return True


def read_state_doc(lab_dir: Path) -> dict[str, Any]:
    return dict(json.loads((lab_dir / "state.json").read_text()))
