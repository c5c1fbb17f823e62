"""The global gateway (the service endpoint) on a real HAProxy in front of real region gateways."""

from __future__ import annotations

import time

import pytest
import requests

from tests.lab.haproxy.conftest import Gateways, complete, metrics_url, url, wait_for
from tests.lab.haproxy.stubs import StubFleet

pytestmark = pytest.mark.slow


def test_active_passive_fails_over_to_the_backup_region_and_back(
    fleet: StubFleet, gateways: Gateways
) -> None:
    east_node, west_node = fleet.node("east-1"), fleet.node("west-1")
    east = gateways.region([east_node], region="east")
    west = gateways.region([west_node], region="west")
    edge = gateways.global_([east, west], routing="active-passive", primary_region="east")
    session = requests.Session()
    wait_for(lambda: requests.get(metrics_url(edge, "/health"), timeout=5).status_code == 200)
    assert {complete(session, edge).json()["node"] for _ in range(10)} == {"east-1"}

    lost = time.monotonic()
    east_node.health_status = 503  # the region's only GPU node fails its checks
    gateways.events.wait("gateway_backend_empty", after=lost, gateway="region/east", backend="vllm")
    down = gateways.events.wait("gateway_server_down", after=lost, gateway="global", server="east")
    assert down.backend == "regions" and down.reason == "Layer7 wrong status, code: 503"
    assert down.active_servers == 0 and down.backup_servers == 1
    assert requests.get(metrics_url(east, "/health"), timeout=5).status_code == 503
    answers = [complete(session, edge) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10
    assert {r.json()["node"] for r in answers} == {"west-1"}
    exported = requests.get(metrics_url(edge), timeout=5).text
    assert 'haproxy_backend_active_servers{proxy="regions"} 0' in exported
    assert 'haproxy_backend_backup_servers{proxy="regions"} 1' in exported

    healed = time.monotonic()
    east_node.health_status = 200
    gateways.events.wait("gateway_server_up", after=healed, gateway="global", server="east")
    assert {complete(session, edge).json()["node"] for _ in range(10)} == {"east-1"}


def test_active_active_balances_over_regions(fleet: StubFleet, gateways: Gateways) -> None:
    east = gateways.region([fleet.node("east-1")], region="east")
    west = gateways.region([fleet.node("west-1")], region="west")
    edge = gateways.global_([east, west], routing="active-active")
    session = requests.Session()
    answered = [complete(session, edge).json()["node"] for _ in range(20)]
    assert set(answered) == {"east-1", "west-1"}


def test_a_region_that_cannot_answer_is_retried_in_another(fleet: StubFleet, gateways: Gateways) -> None:
    east_node = fleet.node("east-1")
    # The region's own checks are slow: its gateway keeps routing to a node that stopped listening.
    east = gateways.region([east_node], region="east", check={"interval_s": 30, "fall": 3, "rise": 2})
    west = gateways.region([fleet.node("west-1")], region="west")
    edge = gateways.global_([east, west], routing="active-active", region_check={"interval_s": 30})
    session = requests.Session()
    fleet.close(east_node)
    answers = [complete(session, edge) for _ in range(10)]
    assert [r.status_code for r in answers] == [200] * 10
    assert {r.json()["node"] for r in answers} == {"west-1"}


def test_store_requests_reach_the_current_primary_without_the_prefix(
    fleet: StubFleet, gateways: Gateways
) -> None:
    east_store, west_store = fleet.node("store-east", primary=True), fleet.node("store-west")
    east = gateways.region([fleet.node("east-1")], region="east")
    edge = gateways.global_([east], stores=[east_store, west_store])
    session = requests.Session()

    def write(seq: int) -> requests.Response:
        return session.post(url(edge, "/store/write?sync=1"), json={"key": "k", "seq": seq}, timeout=5)

    # From the start (before any check has run) writes go to the primary, listed first.
    answer = write(1).json()
    assert answer == {"node": "store-east", "path": "/write?sync=1", "method": "POST"}
    assert session.get(url(edge, "/store"), timeout=5).json()["path"] == "/"

    gateways.events.wait("gateway_server_down", backend="store", server="store-west")
    promoted = time.monotonic()
    east_store.primary, west_store.primary = False, True
    gateways.events.wait("gateway_server_up", after=promoted, backend="store", server="store-west")
    gateways.events.wait("gateway_server_down", after=promoted, backend="store", server="store-east")
    assert {write(i).json()["node"] for i in range(2, 8)} == {"store-west"}
    # Model traffic never reaches a store, store traffic never reaches a region.
    assert complete(session, edge).json()["node"] == "east-1"
    assert "/v1/completions" not in east_store.paths + west_store.paths
