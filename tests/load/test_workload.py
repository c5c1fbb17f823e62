"""What the built-in users send: length distributions, prompts, golden cases, and LoadRun's checks."""

from __future__ import annotations

import json
import random
import statistics
from pathlib import Path

import pytest

from reliability.errors import InputError
from reliability.load import LoadRun
from reliability.load.workload import WORDS, length_dist, prompt_text, read_golden


def test_fixed_length_from_an_integer_or_a_spec() -> None:
    rng = random.Random(1)
    assert {length_dist(64).sample(rng) for _ in range(20)} == {64}
    assert length_dist('{"dist": "fixed", "value": 3}').sample(rng) == 3


def test_lognormal_mean_is_the_mean_and_draws_are_clipped() -> None:
    rng = random.Random(2)
    dist = length_dist({"dist": "lognormal", "mean": 256, "sigma": 0.5, "min": 8, "max": 2048})
    draws = [dist.sample(rng) for _ in range(20_000)]
    assert statistics.fmean(draws) == pytest.approx(256, rel=0.03)
    assert min(draws) >= 8 and max(draws) <= 2048
    tight = length_dist({"dist": "lognormal", "mean": 1000, "sigma": 2.0, "min": 10, "max": 50})
    assert {tight.sample(rng) for _ in range(500)} <= set(range(10, 51))


def test_uniform_and_normal() -> None:
    rng = random.Random(3)
    uni = length_dist({"dist": "uniform", "min": 5, "max": 7})
    assert {uni.sample(rng) for _ in range(200)} == {5, 6, 7}
    normal = length_dist({"dist": "normal", "mean": 100, "sigma": 10})
    assert statistics.fmean(normal.sample(rng) for _ in range(5000)) == pytest.approx(100, rel=0.02)


def test_same_seed_same_draws() -> None:
    dist = length_dist({"dist": "lognormal", "mean": 50, "sigma": 1})
    a, b = random.Random(9), random.Random(9)
    assert [dist.sample(a) for _ in range(50)] == [dist.sample(b) for _ in range(50)]
    assert prompt_text(random.Random(4), 30) == prompt_text(random.Random(4), 30)


def test_prompt_has_the_drawn_number_of_words() -> None:
    text = prompt_text(random.Random(5), 37)
    assert len(text.split()) == 37 and set(text.split()) <= set(WORDS)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"dist": "lognormal", "mean": 0, "sigma": 1}, "mean"),
        ({"dist": "uniform", "min": 9, "max": 3}, "min 9 > max 3"),
        ({"dist": "zipf", "mean": 3}, "dist"),
        ({"dist": "fixed", "value": 3, "sigmaa": 1}, "unknown field"),
        ("{nope", "not JSON"),
    ],
)
def test_bad_distributions_are_input_errors(spec: object, message: str) -> None:
    with pytest.raises(InputError, match=message) as err:
        length_dist(spec, "load.prompt_tokens")
    assert str(err.value).startswith("load.prompt_tokens")


def _golden(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "golden.jsonl"
    path.write_text("".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines))
    return path


def test_golden_cases_are_read(tmp_path: Path) -> None:
    path = _golden(
        tmp_path,
        {"id": "a", "api": "chat", "messages": [{"role": "user", "content": "two words"}], "max_tokens": 4,
         "expected": "yes"},
        "",
        {"id": "b", "api": "completions", "prompt": "once upon", "max_tokens": 8, "expected": " a time"},
    )  # fmt: skip
    cases = read_golden(path)
    assert [(c.id, c.api, c.prompt_words) for c in cases] == [("a", "chat", 2), ("b", "completions", 2)]


@pytest.mark.parametrize(
    ("line", "where"),
    [
        ("{oops", "golden.jsonl:2: not a JSON object"),
        ({"id": "x", "api": "chat", "max_tokens": 4, "expected": "y"}, "golden.jsonl:2: (top level)"),
        (
            {"id": "x", "api": "chat", "messages": [{}], "max_tokens": 0, "expected": "y"},
            "golden.jsonl:2: max_tokens",
        ),
        (
            {"id": "x", "api": "chat", "messages": [{}], "max_tokens": 1, "expected": "y", "x": 1},
            "golden.jsonl:2: x",
        ),
    ],
)
def test_bad_golden_lines_name_file_line_and_field(tmp_path: Path, line: object, where: str) -> None:
    good = {"id": "a", "api": "completions", "prompt": "p", "max_tokens": 1, "expected": "e"}
    path = _golden(tmp_path, good, line)
    with pytest.raises(InputError) as err:
        read_golden(path)
    assert str(err.value).startswith(f"{tmp_path}/{where}")


def test_golden_file_that_is_empty_missing_or_not_utf8(tmp_path: Path) -> None:
    empty = _golden(tmp_path)
    with pytest.raises(InputError, match="no golden cases"):
        read_golden(empty)
    with pytest.raises(InputError, match="cannot read"):
        read_golden(tmp_path / "missing.jsonl")
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes('{"id": "caf\xe9"}\n'.encode("latin-1"))
    with pytest.raises(InputError, match="not UTF-8"):
        read_golden(latin)


def test_loadrun_checks_its_new_options_before_anything_starts(tmp_path: Path) -> None:
    url = "http://127.0.0.1:1"
    with pytest.raises(InputError, match=r"load\.user"):
        LoadRun(url, out_dir=tmp_path, user="grpc")  # type: ignore[arg-type]
    with pytest.raises(InputError, match=r"load\.model"):
        LoadRun(url, out_dir=tmp_path, user="oip-predict")
    with pytest.raises(InputError, match=r"load\.locustfile"):
        LoadRun(url, out_dir=tmp_path, user="locustfile")
    with pytest.raises(InputError, match=r"load\.prompt_tokens"):
        LoadRun(url, out_dir=tmp_path, user="openai-chat", prompt_tokens={"dist": "lognormal"})
    with pytest.raises(InputError, match=r"load\.ttft_target_ms"):
        LoadRun(url, out_dir=tmp_path, user="openai-chat", ttft_target_ms=0)
    with pytest.raises(InputError, match="judge_share"):
        LoadRun(url, out_dir=tmp_path, user="openai-chat", judge_share=1.5)
    with pytest.raises(InputError, match=r"golden\.jsonl"):
        LoadRun(url, out_dir=tmp_path, user="openai-chat", golden_path=_golden(tmp_path, "{bad"))
    assert not (tmp_path / "load_stats.jsonl").exists()


def test_loadrun_commands_for_built_in_users_and_a_remote_worker(tmp_path: Path) -> None:
    run = LoadRun(
        "http://127.0.0.1:1", out_dir=tmp_path, user="openai-completions", workers=1, expect_workers=2
    )
    master, worker = run.commands(5557)
    assert "OpenAICompletionsUser" in master and master[master.index("--expect-workers") + 1] == "3"
    assert master[master.index("-f") + 1].endswith("llm_locustfile.py")
    assert "--worker" in worker and worker[worker.index("--master-port") + 1] == "5557"
