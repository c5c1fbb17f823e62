"""The process wrapper (start, refusal, stop, death with its parent) and the Prometheus exporter."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from reliability.errors import HarnessError
from reliability.lab.haproxy.config import RegionGatewaySpec
from reliability.lab.haproxy.process import check_config
from reliability.prometheus import LocalPrometheus, ScrapeTarget
from reliability.tools import free_port
from tests.lab.haproxy.conftest import REPO_ROOT, Gateways, complete, metrics_url, wait_for
from tests.lab.haproxy.stubs import StubFleet

pytestmark = pytest.mark.slow

# What the gateways' SLOs, alerts and dashboards are written on (documented in the package docstring).
DOCUMENTED_SERIES = [
    ('haproxy_frontend_http_requests_total{proxy="inference"}', "counter"),
    ('haproxy_frontend_http_responses_total{proxy="inference",code="5xx"}', "counter"),
    ('haproxy_frontend_http_responses_total{proxy="inference",code="2xx"}', "counter"),
    ('haproxy_backend_http_requests_total{proxy="vllm"}', "counter"),
    ('haproxy_backend_http_responses_total{proxy="vllm",code="5xx"}', "counter"),
    ('haproxy_backend_active_servers{proxy="vllm"}', "gauge"),
    ('haproxy_backend_backup_servers{proxy="vllm"}', "gauge"),
    ('haproxy_backend_status{proxy="vllm",state="UP"}', "gauge"),
    ('haproxy_backend_retry_warnings_total{proxy="vllm"}', "counter"),
    ('haproxy_backend_redispatch_warnings_total{proxy="vllm"}', "counter"),
    ('haproxy_backend_connection_errors_total{proxy="vllm"}', "counter"),
    ('haproxy_backend_response_time_average_seconds{proxy="vllm"}', "gauge"),
    ('haproxy_server_status{proxy="vllm",server="a",state="UP"}', "gauge"),
    ('haproxy_server_status{proxy="vllm",server="a",state="DOWN"}', "gauge"),
    ('haproxy_server_status{proxy="vllm",server="a",state="MAINT"}', "gauge"),
    ('haproxy_server_check_status{proxy="vllm",server="a",state="L7OK"}', "gauge"),
    ('haproxy_server_check_up_down_total{proxy="vllm",server="a"}', "counter"),
    ('haproxy_server_http_responses_total{proxy="vllm",server="a",code="5xx"}', "counter"),
    ('haproxy_server_current_sessions{proxy="vllm",server="a"}', "gauge"),
]


def _series(text: str) -> dict[str, tuple[float, str]]:
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sample.labels.items())
            out[f"{sample.name}{{{labels}}}"] = (sample.value, family.type)
    return out


def test_exporter_serves_the_documented_series_and_prometheus_scrapes_them(
    fleet: StubFleet, gateways: Gateways, local_prometheus: LocalPrometheus
) -> None:
    a, b = fleet.node("a"), fleet.node("b", reply_status=503)
    gw = gateways.region([a, b], check={"interval_s": 30, "fall": 3, "rise": 2})
    session = requests.Session()
    codes = [complete(session, gw).status_code for _ in range(6)]
    assert codes == [200] * 6  # b's 503s were retried on a

    series = _series(requests.get(metrics_url(gw), timeout=5).text)
    for name, kind in DOCUMENTED_SERIES:
        assert name in series, name
        assert series[name][1] == kind, name
    assert series['haproxy_frontend_http_requests_total{proxy="inference"}'][0] == 6
    assert series['haproxy_frontend_http_responses_total{proxy="inference",code="2xx"}'][0] == 6
    assert series['haproxy_backend_active_servers{proxy="vllm"}'][0] == 2
    assert series['haproxy_server_status{proxy="vllm",server="a",state="UP"}'][0] == 1
    assert series['haproxy_backend_retry_warnings_total{proxy="vllm"}'][0] >= 1

    local_prometheus.targets.append(
        ScrapeTarget("haproxy-region", f"127.0.0.1:{gw.spec.metrics_port}", {"region": "r1"})
    )
    local_prometheus.reload()

    def scraped() -> float | None:
        r = requests.get(
            f"{local_prometheus.url}/api/v1/query",
            params={"query": 'sum(haproxy_server_status{job="haproxy-region",proxy="vllm",state="UP"})'},
            timeout=5,
        ).json()
        result = r["data"]["result"]
        return float(result[0]["value"][1]) if result else None

    assert wait_for(scraped, timeout=20) == 2


def test_a_port_in_use_is_reported_with_haproxys_message(
    fleet: StubFleet, gateways: Gateways, sockdir: Path
) -> None:
    first = gateways.region([fleet.node("a")])
    assert isinstance(first.spec, RegionGatewaySpec)
    clash = first.spec.model_copy(update={"name": "region/clash", "stats_socket": sockdir / "clash.sock"})
    with pytest.raises(HarnessError, match="Address already in use"):
        gateways.start(clash)
    assert not gateways.procs[-1].alive()


def test_a_config_haproxy_rejects_is_reported_with_its_message(tmp_path: Path) -> None:
    config = tmp_path / "bad.cfg"
    config.write_text("global\n    nbthread 0\n")
    with pytest.raises(HarnessError, match="nbthread"):
        check_config(config)


def test_stop_is_graceful_and_the_log_is_kept(fleet: StubFleet, gateways: Gateways) -> None:
    gw = gateways.region([fleet.node("a")])
    pid = gw.pid
    assert pid is not None
    assert gw.stop(grace_s=5.0) == 0
    assert not Path(f"/proc/{pid}").exists() or _zombie_or_gone(pid)
    assert gw.log_path.exists() and gw.config_path.exists()


def _zombie_or_gone(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z"
    except OSError:
        return True


def test_haproxy_dies_with_the_process_that_started_it(tmp_path: Path, sockdir: Path) -> None:
    spec = RegionGatewaySpec(
        name="region/orphan",
        region="orphan",
        port=free_port(),
        metrics_port=free_port(),
        stats_socket=sockdir / "o.sock",
    )
    script = textwrap.dedent(
        f"""
        import json, sys, time
        from pathlib import Path
        from reliability.lab.haproxy.config import RegionGatewaySpec
        from reliability.lab.haproxy.process import HAProxyProcess
        spec = RegionGatewaySpec.model_validate_json({spec.model_dump_json()!r})
        proc = HAProxyProcess(spec, Path({str(tmp_path)!r}))
        proc.start()
        print(json.dumps({{"pid": proc.pid}}), flush=True)
        time.sleep(60)
        """
    )
    parent = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=REPO_ROOT
    )
    try:
        assert parent.stdout is not None
        pid = json.loads(parent.stdout.readline())["pid"]
        assert Path(f"/proc/{pid}").exists()
        os.kill(parent.pid, signal.SIGKILL)
        parent.wait(5)
        wait_for(lambda: _zombie_or_gone(pid), timeout=10)
    finally:
        if parent.poll() is None:
            parent.kill()
            parent.wait(5)
