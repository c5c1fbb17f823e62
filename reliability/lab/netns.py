"""Network-namespace isolation fabric for the embedded lab (root only).

Layout for one lab: an `unreachable` route for the whole lab subnet in the root namespace (installed
first, removed last) so that traffic to a lab address can never fall through to the default gateway;
a Linux bridge carrying the subnet with `root_host`; one namespace per region joined to the bridge by a
veth pair, with only the connected lab route (no default route). A partition installs blackhole /32
routes on both sides of the cut: packets are dropped locally, no route is ever removed.

Every name is derived from `lab_id`, so teardown from a state file (or `cleanup_stale`) finds what a
crashed lab left behind without having recorded each step.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
import zlib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from reliability.errors import HarnessError, InputError

NAME_PREFIX = "rl"
# A benchmarking range (RFC 2544), never a real private network a request could leak to.
LAB_SUPERNET = ipaddress.ip_network("198.18.0.0/15")
# Marks routes this module installed, so cleanup can find them without a state file.
ROUTE_PROTO = "242"
# Above the kernel's connected route (metric 0): the unreachable route only wins once the bridge is gone.
UNREACHABLE_METRIC = "4242"
_CMD_TIMEOUT_S = 10.0
NETNS_DIR = Path("/run/netns")
SYS_NET = Path("/sys/class/net")
_LAB_ID = re.compile(r"^[a-z0-9]{1,8}$")
_REGION = re.compile(r"^[a-z0-9-]{1,32}$")
_MAX_REGIONS = 99  # keeps veth names ("rl<lab_id>_h<idx>") within the kernel's 15 characters


class NetnsState(BaseModel):
    """What `to_state` writes; enough to tear the lab down from another process."""

    model_config = ConfigDict(extra="forbid")

    mode: str = "netns"
    lab_id: str
    regions: list[str]
    subnet: str
    partitioned: list[str] = Field(default_factory=list)


def _run(argv: list[str], check: bool = True) -> subprocess.CompletedProcess[str]:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=_CMD_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise HarnessError(f"{' '.join(argv)}: {exc}") from exc
    if check and proc.returncode != 0:
        raise HarnessError(f"{' '.join(argv)}: {proc.stderr.strip() or f'exit {proc.returncode}'}")
    return proc


def _ip(*args: str, ns: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    base = ["ip", "-n", ns] if ns else ["ip"]
    return _run([*base, *args], check=check)


def _ip_json(*args: str, ns: str | None = None) -> list[dict[str, Any]]:
    out = _ip("-j", *args, ns=ns, check=False).stdout.strip()
    return json.loads(out) if out else []


def kernel_routes() -> list[ipaddress.IPv4Network]:
    """Destinations of the root namespace's main IPv4 table (unreachable and blackhole too)."""
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return []
    out = []
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        dst = ipaddress.IPv4Address(bytes.fromhex(fields[1])[::-1])
        mask = ipaddress.IPv4Address(bytes.fromhex(fields[7])[::-1])
        out.append(ipaddress.IPv4Network(f"{dst}/{mask}", strict=False))
    return out


def list_namespaces() -> list[str]:
    """Names of all network namespaces (`ip netns list`)."""
    return [entry["name"] for entry in _ip_json("netns", "list")]


def list_links() -> list[str]:
    """Interface names in the root namespace."""
    return [entry["ifname"] for entry in _ip_json("link", "show")]


def _link_exists(name: str, ns: str | None = None) -> bool:
    return _ip("link", "show", "dev", name, ns=ns, check=False).returncode == 0


def netns_available() -> bool:
    """True when we are root and can really create (and delete) a network namespace."""
    if os.geteuid() != 0:
        return False
    probe = f"{NAME_PREFIX}probe{os.getpid() % 100000}"
    try:
        return _ip("netns", "add", probe, check=False).returncode == 0
    except HarnessError:
        return False
    finally:
        _ip("netns", "del", probe, check=False)


def route_get(address: str, ns: str | None = None) -> str:
    """The kernel's route decision for `address` as text; an unreachable/blackhole answer is returned too."""
    proc = _ip("route", "get", address, ns=ns, check=False)
    return (proc.stdout + proc.stderr).strip()


def _validate(lab_id: str, regions: list[str], subnet: str) -> ipaddress.IPv4Network:
    if not _LAB_ID.match(lab_id):
        raise InputError("lab.id", f"{lab_id!r} must be 1-8 characters of a-z0-9 (ifnames max 15)")
    if not regions:
        raise InputError("lab.regions", "at least one region is needed")
    if len(regions) > _MAX_REGIONS:
        raise InputError("lab.regions", f"at most {_MAX_REGIONS} regions, got {len(regions)}")
    for idx, region in enumerate(regions):
        if not _REGION.match(region):
            raise InputError(f"lab.regions[{idx}]", f"{region!r} must be 1-32 characters of a-z0-9-")
    if len(set(regions)) != len(regions):
        raise InputError("lab.regions", "region names must be unique")
    try:
        net = ipaddress.ip_network(subnet, strict=True)
    except ValueError as exc:
        raise InputError("lab.subnet", str(exc)) from exc
    if not isinstance(net, ipaddress.IPv4Network) or not net.subnet_of(LAB_SUPERNET):
        raise InputError("lab.subnet", f"{subnet} must be an IPv4 network inside {LAB_SUPERNET}")
    if net.num_addresses - 2 < len(regions) + 1:
        raise InputError("lab.subnet", f"{subnet} has too few addresses for {len(regions)} regions")
    return net


def default_subnet(lab_id: str) -> str:
    """A /24 inside 198.18.0.0/15 picked from the lab id, so concurrent labs rarely share a subnet."""
    third = zlib.crc32(lab_id.encode()) % 512
    return str(ipaddress.ip_network(f"198.{18 + third // 256}.{third % 256}.0/24"))


class NetnsFabric:
    """Real isolation between regions with network namespaces, veth pairs and blackhole routes."""

    mode = "netns"

    def __init__(self, lab_id: str, regions: list[str], subnet: str | None = None) -> None:
        subnet = subnet or default_subnet(lab_id)
        self._net = _validate(lab_id, list(regions), subnet)
        self.lab_id = lab_id
        self.regions = list(regions)
        self.subnet = str(self._net)
        hosts = self._net.hosts()
        self.root_host = str(next(hosts))
        self._hosts = {region: str(next(hosts)) for region in self.regions}
        self._partitioned: set[str] = set()

    # -- names ---------------------------------------------------------------------------------------
    @property
    def bridge(self) -> str:
        return f"{NAME_PREFIX}{self.lab_id}_b"

    def namespace(self, region: str) -> str:
        self._check_region(region)
        return f"{NAME_PREFIX}{self.lab_id}_{region}"

    def _veth(self, region: str) -> tuple[str, str]:
        idx = self.regions.index(region)
        return f"{NAME_PREFIX}{self.lab_id}_h{idx}", f"{NAME_PREFIX}{self.lab_id}_n{idx}"

    def _check_region(self, region: str) -> None:
        if region not in self._hosts:
            raise InputError("region", f"unknown region {region!r}; lab has {', '.join(self.regions)}")

    @property
    def _prefixlen(self) -> int:
        return self._net.prefixlen

    # -- Fabric protocol -----------------------------------------------------------------------------
    def region_host(self, region: str) -> str:
        self._check_region(region)
        return self._hosts[region]

    def wrap_command(self, region: str, argv: list[str]) -> list[str]:
        return ["ip", "netns", "exec", self.namespace(region), *argv]

    def setup(self) -> None:
        """Build the fabric; on any failure undo what was made and raise HarnessError."""
        try:
            self._install_unreachable()
            self._setup_bridge()
            for region in self.regions:
                self._setup_region(region)
        except BaseException:
            self.teardown()
            raise

    def partition(self, region: str) -> None:
        """Drop traffic between `region` and the root namespace and every other region, both ways."""
        self._check_region(region)
        for ns, dest in self._partition_routes(region):
            _ip("route", "replace", "blackhole", f"{dest}/32", "proto", ROUTE_PROTO, ns=ns)
        self._partitioned.add(region)

    def heal(self, region: str | None = None) -> None:
        """Remove exactly the blackhole routes a partition installed (all partitions when region is None)."""
        targets = [region] if region is not None else sorted(self._partitioned)
        for target in targets:
            self._check_region(target)
            for ns, dest in self._partition_routes(target):
                # Another active partition may need the same route; keep it then.
                if (ns, dest) in self._other_partition_routes(target):
                    continue
                _ip("route", "del", "blackhole", f"{dest}/32", "proto", ROUTE_PROTO, ns=ns, check=False)
            self._partitioned.discard(target)

    def is_partitioned(self, region: str) -> bool:
        self._check_region(region)
        return region in self._partitioned

    def teardown(self) -> None:
        """Remove everything this lab may have created; safe to call twice or on half-made state."""
        for region in self.regions:
            _ip("route", "del", "blackhole", f"{self._hosts[region]}/32", "proto", ROUTE_PROTO, check=False)
        existing = set(list_namespaces())
        for region in self.regions:
            ns = self.namespace(region)
            if ns in existing:
                _ip("netns", "del", ns, check=False)
            host_end, _ = self._veth(region)
            if _link_exists(host_end):
                _ip("link", "del", host_end, check=False)
        if _link_exists(self.bridge):
            _ip("link", "del", self.bridge, check=False)
        self._partitioned.clear()
        # Last, so no moment exists where the subnet is routable elsewhere.
        self._remove_unreachable()
        left = self.remains()
        if left:
            # The `ip` calls above ignore their errors (each step may find its object gone); the
            # kernel's own view says whether the teardown really happened.
            raise HarnessError(f"network teardown of lab {self.lab_id} left {', '.join(left)}")

    def remains(self) -> list[str]:
        """What of this lab still exists, read from the kernel (/run/netns, /sys/class/net,
        /proc/net/route) rather than from `ip`, whose failure would read as "nothing there"."""
        left = [
            f"netns {self.namespace(r)}" for r in self.regions if (NETNS_DIR / self.namespace(r)).exists()
        ]
        links = [self.bridge] + [self._veth(r)[0] for r in self.regions]
        left += [f"link {name}" for name in links if (SYS_NET / name).exists()]
        net = ipaddress.ip_network(self.subnet)
        left += [f"route {dst}" for dst in kernel_routes() if dst.subnet_of(net)]  # type: ignore[arg-type]
        return left

    def to_state(self) -> dict[str, Any]:
        return NetnsState(
            lab_id=self.lab_id,
            regions=self.regions,
            subnet=self.subnet,
            partitioned=sorted(self._partitioned),
        ).model_dump()

    @classmethod
    def from_state(cls, d: dict[str, Any]) -> NetnsFabric:
        try:
            state = NetnsState.model_validate(d)
        except ValidationError as exc:
            err = exc.errors()[0]
            field = ".".join(str(p) for p in err["loc"]) or "(top level)"
            raise InputError(f"fabric.{field}", err["msg"]) from exc
        if state.mode != "netns":
            raise InputError("fabric.mode", f"expected 'netns', got {state.mode!r}")
        fabric = cls(state.lab_id, state.regions, state.subnet)
        fabric._partitioned = set(state.partitioned)
        return fabric

    # -- steps ---------------------------------------------------------------------------------------
    def _unreachable_args(self) -> list[str]:
        return ["unreachable", self.subnet, "metric", UNREACHABLE_METRIC, "proto", ROUTE_PROTO]

    def _install_unreachable(self) -> None:
        mine = _ip_json("route", "show", "exact", self.subnet, "proto", ROUTE_PROTO)
        if any(r.get("type") == "unreachable" for r in mine):
            return
        clash = [r for r in _ip_json("route", "show", "match", self.subnet) if r.get("dst") != "default"]
        if clash:
            raise HarnessError(f"lab subnet {self.subnet} is already routed here: {clash[0]}; choose another")
        _ip("route", "add", *self._unreachable_args())

    def _remove_unreachable(self) -> None:
        _ip("route", "del", *self._unreachable_args(), check=False)

    def _setup_bridge(self) -> None:
        if not _link_exists(self.bridge):
            _ip("link", "add", self.bridge, "type", "bridge")
        _ip("addr", "replace", f"{self.root_host}/{self._prefixlen}", "dev", self.bridge)
        _ip("link", "set", self.bridge, "up")

    def _setup_region(self, region: str) -> None:
        ns = self.namespace(region)
        host_end, ns_end = self._veth(region)
        if ns not in list_namespaces():
            _ip("netns", "add", ns)
        _ip("link", "set", "lo", "up", ns=ns)
        if not _link_exists(host_end):
            if _link_exists(ns_end, ns=ns):
                _ip("link", "del", ns_end, ns=ns)
            _ip("link", "add", host_end, "type", "veth", "peer", "name", ns_end, "netns", ns)
        _ip("link", "set", host_end, "master", self.bridge)
        _ip("link", "set", host_end, "up")
        _ip("addr", "replace", f"{self._hosts[region]}/{self._prefixlen}", "dev", ns_end, ns=ns)
        _ip("link", "set", ns_end, "up", ns=ns)

    def _partition_routes(self, region: str) -> list[tuple[str | None, str]]:
        """(namespace or None for root, destination) of every blackhole route partitioning `region`."""
        ns = self.namespace(region)
        own = self._hosts[region]
        routes: list[tuple[str | None, str]] = [(None, own), (ns, self.root_host)]
        for other in self.regions:
            if other != region:
                routes += [(ns, self._hosts[other]), (self.namespace(other), own)]
        return routes

    def _other_partition_routes(self, region: str) -> set[tuple[str | None, str]]:
        return {r for other in self._partitioned if other != region for r in self._partition_routes(other)}


def cleanup_stale(prefix: str = NAME_PREFIX, subnet: str | None = None) -> list[str]:
    """Remove namespaces and root links whose names start with `prefix`, and this module's routes.

    Routes are recognised by their protocol tag and limited to `subnet` (default: the whole lab range).
    Pass `f"rl{lab_id}_"` and that lab's subnet to clean one lab without touching others.
    Returns what was removed, for the user.
    """
    if not prefix.startswith(NAME_PREFIX):
        raise InputError("prefix", f"{prefix!r} must start with {NAME_PREFIX!r}; other names are not ours")
    scope = ipaddress.ip_network(subnet or str(LAB_SUPERNET))
    removed: list[str] = []
    for ns in list_namespaces():
        if ns.startswith(prefix):
            _ip("netns", "del", ns, check=False)
            removed.append(f"netns {ns}")
    # Host veth ends first: deleting them also deletes peers left in the root namespace.
    for link in sorted(list_links(), key=lambda name: name.endswith("_b")):
        if link.startswith(prefix) and _link_exists(link):
            _ip("link", "del", link, check=False)
            removed.append(f"link {link}")
    for route in _ip_json("route", "show", "proto", ROUTE_PROTO):
        dst = route.get("dst", "")
        try:
            inside = ipaddress.ip_network(dst if "/" in dst else f"{dst}/32").subnet_of(scope)  # type: ignore[arg-type]
        except (ValueError, TypeError):
            continue
        if inside:
            args = [route.get("type", "unicast"), dst, "proto", ROUTE_PROTO]
            if "metric" in route:
                args += ["metric", str(route["metric"])]
            _ip("route", "del", *args, check=False)
            removed.append(f"route {route.get('type', '')} {dst}")
    return removed
