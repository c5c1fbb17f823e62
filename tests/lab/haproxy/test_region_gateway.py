"""The region gateway on a real HAProxy: balancing, health checks, retries, passive ejection,
streaming, servers added and removed at run time."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest
import requests

from reliability.lab.haproxy.config import RegionGatewaySpec, node_server_options
from reliability.lab.haproxy.runtime import RuntimeAPIError
from tests.lab.haproxy.conftest import Gateways, complete, metrics_url, url, wait_for
from tests.lab.haproxy.stubs import StubFleet

pytestmark = pytest.mark.slow


def test_requests_are_balanced_over_the_nodes(fleet: StubFleet, gateways: Gateways) -> None:
    nodes = [fleet.node(f"n{i}") for i in range(3)]
    gw = gateways.region(nodes)
    session = requests.Session()
    answered = [complete(session, gw).json()["node"] for _ in range(30)]
    assert {n.name for n in nodes} == set(answered)
    assert all(answered.count(n.name) >= 5 for n in nodes)


def test_failing_health_check_ejects_the_node_and_passing_checks_bring_it_back(
    fleet: StubFleet, gateways: Gateways
) -> None:
    a, b = fleet.node("a"), fleet.node("b")
    gw = gateways.region([a, b])
    spec = gw.spec
    assert isinstance(spec, RegionGatewaySpec)
    session = requests.Session()

    flipped = time.monotonic()
    b.health_status = 503
    down = gateways.events.wait("gateway_server_down", after=flipped, server="b")
    assert (down.gateway, down.backend) == ("region/r1", "vllm")
    assert down.reason == "Layer7 wrong status, code: 503"
    assert down.active_servers == 1
    ejected_after = gateways.events.matching("gateway_server_down", after=flipped, server="b")[0][0] - flipped
    # fall * inter, plus one interval of phase and the machine's scheduling slack
    assert ejected_after < spec.check.fall * spec.check.interval_s + 1.5

    hits = b.hits
    assert all(complete(session, gw).json()["node"] == "a" for _ in range(10))
    assert b.hits == hits

    healed = time.monotonic()
    b.health_status = 200
    up = gateways.events.wait("gateway_server_up", after=healed, server="b")
    assert up.reason == "Layer7 check passed, code: 200" and up.active_servers == 2
    assert "b" in {complete(session, gw).json()["node"] for _ in range(10)}


def test_a_refused_connection_is_retried_on_another_node(fleet: StubFleet, gateways: Gateways) -> None:
    a, b = fleet.node("a"), fleet.node("b")
    # Checks far apart: HAProxy still believes b is UP when it stops listening.
    gw = gateways.region([a, b], check={"interval_s": 30, "fall": 3, "rise": 2})
    session = requests.Session()
    assert {complete(session, gw).json()["node"] for _ in range(4)} == {"a", "b"}
    fleet.close(b)
    answers = [complete(session, gw) for _ in range(20)]
    assert [r.status_code for r in answers] == [200] * 20
    assert {r.json()["node"] for r in answers} == {"a"}
    stat = gw.runtime.server_stat("vllm", "b")
    assert stat.wredis > 0  # the requests that picked b were redispatched to a


def test_a_node_answering_errors_while_its_health_is_green_is_ejected(
    fleet: StubFleet, gateways: Gateways
) -> None:
    good, gray = fleet.node("good"), fleet.node("gray")
    # Checked every 30 s while DOWN (`downinter`): once ejected, the gray node stays out.
    check = {"interval_s": 0.1, "fall": 2, "rise": 2, "down_interval_s": 30}
    gw = gateways.region([good, gray], error_limit=3, check=check)
    session = requests.Session()
    started = time.monotonic()
    gray.reply_status = 500
    statuses = []
    for _ in range(40):
        statuses.append(complete(session, gw).status_code)
        if gateways.events.matching("gateway_server_down", after=started, server="gray"):
            break
    down = gateways.events.wait("gateway_server_down", after=started, server="gray")
    assert down.reason == "Health analyze"
    assert down.info is not None and "Detected 3 consecutive errors" in down.info
    assert 500 in statuses  # 500 is not retried: the client saw the gray failure until ejection
    # Ejected: no more errors, although its /health stays 200.
    gray_hits = gray.hits
    assert [complete(session, gw).status_code for _ in range(10)] == [200] * 10
    assert gray.hits == gray_hits
    assert any("Health analyze" in line for line in gateways.events.lines)


def test_sse_chunks_reach_the_client_as_the_node_writes_them(fleet: StubFleet, gateways: Gateways) -> None:
    node = fleet.node("n", sse_chunks=5, sse_gap_s=0.15)
    region = gateways.region([node])
    edge = gateways.global_([region])
    proc = subprocess.Popen(
        [
            "curl",
            "-sN",
            "-H",
            "Content-Type: application/json",
            "-d",
            '{"prompt": "hi", "stream": true}',
            url(edge, "/v1/completions"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    received: list[tuple[float, str]] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("data: "):
            received.append((time.monotonic(), line.strip()))
    assert proc.wait(10) == 0
    assert [text for _, text in received][-1] == "data: [DONE]"
    chunks = [t for t, text in received if text != "data: [DONE]"]
    assert len(chunks) == len(node.sse_writes) == 5
    # Through two HAProxy hops, each chunk arrives before the node has written the next one.
    for i in range(len(chunks) - 1):
        assert chunks[i] < node.sse_writes[i + 1], f"chunk {i} was held back until chunk {i + 1} was written"


def test_a_stream_that_started_is_never_replayed(fleet: StubFleet, gateways: Gateways) -> None:
    nodes = [fleet.node(name, sse_chunks=5, sse_gap_s=0.05, sse_abort_after=2) for name in ("a", "b")]
    gw = gateways.region(nodes)
    body = {"prompt": "hi", "stream": True}
    received: list[bytes] = []
    with (
        pytest.raises(requests.exceptions.ChunkedEncodingError),
        requests.post(url(gw, "/v1/completions"), json=body, stream=True, timeout=10) as r,
    ):
        assert r.status_code == 200
        for line in r.iter_lines():
            received.append(line)
    # The client got the beginning of one generation, cut: HAProxy did not start it again elsewhere.
    served = next(n.name for n in nodes if n.hits)
    expected = [f'data: {{"node": "{served}", "i": {i}}}'.encode() for i in range(2)]
    assert [line for line in received if line] == expected
    assert sum(n.hits for n in nodes) == 1


def test_servers_are_added_and_removed_at_run_time(fleet: StubFleet, gateways: Gateways) -> None:
    a, b = fleet.node("a"), fleet.node("b")
    gw = gateways.region([a])
    spec = gw.spec
    assert isinstance(spec, RegionGatewaySpec)
    api = gw.runtime
    session = requests.Session()

    added = time.monotonic()
    api.add_server("vllm", "b", "127.0.0.1", b.port, options=node_server_options(spec))
    gateways.events.wait(
        "gateway_server_up", after=added, server="b", reason="Layer7 check passed, code: 200"
    )
    assert "b" in {complete(session, gw).json()["node"] for _ in range(6)}
    state = {s.server: s for s in api.show_servers_state("vllm")}
    assert state["b"].usable and state["b"].port == b.port

    # A server whose node is still loading (port closed) gets no traffic before its checks pass.
    api.add_server("vllm", "loading", "127.0.0.1", 1, options=node_server_options(spec))
    answers = [complete(session, gw) for _ in range(10)]
    assert all(r.status_code == 200 for r in answers)
    assert api.server_stat("vllm", "loading").stot == 0

    # Removing a server with a stream in flight: drained for a while, then cut, then deleted.
    b.sse_chunks, b.sse_gap_s = 50, 0.1
    api.set_server_state("vllm", "a", "drain")
    stream_done = threading.Event()

    def stream() -> None:
        try:
            with session.post(
                url(gw, "/v1/completions"), json={"stream": True}, stream=True, timeout=10
            ) as r:
                for _ in r.iter_lines():
                    pass
        except requests.RequestException:
            pass
        stream_done.set()

    threading.Thread(target=stream, daemon=True).start()
    wait_for(lambda: api.server_stat("vllm", "b").scur == 1)
    api.set_server_state("vllm", "a", "ready")
    api.del_server("vllm", "b", drain_timeout_s=0.3)
    assert stream_done.wait(5)
    api.del_server("vllm", "loading")
    assert {s.server for s in api.show_servers_state("vllm")} == {"a"}
    assert all(complete(session, gw).json()["node"] == "a" for _ in range(5))


def test_runtime_errors_carry_haproxys_message(fleet: StubFleet, gateways: Gateways) -> None:
    gw = gateways.region([fleet.node("a")])
    api = gw.runtime
    with pytest.raises(RuntimeAPIError, match="No such backend"):
        api.add_server("nope", "x", "127.0.0.1", 1)
    with pytest.raises(RuntimeAPIError, match="Already exists a server with the same name"):
        api.add_server("vllm", "a", "127.0.0.1", 1)
    with pytest.raises(RuntimeAPIError, match="No such server"):
        api.set_server_state("vllm", "ghost", "maint")
    with pytest.raises(RuntimeAPIError, match="No such server"):
        api.del_server("vllm", "ghost")


def test_health_uri_is_green_only_while_a_node_can_serve(fleet: StubFleet, gateways: Gateways) -> None:
    node = fleet.node("n")
    gw = gateways.region([node])
    health = metrics_url(gw, "/health")
    assert requests.get(health, timeout=5).status_code == 200
    started = time.monotonic()
    node.health_status = 503
    empty = gateways.events.wait("gateway_backend_empty", after=started)
    assert (empty.backend, empty.gateway) == ("vllm", "region/r1")
    assert requests.get(health, timeout=5).status_code == 503
    assert complete(requests.Session(), gw).status_code == 503
    node.health_status = 200
    wait_for(lambda: requests.get(health, timeout=5).status_code == 200)
    # Health checks of the gateway are not traffic: the inference frontend counted none of them.
    inference = next(r for r in gw.runtime.show_stat("inference") if r.svname == "FRONTEND")
    assert inference.req_tot == 1
