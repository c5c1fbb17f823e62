"""Search quality on the repository's runbooks, and the search mechanics on small fixtures."""

from __future__ import annotations

from pathlib import Path

import pytest

from reliability.runbooks import SearchIndex, load_runbooks
from reliability.runbooks.text import split_camel, tokenize

from .conftest import BODY, WriteRunbook

REPO_RUNBOOKS = Path(__file__).resolve().parents[2] / "runbooks"

# (query, runbook that must rank first): alert names, misspellings, and symptoms as typed at 3 a.m.
QUALITY = [
    ("GPUNodeDown", "gpu-node-down"),
    ("GPUXidErrors", "gpu-xid-errors"),
    ("RegionUnavailable", "region-unavailable"),
    ("RegionFailoverActive", "region-failover"),
    ("StoreReplicationLagHigh", "store-replication-lag"),
    ("PrometheusTargetDown", "prometheus-target-down"),
    ("InferenceAPIHighErrorRate", "inference-availability"),
    ("InferenceAPIHighLatency", "inference-latency"),
    ("InferenceModelQualityDegraded", "model-quality"),
    ("GPUNodeDonw", "gpu-node-down"),
    ("gpunodedown", "gpu-node-down"),
    ("GPUXidEror", "gpu-xid-errors"),
    ("StoreReplicatonLagHigh", "store-replication-lag"),
    ("InferenceAPIHighErorRate", "inference-availability"),
    ("InferenceModelQualityDegarded", "model-quality"),
    ("PrometeusTargetDown", "prometheus-target-down"),
    ("gpu fell off bus", "gpu-xid-errors"),
    ("xid 79", "gpu-xid-errors"),
    ("double-bit ECC", "gpu-xid-errors"),
    ("predictions are NaN", "model-quality"),
    ("wrong answers but http 200", "model-quality"),
    ("roll back model version", "bad-model-version"),
    ("replication lag data loss", "store-replication-lag"),
    ("restore snapshot checksum", "store-replication-lag"),
    ("fail back to region after failover", "region-failover"),
    ("network partition", "region-unavailable"),
    ("scrape failing monitoring blind", "prometheus-target-down"),
    ("p99 latency slow requests", "inference-latency"),
    ("5xx errors budget burn", "inference-availability"),
    ("node lost replacement", "gpu-node-down"),
]


@pytest.fixture(scope="module")
def index() -> SearchIndex:
    return SearchIndex.build(load_runbooks(REPO_RUNBOOKS))


@pytest.mark.parametrize(("query", "expected"), QUALITY)
def test_expected_runbook_ranks_first(index: SearchIndex, query: str, expected: str) -> None:
    results = index.search(query)
    assert results, query
    assert results[0].id == expected, [(r.id, round(r.score, 2)) for r in results]


def test_result_explains_itself(index: SearchIndex) -> None:
    top = index.search("GPUNodeDonw")[0]
    assert top.corrections == {"gpunodedonw": "gpunodedown", "donw": "down"}
    assert "gpunodedown" in top.matched["alerts"]
    assert top.first_mitigation_step and "cordon" in top.first_mitigation_step
    data = top.to_dict()
    assert set(data) == {"id", "title", "score", "matched", "corrections", "first_mitigation_step", "path"}


def test_nothing_matches_nonsense(index: SearchIndex) -> None:
    assert index.search("zzqx qqq") == []


def test_camel_case_alert_names_split_into_words() -> None:
    assert split_camel("InferenceAPIHighErrorRate") == "Inference API High Error Rate"
    assert tokenize("GPUNodeDown") == ["gpu", "node", "down", "gpunodedown"]
    assert tokenize("predictions are NaN") == ["prediction", "nan"]


def test_field_boosts_rank_alert_owner_over_body_mentions(
    write_runbook: WriteRunbook, tmp_path: Path
) -> None:
    write_runbook("disk-full", ["DiskFull"])
    # mentions the alert name three times in its body, but does not answer it
    write_runbook("backup", [], body=BODY + "\nDiskFull DiskFull DiskFull can fire during backups.\n")
    index = SearchIndex.build(load_runbooks(tmp_path / "runbooks"))
    assert [r.id for r in index.search("DiskFull")] == ["disk-full", "backup"]
    assert index.search("DiskFull")[0].matched["alerts"] == ["disk", "full", "diskfull"]


def test_limit_and_ordering_are_stable(write_runbook: WriteRunbook, tmp_path: Path) -> None:
    for name in ("c-one", "a-one", "b-one"):
        write_runbook(name)
    index = SearchIndex.build(load_runbooks(tmp_path / "runbooks"))
    # identical documents tie: ordered by id, cut at the limit
    assert [r.id for r in index.search("something broke", limit=2)] == ["a-one", "b-one"]
