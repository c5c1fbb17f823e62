"""The gateways' pure parts: config rendering (golden files), spec validation, log parsing and the
runtime API's answers - on lines and answers captured from HAProxy 2.6 (tests/lab/haproxy/fixtures)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
from pydantic import ValidationError

from reliability.lab.haproxy import config
from reliability.lab.haproxy.config import GlobalGatewaySpec, RegionGatewaySpec, node_server_options, render
from reliability.lab.haproxy.logparse import GatewayEvent, LogParser
from reliability.lab.haproxy.runtime import parse_servers_state, parse_stat_csv

HERE = Path(__file__).parent
GOLDEN = HERE / "golden"
FIXTURES = HERE / "fixtures"


def region_spec(**overrides: Any) -> RegionGatewaySpec:
    data: dict[str, Any] = {
        "name": "region/us-east",
        "region": "us-east",
        "host": "10.11.0.2",
        "port": 8080,
        "metrics_port": 8404,
        "stats_socket": "/run/lab/region-us-east.sock",
        "nodes": [
            {"name": "us-east-1", "host": "10.11.0.11", "port": 8000},
            {"name": "us-east-2", "host": "10.11.0.12", "port": 8000},
            {"name": "us-east-3", "host": "10.11.0.13", "port": 8000, "weight": 2},
        ],
        "check": {"interval_s": 0.25, "fall": 2, "rise": 3, "down_interval_s": 2},
        "error_limit": 5,
    }
    return RegionGatewaySpec.model_validate({**data, **overrides})


def global_spec(**overrides: Any) -> GlobalGatewaySpec:
    data: dict[str, Any] = {
        "name": "global",
        "port": 8080,
        "metrics_port": 8404,
        "stats_socket": "/run/lab/global.sock",
        "routing": "active-passive",
        "primary_region": "eu-west",
        "regions": [
            {"name": "us-east", "host": "10.11.0.2", "port": 8080, "check_port": 8404},
            {"name": "eu-west", "host": "10.12.0.2", "port": 8080, "check_port": 8404},
        ],
        "stores": [
            {"name": "us-east", "host": "127.0.0.1", "port": 7001},
            {"name": "eu-west", "host": "127.0.0.1", "port": 7002},
        ],
        "store_primary": "eu-west",
    }
    return GlobalGatewaySpec.model_validate({**data, **overrides})


@pytest.mark.parametrize(
    ("golden", "spec"),
    [
        ("region.cfg", lambda: region_spec()),
        ("global-active-passive.cfg", lambda: global_spec()),
        ("global-active-active.cfg", lambda: global_spec(routing="active-active", primary_region=None)),
    ],
)
def test_rendered_config_matches_golden_file_and_haproxy_accepts_it(
    golden: str, spec: Any, tmp_path: Path
) -> None:
    text = render(spec())
    path = GOLDEN / golden
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"re-render with UPDATE_GOLDEN=1 and review the diff of {path}"
    cfg = tmp_path / golden
    cfg.write_text(text)
    result = subprocess.run(["haproxy", "-c", "-f", str(cfg)], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_active_passive_makes_every_other_region_a_backup() -> None:
    text = render(global_spec())
    assert "server eu-west 10.12.0.2:8080 check" in text
    us_east = next(line for line in text.splitlines() if "server us-east 10.11.0.2" in line)
    eu_west = next(line for line in text.splitlines() if "server eu-west 10.12.0.2" in line)
    assert us_east.endswith(" backup") and not eu_west.endswith(" backup")
    assert " backup" not in render(global_spec(routing="active-active", primary_region=None))


def test_the_primary_store_is_listed_first() -> None:
    lines = render(global_spec()).split("\nbackend store\n", 1)[1].splitlines()
    servers = [line.split()[1] for line in lines if line.strip().startswith("server ")]
    assert servers == ["eu-west", "us-east"]


def test_runtime_server_options_match_the_config_file() -> None:
    spec = region_spec()
    line = next(line for line in render(spec).splitlines() if "server us-east-1 " in line)
    assert line.strip() == f"server us-east-1 10.11.0.11:8000 {' '.join(node_server_options(spec))}"
    assert "observe layer7" in line and "error-limit 5" in line and "on-error mark-down" in line
    assert "inter 250ms" in line and "fall 2" in line and "rise 3" in line and "downinter 2s" in line


def test_rendering_fails_on_a_missing_key() -> None:
    spec = region_spec()
    with pytest.raises(jinja2.UndefinedError):
        config._template().render(gw=spec, kind="region", backends=[])  # main_backend missing


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"nodes": [{"name": "a", "host": "10.0.0.1", "port": 1}] * 2}, "server names must be unique"),
        ({"nodes": [{"name": "a/b", "host": "10.0.0.1", "port": 1}]}, "String should match pattern"),
        ({"nodes": [{"name": "a", "host": "node-a.local", "port": 1}]}, "expected an IPv4 address"),
        ({"stats_socket": "relative.sock"}, "absolute path"),
        ({"stats_socket": "/" + "x" * 120}, "limited to 107 bytes"),
        ({"metrics_port": 8080}, "port and metrics_port must differ"),
        ({"retry_on": ["sometimes"]}, "retry_on"),
        ({"check": {"fall": 0}}, "check.fall"),
        ({"nbthreads": 2}, "Extra inputs are not permitted"),
    ],
)
def test_bad_region_specs_are_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as err:
        region_spec(**overrides)
    text = str(err.value)
    assert message in text or message in text.replace("\n", ".").replace(" ", ""), text


def test_bad_global_specs_are_refused() -> None:
    with pytest.raises(ValidationError, match="primary_region: unknown region 'mars'"):
        global_spec(primary_region="mars")
    with pytest.raises(ValidationError, match="store_primary: unknown store 'mars'"):
        global_spec(store_primary="mars")
    with pytest.raises(ValidationError, match="regions"):
        global_spec(regions=[])


# -- log parsing ---------------------------------------------------------------------------------------


def parse(name: str, gateway: str = "gw") -> list[GatewayEvent]:
    parser = LogParser(gateway)
    return [e for line in (FIXTURES / name).read_text().splitlines() for e in parser.feed(line)]


def test_failover_and_failback_of_a_region() -> None:
    events = parse("global-failover.log", "global")
    assert [(e.event, e.backend, e.server) for e in events] == [
        ("gateway_server_down", "regions", "east"),
        ("gateway_server_up", "regions", "east"),
    ]
    down, up = events
    assert down.reason == "Layer7 wrong status, code: 503" and down.info == "Service Unavailable"
    assert down.check_duration_ms == 0 and (down.active_servers, down.backup_servers) == (0, 1)
    assert up.reason == "Layer7 check passed, code: 200" and up.active_servers == 1
    assert down.fields() == {
        "gateway": "global",
        "backend": "regions",
        "server": "east",
        "reason": "Layer7 wrong status, code: 503",
        "info": "Service Unavailable",
        "check_duration_ms": 0,
        "active_servers": 0,
        "backup_servers": 1,
    }


def test_a_region_losing_its_last_node_reports_an_empty_backend() -> None:
    events = parse("region-empty.log", "region/us-east")
    assert [(e.event, e.server) for e in events] == [
        ("gateway_server_down", "east-1"),
        ("gateway_backend_empty", None),
        ("gateway_server_up", "east-1"),
    ]
    assert events[1].backend == "vllm" and events[1].gateway == "region/us-east"


def test_passive_ejection_of_a_gray_node() -> None:
    (down,) = parse("region-gray.log")
    assert (down.event, down.server, down.reason) == ("gateway_server_down", "gray", "Health analyze")
    assert down.info == "Detected 3 consecutive errors, last one was: Wrong http response"
    assert down.check_duration_ms is None


def test_store_promotion_is_seen_as_old_primary_down_and_new_primary_up() -> None:
    events = parse("global-store.log")
    assert [(e.event, e.server) for e in events] == [
        ("gateway_server_down", "store-west"),
        ("gateway_server_down", "store-east"),
        ("gateway_backend_empty", None),
        ("gateway_server_up", "store-west"),
    ]


def test_servers_added_and_removed_through_the_runtime_api() -> None:
    events = parse("region-add-del.log")
    assert [(e.event, e.server, e.reason) for e in events] == [
        ("gateway_server_up", "b", "leaving forced maintenance"),
        ("gateway_server_down", "b", "changed from CLI"),
        ("gateway_server_up", "b", "Layer7 check passed, code: 200"),
        ("gateway_server_up", "loading", "leaving forced maintenance"),
        ("gateway_server_down", "loading", "changed from CLI"),
        # drain and "was DOWN and now enters maintenance" change no traffic: no events
        ("gateway_server_down", "b", "maintenance"),
    ]


def test_reason_on_the_state_line_itself_without_log_health_checks() -> None:
    events = parse("region-no-log-health-checks.log")
    assert [(e.event, e.server, e.reason, e.info) for e in events] == [
        ("gateway_server_down", "n2", "Layer7 wrong status, code: 503", "Service Unavailable"),
        ("gateway_server_down", "n1", "Layer4 connection problem", "Connection refused"),
        ("gateway_backend_empty", None, None, None),
    ]
    assert events[0].check_duration_ms == 2


def test_other_lines_are_ignored() -> None:
    parser = LogParser("gw")
    for line in ("", "Proxy vllm stopped (cumulated conns: FE: 0, BE: 30).", "[WARNING]  (1) : x", "garbage"):
        assert parser.feed(line) == []


# -- runtime API answers ---------------------------------------------------------------------------------


def test_show_stat_csv_becomes_typed_rows() -> None:
    rows = parse_stat_csv((FIXTURES / "show-stat.csv").read_text())
    by_name = {(r.pxname, r.svname): r for r in rows}
    n1, n2, backend = by_name[("vllm", "n1")], by_name[("vllm", "n2")], by_name[("vllm", "BACKEND")]
    assert (n1.type, n1.status, n1.check_status, n1.check_code, n1.stot) == ("server", "UP", "L7OK", 200, 1)
    assert (n2.status, n2.check_status, n2.check_code, n2.chkdown) == ("DOWN", "L4CON", None, 1)
    assert (backend.type, backend.act, backend.hrsp_2xx) == ("backend", 1, 1)
    assert by_name[("inference", "FRONTEND")].req_tot == 1
    assert n1.raw["check_desc"] == "Layer7 check passed"


def test_show_servers_state_becomes_typed_rows() -> None:
    n1, n2 = parse_servers_state((FIXTURES / "show-servers-state.txt").read_text())
    assert (n1.backend, n1.server, n1.addr, n1.port) == ("vllm", "n1", "127.0.0.1", 18091)
    assert n1.op_state == "running" and n1.draining and not n1.usable
    assert n2.op_state == "stopped" and not n2.maintenance and not n2.usable


def test_unexpected_answers_are_refused() -> None:
    with pytest.raises(ValueError):
        parse_stat_csv("No such proxy.\n")
    with pytest.raises(ValueError):
        parse_servers_state("Can't find backend.\n")
