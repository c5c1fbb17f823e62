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
    # alert names, exact and misspelt
    ("GPUNodeDown", "gpu-node-down"),
    ("GPUNodeCordoned", "gpu-node-down"),
    ("GPUXidErrors", "gpu-xid-errors"),
    ("VLLMKVCacheExhausted", "vllm-saturation"),
    ("VLLMRequestsPreempted", "vllm-saturation"),
    ("RegionUnavailable", "region-unavailable"),
    ("RegionFailoverActive", "region-failover"),
    ("StoreReplicationLagHigh", "store-replication-lag"),
    ("PrometheusTargetDown", "prometheus-target-down"),
    ("LLMHighErrorRate", "llm-availability"),
    ("LLMSlowTimeToFirstToken", "llm-latency"),
    ("LLMSlowTokenStream", "llm-latency"),
    ("LLMLowGoodput", "llm-latency"),
    ("LLMModelQualityDegraded", "model-quality"),
    ("GPUNodeDonw", "gpu-node-down"),
    ("gpunodedown", "gpu-node-down"),
    ("GPUXidEror", "gpu-xid-errors"),
    ("StoreReplicatonLagHigh", "store-replication-lag"),
    ("LLMHighErorRate", "llm-availability"),
    ("LLMModelQualityDegarded", "model-quality"),
    ("VLLMKVCacheExhasted", "vllm-saturation"),
    ("PrometeusTargetDown", "prometheus-target-down"),
    # symptoms as typed at 3 a.m.
    ("gpu fell off bus", "gpu-xid-errors"),
    ("xid 79", "gpu-xid-errors"),
    ("double-bit ECC", "gpu-xid-errors"),
    ("row remapping failure", "gpu-xid-errors"),
    ("nvlink error", "gpu-xid-errors"),
    ("time to first token slow", "llm-latency"),
    ("TTFT p99 high", "llm-latency"),
    ("tokens stream slowly ITL", "llm-latency"),
    ("inter-token latency", "llm-latency"),
    ("kv cache full preemption", "vllm-saturation"),
    ("requests queueing waiting", "vllm-saturation"),
    ("max_num_seqs gpu-memory-utilization", "vllm-saturation"),
    ("node NotReady kubelet", "gpu-node-down"),
    ("node cordoned unschedulable", "gpu-node-down"),
    ("node lost replacement", "gpu-node-down"),
    ("wrong answers but http 200", "model-quality"),
    ("canary golden answers wrong", "model-quality"),
    ("canary rollback model version", "bad-model-version"),
    ("roll back model version", "bad-model-version"),
    ("5xx errors at the ingress", "llm-availability"),
    ("503 no server available", "llm-availability"),
    ("haproxy health check failed region down", "region-unavailable"),
    ("network partition", "region-unavailable"),
    ("fail back to region after failover", "region-failover"),
    ("running on backup", "region-failover"),
    ("replication lag data loss", "store-replication-lag"),
    ("restore snapshot checksum", "store-replication-lag"),
    ("scrape failing monitoring blind", "prometheus-target-down"),
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
    assert split_camel("VLLMKVCacheExhausted") == "VLLM KV Cache Exhausted"
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


def test_acronyms_back_to_back_in_an_alert_name_are_split() -> None:
    assert tokenize("VLLMKVCacheExhausted") == ["vllm", "kv", "cache", "exhaust", "vllmkvcacheexhausted"]
    assert split_camel("GPUXidErrors") == "GPU Xid Errors"
    assert split_camel("ABCDCache") == "ABCD Cache"  # unknown capitals stay one word


@pytest.mark.parametrize(
    ("query", "written"),
    [
        ("TTFT", "The time to first token grows with the queue."),
        ("time to first token", "TTFT grows with the queue."),
        ("ITL", "The inter-token latency grows with the batch."),
        ("preemption", "Running requests were preempted and recomputed."),
        ("cordon", "The node was marked unschedulable by the health tooling."),
        ("unschedulable", "Someone cordoned the node."),
    ],
)
def test_synonyms_find_the_other_spelling(
    write_runbook: WriteRunbook, tmp_path: Path, query: str, written: str
) -> None:
    write_runbook("answer", body=BODY + f"\n{written}\n")
    write_runbook("noise", body=BODY + "\nThe disk filled up and the backup failed.\n")
    results = SearchIndex.build(load_runbooks(tmp_path / "runbooks")).search(query)
    assert [r.id for r in results] == ["answer"]
