"""Pure parts of the load package: target check, shapes, the stats reader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reliability.errors import InputError
from reliability.load import LoadRun, check_target, read_jsonl, read_load_stats
from reliability.load.buckets import Bucket, stats_line
from reliability.load.shapes import shape_users


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://127.3.4.5/x", "http://localhost:1", "http://[::1]:9"]
)
def test_loopback_targets_are_allowed(url: str) -> None:
    assert check_target(url) == url


@pytest.mark.parametrize(
    "url", ["http://10.0.0.1:80", "http://example.com", "ftp://127.0.0.1", "127.0.0.1:80"]
)
def test_other_targets_are_refused(url: str) -> None:
    with pytest.raises(InputError) as err:
        check_target(url)
    assert err.value.location == "load.target_url"


def test_named_host_is_allowed() -> None:
    assert check_target("http://10.200.1.2:8000", allowed_hosts=["10.200.1.2"]) == "http://10.200.1.2:8000"


def test_loadrun_refuses_remote_target_and_bad_parameters(tmp_path: Path) -> None:
    with pytest.raises(InputError):
        LoadRun("http://203.0.113.7", out_dir=tmp_path)
    with pytest.raises(InputError, match="shape"):
        LoadRun("http://127.0.0.1:1", shape="zigzag", out_dir=tmp_path)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="locustfile"):
        LoadRun("http://127.0.0.1:1", locustfile=tmp_path / "missing.py", out_dir=tmp_path)
    assert not (tmp_path / "load_stats.jsonl").exists()


@pytest.mark.parametrize(
    ("shape", "t", "expected"),
    [
        ("steady", 0, 20),
        ("steady", 99, 20),
        ("ramp", 0, 1),
        ("ramp", 25, 10),
        ("ramp", 80, 20),
        ("spike", 10, 4),
        ("spike", 45, 20),
        ("spike", 70, 4),
    ],
)
def test_shapes(shape: str, t: float, expected: int) -> None:
    assert shape_users(shape, t, 100, 20) == expected


def test_reader_skips_torn_lines_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "load_stats.jsonl"
    assert read_load_stats(path).empty
    path.write_text(
        '{"ts": 2, "requests": 3, "failures": 1}\n{"ts": 1, "requests": 5, "failures": 0}\n{"ts": 3, "req'
    )
    frame = read_load_stats(path)
    assert list(frame["ts"]) == [1, 2]
    assert {"p50_ms", "p95_ms", "p99_ms", "rps"} <= set(frame.columns)


def test_reader_loads_v2_lines_with_histograms_and_v1_lines_without(tmp_path: Path) -> None:
    bucket = Bucket()
    bucket.add(12.34, "200", 5.5, good=True, ttft_ms=3.0, itl_ms=[1.0, 1.0], tpot_ms=1.0, output_tokens=3)
    bucket.add(40.0, "503", 5.7, error="/v1/chat/completions: HTTP 503: busy")
    v1 = {"ts": 4.0, "requests": 2, "failures": 0, "rps": 2.0, "p50_ms": 5, "p95_ms": 9, "p99_ms": 9,
          "codes": {"200": 2}}  # fmt: skip
    path = tmp_path / "load_stats.jsonl"
    path.write_text(json.dumps(stats_line(5, bucket, users=3)) + "\n" + json.dumps(v1) + "\n")
    frame = read_load_stats(path)
    assert list(frame["ts"]) == [4.0, 5.0]
    old, new = frame.iloc[0], frame.iloc[1]
    assert (old["e2e_ms"], old["ttft_ms"], old["good"], old["judged"]) == ({}, {}, 0, 0)
    assert new["e2e_ms"] == {12.4: 1, 40.0: 1}
    assert new["itl_ms"] == {1.0: 2}
    assert (new["requests"], new["failures"], new["good"], new["users"], new["rps"]) == (2, 1, 1, 3, 2.0)
    assert new["last_failure_ts"] == 5.7 and new["errors"] == {"/v1/chat/completions: HTTP 503: busy": 1}
    assert new["codes"] == {"200": 1, "503": 1}


def test_read_jsonl_tail_reads_only_the_last_complete_lines(tmp_path: Path) -> None:
    path = tmp_path / "x.jsonl"
    path.write_text("".join(json.dumps({"i": i}) + "\n" for i in range(100)) + '{"i": 10')
    assert [r["i"] for r in read_jsonl(path, tail_bytes=30)] == [98, 99]
    assert len(read_jsonl(path)) == 100
    assert read_jsonl(tmp_path / "missing.jsonl") == []
