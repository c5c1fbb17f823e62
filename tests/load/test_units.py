"""Pure parts of the load package: target check, histogram percentiles, shapes, the stats reader."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from reliability.errors import InputError
from reliability.load import LoadRun, check_target, read_load_stats
from reliability.load.buckets import Bucket, percentile, stats_line
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


def test_percentiles_from_histogram() -> None:
    hist = Counter({v: 1 for v in range(1, 101)})  # 1..100 ms, one each
    assert percentile(hist, 0.5) == 50
    assert percentile(hist, 0.99) == 99
    assert percentile(Counter(), 0.5) is None


def test_buckets_merge_like_one_process() -> None:
    samples = [(3.0, False, 200), (120.0, True, 503), (1540.0, False, 200), (7.2, True, None)]
    one = Bucket()
    for s in samples:
        one.add(*s)
    a, b = Bucket(), Bucket()
    for i, s in enumerate(samples):
        (a if i % 2 else b).add(*s)
    merged = Bucket()
    merged.merge(a.to_wire())
    merged.merge(b.to_wire())
    assert stats_line(5, merged) == stats_line(5, one)
    line = stats_line(5, one)
    assert (line["requests"], line["failures"], line["codes"]) == (4, 2, {"0": 1, "200": 2, "503": 1})


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
