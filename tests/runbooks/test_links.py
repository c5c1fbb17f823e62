"""runbook_url construction and resolution; alert -> runbook lookup for the post-mortem."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability.runbooks import (
    find_runbook,
    load_runbooks,
    resolve_runbook_url,
    runbook_url,
    runbooks_for_alerts,
)
from reliability.runbooks.links import BASE_URL_ENV

from .conftest import WriteRunbook


def test_default_url_is_repo_relative(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(BASE_URL_ENV, raising=False)
    assert runbook_url("gpu-node-down") == "runbooks/gpu-node-down.md"
    assert resolve_runbook_url("runbooks/gpu-node-down.md") == "gpu-node-down"
    assert resolve_runbook_url("./runbooks/gpu-node-down.md#mitigation") == "gpu-node-down"


def test_base_url_from_env_and_argument(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(BASE_URL_ENV, "https://git.example.com/org/repo/blob/main/runbooks")
    url = runbook_url("model-quality")
    assert url == "https://git.example.com/org/repo/blob/main/runbooks/model-quality.md"
    assert resolve_runbook_url(url) == "model-quality"
    assert runbook_url("x", "https://rb.example.com/") == "https://rb.example.com/x.md"
    # a site that renders runbooks without the .md suffix
    assert resolve_runbook_url("https://rb.example.com/x", "https://rb.example.com") == "x"


@pytest.mark.parametrize(
    "url",
    ["https://elsewhere.example.com/runbooks/x.md", "runbooks/sub/x.md", "runbooks/", "x.md"],
)
def test_urls_outside_the_base_do_not_resolve(url: str) -> None:
    assert resolve_runbook_url(url, "runbooks/") is None


def test_runbooks_for_alerts(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull", "DiskFillingUp"])
    write_runbook("cpu-hot", ["CPUHot"])
    found = runbooks_for_alerts(
        ["DiskFillingUp", "Unknown", "CPUHot", "DiskFillingUp"], tmp_path / "runbooks"
    )
    assert {alert: rb.id for alert, rb in found.items()} == {
        "DiskFillingUp": "disk-full",
        "CPUHot": "cpu-hot",
    }
    assert found["CPUHot"].first_mitigation_step == "Fix it with `fix --now`."


def test_find_by_id_or_alert_name(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    write_runbook("disk-full", ["DiskFull"])
    runbooks = load_runbooks(tmp_path / "runbooks")
    for key in ("disk-full", "disk-full.md", "DiskFull", "diskfull"):
        rb = find_runbook(key, runbooks)
        assert rb is not None and rb.id == "disk-full", key
    assert find_runbook("nothing", runbooks) is None


def test_every_fired_platform_alert_links_a_runbook(repo: Path) -> None:
    names = ["GPUNodeDown", "GPUXidErrors", "RegionUnavailable", "RegionFailoverActive"]
    found = runbooks_for_alerts(names, repo / "runbooks")
    assert list(found) == names
    assert all(rb.first_mitigation_step for rb in found.values())
