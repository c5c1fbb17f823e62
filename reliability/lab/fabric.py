"""How lab components reach each other across region boundaries, and how a region is cut off.

Two isolation modes behind one small interface used by the supervisor:
- `netns` (root): each region is a network namespace; a partition installs blackhole routes
  (reliability.lab.netns).
- `proxy` (anyone): everything on 127.0.0.1; every cross-region path goes through an in-path TCP
  proxy (reliability.lab.proxy) that blackholes the paths of a partitioned region.
Paths inside a region, and Prometheus scrapes in proxy mode, are direct.
"""

from __future__ import annotations

from typing import Any, Literal

import requests

from reliability.errors import HarnessError, InputError
from reliability.lab.netns import NetnsFabric, netns_available
from reliability.tools import free_port

GLOBAL = "global"  # the source of paths from outside the regions (global gateway, supervisor)
Isolation = Literal["auto", "netns", "proxy"]


def choose_isolation(requested: str) -> str:
    if requested not in ("auto", "netns", "proxy"):
        raise InputError("isolation", f"must be auto, netns or proxy, not {requested!r}")
    if requested == "auto":
        return "netns" if netns_available() else "proxy"
    if requested == "netns" and not netns_available():
        raise HarnessError("netns isolation needs root and the `ip` tool; use --isolation proxy")
    return requested


class NetnsIsolation:
    mode = "netns"

    def __init__(self, lab_id: str, regions: list[str]) -> None:
        self.net = NetnsFabric(lab_id, regions)

    def bind_host(self, region: str | None) -> str:
        return "127.0.0.1" if region is None else self.net.region_host(region)

    def wrap(self, region: str | None, argv: list[str]) -> list[str]:
        return argv if region is None else self.net.wrap_command(region, argv)

    def address(self, src: str, dst_region: str, port: int) -> str:
        return f"{self.net.region_host(dst_region)}:{port}"

    def scrape_address(self, region: str | None, port: int) -> str:
        return f"{self.bind_host(region)}:{port}"

    def free_port(self, region: str | None) -> int:
        # A namespace starts with no sockets; loopback's free ports keep every port unique lab-wide.
        return free_port()

    def setup(self) -> None:
        self.net.setup()

    def proxy_spec(self) -> dict[str, Any] | None:
        return None

    def partition(self, region: str) -> None:
        self.net.partition(region)

    def heal(self, region: str | None = None) -> None:
        self.net.heal(region)

    def teardown(self) -> None:
        self.net.teardown()

    def to_state(self) -> dict[str, Any]:
        return self.net.to_state()


class ProxyIsolation:
    mode = "proxy"

    def __init__(self, lab_id: str, regions: list[str]) -> None:
        self.regions = list(regions)
        self.routes: dict[tuple[str, str, int], int] = {}
        self.admin_port = free_port()
        self.partitioned: set[str] = set()

    def bind_host(self, region: str | None) -> str:
        return "127.0.0.1"

    def wrap(self, region: str | None, argv: list[str]) -> list[str]:
        return argv

    def address(self, src: str, dst_region: str, port: int) -> str:
        """A proxy listener for the path src -> (dst_region, port); made on first use, before start."""
        if src == dst_region:
            return f"127.0.0.1:{port}"
        key = (src, dst_region, port)
        if key not in self.routes:
            self.routes[key] = free_port()
        return f"127.0.0.1:{self.routes[key]}"

    def scrape_address(self, region: str | None, port: int) -> str:
        return f"127.0.0.1:{port}"

    def free_port(self, region: str | None) -> int:
        return free_port()

    def setup(self) -> None:
        pass  # the proxy process is started by the supervisor with the other components

    def proxy_spec(self) -> dict[str, Any]:
        return {
            "host": "127.0.0.1",
            "admin_port": self.admin_port,
            "routes": [
                {"listen_port": listen, "target": f"127.0.0.1:{port}", "src": src, "dst": dst}
                for (src, dst, port), listen in self.routes.items()
            ],
        }

    def _push(self) -> None:
        try:
            r = requests.post(
                f"http://127.0.0.1:{self.admin_port}/partitions",
                json={"partitioned": sorted(self.partitioned)},
                timeout=5,
            )
            r.raise_for_status()
        except requests.RequestException as exc:
            raise HarnessError(f"the lab's proxy fabric did not take the partition change: {exc}") from exc

    def partition(self, region: str) -> None:
        if region not in self.regions:
            raise InputError("region", f"unknown region {region!r}; lab has {', '.join(self.regions)}")
        self.partitioned.add(region)
        self._push()

    def heal(self, region: str | None = None) -> None:
        if region is None:
            self.partitioned.clear()
        else:
            self.partitioned.discard(region)
        self._push()

    def teardown(self) -> None:
        self.partitioned.clear()  # the proxy process dies with the lab; nothing outside it to undo

    def to_state(self) -> dict[str, Any]:
        return {"mode": "proxy", "admin_port": self.admin_port, "partitioned": sorted(self.partitioned)}


def make_isolation(mode: str, lab_id: str, regions: list[str]) -> NetnsIsolation | ProxyIsolation:
    return NetnsIsolation(lab_id, regions) if mode == "netns" else ProxyIsolation(lab_id, regions)
