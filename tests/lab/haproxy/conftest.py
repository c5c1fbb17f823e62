"""Real HAProxy processes in front of in-process stub servers, all on 127.0.0.1."""

from __future__ import annotations

import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from reliability.lab.haproxy.config import GatewaySpec, GlobalGatewaySpec, RegionGatewaySpec, Server
from reliability.lab.haproxy.logparse import GatewayEvent
from reliability.lab.haproxy.process import HAProxyProcess
from reliability.tools import free_port
from tests.lab.haproxy.stubs import StubFleet, StubNode

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[3]


class Events:
    """Gateway events as the process wrapper hands them over (from its reader thread)."""

    def __init__(self) -> None:
        self.items: list[tuple[float, GatewayEvent]] = []
        self.lines: list[str] = []
        self._lock = threading.Lock()

    def __call__(self, event: GatewayEvent) -> None:
        with self._lock:
            self.items.append((time.monotonic(), event))

    def line(self, line: str) -> None:
        with self._lock:
            self.lines.append(line)

    def matching(self, name: str, after: float = 0.0, **match: Any) -> list[tuple[float, GatewayEvent]]:
        with self._lock:
            items = list(self.items)
        return [
            (t, e)
            for t, e in items
            if e.event == name and t > after and all(getattr(e, k) == v for k, v in match.items())
        ]

    def wait(self, name: str, after: float = 0.0, timeout: float = 10.0, **match: Any) -> GatewayEvent:
        found = wait_for(lambda: self.matching(name, after, **match), timeout)
        return found[0][1]


def wait_for(check: Callable[[], Any], timeout: float = 10.0, interval: float = 0.02) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for unix sockets (sun_path is limited to 107 bytes; tmp_path can be longer)."""
    path = Path(tempfile.mkdtemp(prefix="hx-", dir="/tmp"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture
def fleet() -> Iterator[StubFleet]:
    with StubFleet() as f:
        yield f


class Gateways:
    """Starts HAProxy processes for specs; stops every one at teardown."""

    def __init__(self, workdir: Path, sockdir: Path) -> None:
        self.workdir = workdir
        self.sockdir = sockdir
        self.procs: list[HAProxyProcess] = []
        self.events = Events()

    def region(self, nodes: list[StubNode], region: str = "r1", **overrides: Any) -> HAProxyProcess:
        spec = RegionGatewaySpec(
            name=f"region/{region}",
            region=region,
            port=free_port(),
            metrics_port=free_port(),
            stats_socket=self.sockdir / f"{region}.sock",
            nodes=[Server(name=n.name, host="127.0.0.1", port=n.port) for n in nodes],
            **{"check": {"interval_s": 0.1, "fall": 2, "rise": 2}, **overrides},
        )
        return self.start(spec)

    def global_(
        self,
        regions: list[HAProxyProcess],
        stores: list[StubNode] = (),
        **overrides: Any,  # type: ignore[assignment]
    ) -> HAProxyProcess:
        spec = GlobalGatewaySpec(
            name="global",
            port=free_port(),
            metrics_port=free_port(),
            stats_socket=self.sockdir / "global.sock",
            regions=[
                Server(name=r.spec.region, host="127.0.0.1", port=r.spec.port, check_port=r.spec.metrics_port)
                for r in regions
                if isinstance(r.spec, RegionGatewaySpec)
            ],
            stores=[Server(name=s.name, host="127.0.0.1", port=s.port) for s in stores],
            **{
                "region_check": {"interval_s": 0.1, "fall": 2, "rise": 2},
                "store_check": {"path": "/primary", "interval_s": 0.1, "fall": 2, "rise": 2},
                **overrides,
            },
        )
        return self.start(spec)

    def start(self, spec: GatewaySpec) -> HAProxyProcess:
        proc = HAProxyProcess(spec, self.workdir, on_event=self.events, on_line=self.events.line)
        self.procs.append(proc)
        proc.start()
        return proc

    def stop(self) -> None:
        for proc in self.procs:
            proc.stop(grace_s=1.0)


@pytest.fixture
def gateways(tmp_path: Path, sockdir: Path) -> Iterator[Gateways]:
    gws = Gateways(tmp_path, sockdir)
    try:
        yield gws
    finally:
        gws.stop()
        leftovers = [p.pid for p in gws.procs if p.alive()]
        assert not leftovers, f"HAProxy processes left running: {leftovers}"


def url(proc: HAProxyProcess, path: str = "") -> str:
    return f"http://127.0.0.1:{proc.spec.port}{path}"


def metrics_url(proc: HAProxyProcess, path: str = "/metrics") -> str:
    return f"http://127.0.0.1:{proc.spec.metrics_port}{path}"


def complete(session: requests.Session, proc: HAProxyProcess, **body: Any) -> requests.Response:
    return session.post(url(proc, "/v1/completions"), json={"prompt": "hi", **body}, timeout=10)
