"""The netns fabric against the real kernel: namespaces, veths, a bridge and blackhole routes.

Every test uses its own lab id and subnet and tears everything down in a fixture; destinations are only
the namespaces' own lab addresses.
"""

from __future__ import annotations

import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator

import pytest

from reliability.errors import InputError
from reliability.lab.netns import (
    NetnsFabric,
    cleanup_stale,
    list_links,
    list_namespaces,
    netns_available,
    route_get,
)

pytestmark = pytest.mark.root
needs_root = pytest.mark.skipif(
    not netns_available(), reason="needs root and a working `ip netns add` (network namespaces)"
)

PORT = 8080
CLIENT = (
    "import sys, urllib.request\n"
    "try:\n"
    "    urllib.request.urlopen(sys.argv[1], timeout=1.0).read()\n"
    "except OSError as exc:\n"
    "    print(exc); sys.exit(1)\n"
)


def _snapshot() -> tuple[list[str], list[str], str]:
    routes = subprocess.run(["ip", "route", "show"], capture_output=True, text=True, check=True).stdout
    return sorted(list_namespaces()), sorted(list_links()), routes


@pytest.fixture
def fabric() -> Iterator[NetnsFabric]:
    lab_id = "t" + uuid.uuid4().hex[:6]
    fab = NetnsFabric(lab_id, ["east", "west"])
    try:
        yield fab
    finally:
        fab.teardown()


@pytest.fixture
def server(fabric: NetnsFabric) -> Iterator[str]:
    """A real HTTP server inside region east's namespace, bound to east's lab address."""
    fabric.setup()
    host = fabric.region_host("east")
    argv = [sys.executable, "-m", "http.server", "--bind", host, str(PORT)]
    proc = subprocess.Popen(
        fabric.wrap_command("east", argv), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    url = f"http://{host}:{PORT}/"
    try:
        for _ in range(100):  # up to ~10 s for the interpreter to start on a busy machine
            if _get_from_root(url):
                break
            time.sleep(0.1)
        else:
            pytest.fail("HTTP server in the east namespace never answered")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def _get_from_root(url: str) -> bool:
    try:
        urllib.request.urlopen(url, timeout=1.0).read()
        return True
    except (urllib.error.URLError, OSError):
        return False


def _get_from_region(fabric: NetnsFabric, region: str, url: str) -> bool:
    argv = fabric.wrap_command(region, [sys.executable, "-c", CLIENT, url])
    return subprocess.run(argv, capture_output=True, timeout=20).returncode == 0


def _leaks(route: str) -> bool:
    """True when the kernel would send the packet out of the machine (eth0 or any gateway)."""
    return "eth0" in route or " via " in f" {route}"


def test_names_and_commands_follow_the_lab_id() -> None:
    fab = NetnsFabric("abc123", ["us-east", "eu"], "198.18.7.0/24")
    assert fab.mode == "netns"
    assert fab.root_host == "198.18.7.1"
    assert {fab.region_host("us-east"), fab.region_host("eu")} == {"198.18.7.2", "198.18.7.3"}
    assert fab.wrap_command("eu", ["sleep", "1"]) == ["ip", "netns", "exec", "rlabc123_eu", "sleep", "1"]
    assert (
        all(len(name) <= 15 for region in fab.regions for name in fab._veth(region)) and len(fab.bridge) <= 15
    )


@pytest.mark.parametrize(
    ("args", "field"),
    [
        (("Bad_ID", ["a"], "198.18.1.0/24"), "lab.id"),
        (("ok", ["a"], "10.0.0.0/24"), "lab.subnet"),
        (("ok", ["a", "b"], "198.18.1.0/30"), "lab.subnet"),
        (("ok", ["a", "a"], "198.18.1.0/24"), "lab.regions"),
        (("ok", [], "198.18.1.0/24"), "lab.regions"),
    ],
)
def test_bad_input_is_an_input_error(args: tuple[str, list[str], str], field: str) -> None:
    with pytest.raises(InputError) as info:
        NetnsFabric(*args)
    assert info.value.location == field


def test_bad_state_is_an_input_error() -> None:
    with pytest.raises(InputError, match="fabric"):
        NetnsFabric.from_state({"lab_id": "x1", "regions": ["a"], "subnet": "198.18.1.0/24", "extra": 1})
    fab = NetnsFabric("x1", ["a"])
    with pytest.raises(InputError, match="unknown region"):
        fab.partition("nowhere")


@needs_root
def test_partition_drops_traffic_locally_and_heal_restores_it(fabric: NetnsFabric, server: str) -> None:
    east = fabric.region_host("east")
    assert _get_from_region(fabric, "west", server)

    fabric.partition("east")
    assert fabric.is_partitioned("east") and not fabric.is_partitioned("west")
    assert not _get_from_root(server)
    assert not _get_from_region(fabric, "west", server)
    for ns in (None, fabric.namespace("west")):
        decision = route_get(east, ns=ns)
        assert not _leaks(decision), decision
    blackhole = subprocess.run(["ip", "route", "show", "exact", f"{east}/32"], capture_output=True, text=True)
    assert blackhole.stdout.startswith("blackhole"), blackhole.stdout

    fabric.heal("east")
    assert not fabric.is_partitioned("east")
    assert _get_from_root(server)
    assert _get_from_region(fabric, "west", server)
    assert fabric.bridge in route_get(east)


@needs_root
def test_bridge_down_falls_on_the_unreachable_route(fabric: NetnsFabric) -> None:
    fabric.setup()
    east = fabric.region_host("east")
    assert fabric.bridge in route_get(east)
    subprocess.run(["ip", "link", "set", fabric.bridge, "down"], check=True, timeout=10)
    decision = route_get(east)
    assert not _leaks(decision), decision
    assert "No route to host" in decision, decision
    shown = subprocess.run(["ip", "route", "show", "match", east], capture_output=True, text=True).stdout
    assert f"unreachable {fabric.subnet}" in shown, shown


@needs_root
def test_teardown_from_state_leaves_nothing(fabric: NetnsFabric) -> None:
    before = _snapshot()
    fabric.setup()
    fabric.setup()  # idempotent: a restarted supervisor may call it again
    fabric.partition("west")
    assert _snapshot() != before
    state = fabric.to_state()
    assert state["partitioned"] == ["west"]

    restored = NetnsFabric.from_state(state)
    assert restored.is_partitioned("west")
    restored.teardown()
    restored.teardown()
    assert _snapshot() == before


@needs_root
def test_teardown_tolerates_a_namespace_that_is_already_gone(fabric: NetnsFabric) -> None:
    before = _snapshot()
    fabric.setup()
    subprocess.run(["ip", "netns", "del", fabric.namespace("east")], check=True, timeout=10)
    NetnsFabric.from_state(fabric.to_state()).teardown()
    assert _snapshot() == before


@needs_root
def test_cleanup_stale_removes_a_crashed_lab_without_state(fabric: NetnsFabric) -> None:
    before = _snapshot()
    fabric.setup()
    fabric.partition("east")
    removed = cleanup_stale(f"rl{fabric.lab_id}_", subnet=fabric.subnet)
    assert any(item.startswith("netns ") for item in removed)
    assert _snapshot() == before


def test_cleanup_stale_refuses_foreign_prefixes() -> None:
    with pytest.raises(InputError):
        cleanup_stale("eth")
