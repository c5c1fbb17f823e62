"""The HAProxy names the alerts and SLOs are written on, checked against the installed HAProxy (2.6).

A real HAProxy ingress on loopback (frontend `inference`, backend `regions`, a metrics frontend with
`http-request use-service prometheus-exporter`), real regions behind it, and - for the failover -
a real Prometheus evaluating alerts/platform.rules.yaml on what HAProxy exports.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from reliability.prometheus import LocalPrometheus, ScrapeTarget

from .ingress import Ingress, Region, Sample

HAPROXY = shutil.which("haproxy") or "/usr/sbin/haproxy"
pytestmark = pytest.mark.skipif(not Path(HAPROXY).exists(), reason="haproxy is not installed")

SERVER_STATES = {"DOWN", "UP", "MAINT", "DRAIN", "NOLB"}
CODE_CLASSES = {"1xx", "2xx", "3xx", "4xx", "5xx", "other"}

_SELECTOR = re.compile(r"\b(haproxy_[a-z_]+)\b(\{[^}]*\})?")
_MATCHER = re.compile(r'\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*,?')


@pytest.fixture(scope="module")
def ingress(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Ingress]:
    """us-east up, eu-west never up (nothing listens on its port), ap-south a backup that is up."""
    regions = [Region("us-east"), Region("eu-west"), Region("ap-south", backup=True)]
    regions[0].start()
    regions[2].start()
    with Ingress(tmp_path_factory.mktemp("haproxy"), regions) as gw:
        gw.start(HAPROXY)
        gw.wait_for_state("eu-west", "DOWN")
        yield gw


def by_name(samples: list[Sample], name: str, **labels: str) -> list[Sample]:
    return [s for s in samples if s[0] == name and all(s[1].get(k) == v for k, v in labels.items())]


def value(samples: list[Sample], name: str, **labels: str) -> float:
    (found,) = by_name(samples, name, **labels)
    return found[2]


def selectors(promql: str) -> list[tuple[str, list[tuple[str, str, str]]]]:
    """(metric, [(label, op, value)]) of every haproxy_* selector in a PromQL text."""
    out = []
    for m in _SELECTOR.finditer(promql):
        matchers = [(k, op, v) for k, op, v in _MATCHER.findall((m.group(2) or "{}")[1:-1])]
        out.append((m.group(1), matchers))
    return out


def matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for key, op, want in matchers:
        have = labels.get(key, "")
        ok = {
            "=": have == want,
            "!=": have != want,
            "=~": re.fullmatch(want, have) is not None,
            "!~": re.fullmatch(want, have) is None,
        }[op]
        if not ok:
            return False
    return True


def rule_texts(repo: Path) -> dict[str, str]:
    """Every PromQL-bearing file the rules come from: the platform alerts and the SLO specs."""
    files = [
        repo / "alerts" / "platform.rules.yaml",
        *sorted((repo / "slos").glob("*.yaml")),
        *sorted((repo / "scenarios" / "slos").glob("*.yaml")),
    ]
    return {str(p.relative_to(repo)): p.read_text(encoding="utf-8") for p in files}


def test_selector_parsing() -> None:
    assert selectors(
        'sum(rate(haproxy_frontend_http_responses_total{proxy="inference",code="5xx"}[5m]))'
    ) == [("haproxy_frontend_http_responses_total", [("proxy", "=", "inference"), ("code", "=", "5xx")])]
    assert matches({"state": "DOWN"}, [("state", "!=", "UP")])
    assert not matches({"state": "UP"}, [("state", "!=", "UP")])
    assert matches({"outcome": "wrong"}, [("outcome", "=~", "correct|wrong")])


def test_server_status_is_a_state_set_with_five_states(ingress: Ingress) -> None:
    samples = ingress.scrape()
    for server, up_state in (("us-east", "UP"), ("eu-west", "DOWN"), ("ap-south", "UP")):
        states = {
            s[1]["state"]: s[2]
            for s in by_name(samples, "haproxy_server_status", proxy="regions", server=server)
        }
        assert set(states) == SERVER_STATES, server
        assert [st for st, v in states.items() if v == 1] == [up_state], (server, states)
    # the state-set labels are exactly proxy, server, state (Prometheus adds job/instance)
    assert {frozenset(s[1]) for s in by_name(samples, "haproxy_server_status")} == {
        frozenset({"proxy", "server", "state"})
    }
    # usable servers per kind: us-east (active) and ap-south (backup); eu-west is DOWN
    assert value(samples, "haproxy_backend_active_servers", proxy="regions") == 1
    assert value(samples, "haproxy_backend_backup_servers", proxy="regions") == 1


def test_frontend_counts_requests_and_responses_by_class(ingress: Ingress) -> None:
    before = ingress.scrape()
    for path in ("/v1/models", "/v1/models", "/health", "/fail"):
        requests.get(ingress.url + path, timeout=5)
    after = ingress.scrape()
    codes = {s[1]["code"] for s in by_name(after, "haproxy_frontend_http_responses_total", proxy="inference")}
    assert codes == CODE_CLASSES

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("haproxy_frontend_http_requests_total", proxy="inference") == 4
    assert delta("haproxy_frontend_http_responses_total", proxy="inference", code="2xx") == 3
    assert delta("haproxy_frontend_http_responses_total", proxy="inference", code="5xx") == 1


def test_ages_the_failover_alert_compares(ingress: Ingress) -> None:
    requests.get(ingress.url + "/v1/models", timeout=5)
    samples = ingress.scrape()
    # us-east has just served; the backup never has: -1, which the alert excludes
    assert 0 <= value(samples, "haproxy_server_last_session_seconds", proxy="regions", server="us-east") <= 2
    assert value(samples, "haproxy_server_last_session_seconds", proxy="regions", server="ap-south") == -1
    for server in ("us-east", "eu-west", "ap-south"):
        assert value(samples, "haproxy_server_check_last_change_seconds", proxy="regions", server=server) >= 0


def test_every_haproxy_selector_of_the_rules_matches_a_real_series(ingress: Ingress, repo: Path) -> None:
    requests.get(ingress.url + "/fail", timeout=5)
    samples = ingress.scrape()
    checked = 0
    for source, text in rule_texts(repo).items():
        for metric, matchers in selectors(text):
            # the frontend of the service is `inference`, the ingress backend `regions` (docs/twin.md)
            found = [s for s in samples if s[0] == metric and matches(s[1], matchers)]
            assert found, f"{source}: {metric}{{{matchers}}} matches nothing HAProxy exports"
            checked += 1
    assert checked >= 8  # the alerts' and both SLO files' selectors were all seen


def firing(prom: LocalPrometheus) -> set[tuple[str, str]]:
    alerts = requests.get(f"{prom.url}/api/v1/alerts", timeout=5).json()["data"]["alerts"]
    return {
        (a["labels"]["alertname"], a["labels"].get("server", "")) for a in alerts if a["state"] == "firing"
    }


def wait_until(prom: LocalPrometheus, done: object, timeout: float) -> float:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if done(firing(prom)):  # type: ignore[operator]
            return time.monotonic() - start
        time.sleep(0.25)
    raise AssertionError(f"not reached within {timeout}s; firing: {sorted(firing(prom))}")


@pytest.mark.slow
def test_region_alerts_fire_within_a_20s_fault_on_real_haproxy(tmp_path: Path, repo: Path) -> None:
    """The active region goes away under traffic: the ingress fails over to the backup, and Prometheus
    (evaluating alerts/platform.rules.yaml on HAProxy's metrics) fires RegionUnavailable and
    RegionFailoverActive for it well inside a 20 s fault, and neither once it is back. eu-west, down
    from the start and never serving, is unavailable but never "failed over". An operator's MAINT
    through the runtime API moves traffic too: a failover, but no RegionUnavailable page."""
    regions = [Region("us-east"), Region("eu-west"), Region("ap-south", backup=True)]
    regions[0].start()
    regions[2].start()
    stop = threading.Event()
    answered: list[int] = []

    def traffic() -> None:
        with requests.Session() as s:
            while not stop.is_set():
                try:
                    answered.append(s.get(gw.url + "/v1/models", timeout=2).status_code)
                except requests.RequestException:
                    answered.append(0)
                stop.wait(0.05)

    with Ingress(tmp_path / "haproxy", regions) as gw:
        gw.start(HAPROXY)
        gw.wait_for_state("eu-west", "DOWN")
        target = ScrapeTarget("haproxy-global", f"127.0.0.1:{gw.metrics_port}")
        rules = [repo / "alerts" / "platform.rules.yaml"]
        with LocalPrometheus(tmp_path / "prom", targets=[target], rule_files=rules) as prom:
            sender = threading.Thread(target=traffic, daemon=True)
            sender.start()
            try:
                wait_until(prom, lambda f: ("RegionUnavailable", "eu-west") in f, timeout=20)
                assert ("RegionFailoverActive", "us-east") not in firing(prom)

                regions[0].stop()  # the fault: us-east's gateway is gone
                took = wait_until(
                    prom,
                    lambda f: {("RegionUnavailable", "us-east"), ("RegionFailoverActive", "us-east")} <= f,
                    timeout=20,
                )
                assert took < 20
                assert gw.server_state("us-east") == "DOWN"
                assert ("RegionFailoverActive", "eu-west") not in firing(prom)
                served_during = answered[-20:]
                assert served_during.count(200) >= 15, served_during  # the backup region answers

                regions[0].start()  # the fault ends
                wait_until(
                    prom,
                    lambda f: not {("RegionUnavailable", "us-east"), ("RegionFailoverActive", "us-east")} & f,
                    timeout=20,
                )

                assert gw.command("set server regions/us-east state maint") == "\n"
                wait_until(prom, lambda f: ("RegionFailoverActive", "us-east") in f, timeout=20)
                assert ("RegionUnavailable", "us-east") not in firing(prom)
                gw.command("set server regions/us-east state ready")
                wait_until(prom, lambda f: ("RegionFailoverActive", "us-east") not in f, timeout=20)
            finally:
                stop.set()
                sender.join(5)
