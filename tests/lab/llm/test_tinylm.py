"""The node's language model: deterministic answers, checksummed weights, golden cases, bad versions."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from reliability.errors import InputError
from reliability.lab.llm.tinylm import (
    EOS,
    CheckpointError,
    LmConfig,
    TinyLm,
    chat_prompt,
    decode,
    encode,
    generate,
    golden_cases,
    golden_cases_for,
    load_checkpoint,
    read_golden,
    version_config,
    write_checkpoint,
    write_golden,
)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    path = tmp_path_factory.mktemp("lm") / "lm.npz"
    return path, write_checkpoint(path, LmConfig())


def test_the_checkpoint_is_reproducible_and_verified(checkpoint: tuple[Path, str], tmp_path: Path) -> None:
    path, sha = checkpoint
    assert write_checkpoint(tmp_path / "again.npz", LmConfig()) == sha  # same seed, same bytes
    load_checkpoint(path, sha)
    corrupt = tmp_path / "corrupt.npz"
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    corrupt.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(corrupt, sha)
    (tmp_path / "junk.npz").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="not a language-model checkpoint"):
        load_checkpoint(tmp_path / "junk.npz", None)


def test_greedy_answers_are_the_same_on_every_load(checkpoint: tuple[Path, str]) -> None:
    path, sha = checkpoint
    a, b = load_checkpoint(path, sha), load_checkpoint(path, sha)
    prompt = chat_prompt([{"role": "user", "content": "Why is the p99 latency high?"}])
    first = generate(a, prompt, 80)
    assert first == generate(b, prompt, 80) == generate(a, prompt, 80)
    assert first[0] and len(set(decode(first[0]))) > 5  # text, not one repeated character


def test_the_answer_depends_on_the_whole_prompt_not_only_its_last_characters(
    checkpoint: tuple[Path, str],
) -> None:
    model = load_checkpoint(*checkpoint)
    answers = {
        decode(generate(model, chat_prompt([{"role": "user", "content": q}]), 30)[0])
        for q in (
            "What is an SLO?",
            "What is an SLA?",
            "Name three GPU failure modes.",
        )
    }
    assert len(answers) == 3


def test_a_row_gets_the_same_token_alone_or_in_any_batch(checkpoint: tuple[Path, str]) -> None:
    model = load_checkpoint(*checkpoint)
    prompts = [f"request {i}: " + "x" * i for i in range(12)]
    alone = [generate(model, p, 40)[0] for p in prompts]
    # The same twelve decoded together, one numpy call per step.
    outs: list[list[int]] = [[] for _ in prompts]
    tails = [encode(p[-model.context :]) for p in prompts]
    state = np.stack([model.prompt_state(p) for p in prompts])
    for _ in range(40):
        ctx = np.array([model.context_of(t, o) for t, o in zip(tails, outs, strict=True)])
        n = len(prompts)
        toks = model.next_tokens(
            ctx,
            np.array([len(o) for o in outs]),
            state,
            np.zeros(n),
            np.zeros(n, np.uint64),
            np.ones(n, bool),
        )
        for o, t in zip(outs, toks.tolist(), strict=True):
            o.append(t)
    for a, b in zip(alone, outs, strict=True):
        assert b[: len(a)] == a


def test_sampling_follows_the_seed(checkpoint: tuple[Path, str]) -> None:
    model = load_checkpoint(*checkpoint)
    hot = [generate(model, "Once upon a time", 60, temperature=0.9, seed=s)[0] for s in (1, 1, 2)]
    assert hot[0] == hot[1] and hot[0] != hot[2]
    assert generate(model, "Once upon a time", 60, seed=1) == generate(model, "Once upon a time", 60, seed=2)


def test_answers_end_by_themselves_at_a_realistic_length(checkpoint: tuple[Path, str]) -> None:
    model = load_checkpoint(*checkpoint)
    tokens, reason = generate(model, chat_prompt([{"role": "user", "content": "Hello?"}]), 2000)
    assert reason == "stop" and tokens[-1] == EOS and 30 < len(tokens) < 400
    tokens, reason = generate(model, "Hello?", 500, ignore_eos=True)
    assert reason == "length" and EOS not in tokens


def test_chat_template() -> None:
    text = chat_prompt([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}])
    assert text == "<|system|>\nBe brief.\n<|user|>\nHi\n<|assistant|>\n"


def test_golden_file_round_trip(checkpoint: tuple[Path, str], tmp_path: Path) -> None:
    cases = golden_cases(*checkpoint)
    assert {c.api for c in cases} == {"chat", "completions"} and len({c.id for c in cases}) == len(cases)
    path = tmp_path / "golden.jsonl"
    write_golden(path, cases)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    chat = next(line for line in lines if line["api"] == "chat")
    assert set(chat) == {"id", "api", "messages", "max_tokens", "expected"}
    comp = next(line for line in lines if line["api"] == "completions")
    assert set(comp) == {"id", "api", "prompt", "max_tokens", "expected"}
    assert read_golden(path) == cases
    for case in cases:
        tokens, _ = generate(load_checkpoint(*checkpoint), case.prompt_text(), case.max_tokens)
        assert decode(tokens) == case.expected and case.expected
    path.write_text('{"id": "x", "api": "chat", "prompt": "p", "max_tokens": 1, "expected": ""}\n')
    with pytest.raises(InputError, match="line 1"):
        read_golden(path)


def test_a_bad_version_gets_every_golden_case_wrong(checkpoint: tuple[Path, str]) -> None:
    good = load_checkpoint(*checkpoint)
    bad = TinyLm.seeded(version_config(good.config, "v1-bad"))
    assert version_config(good.config, good.config.version) is good.config
    for ok, wrong in zip(golden_cases_for(good), golden_cases_for(bad), strict=True):
        assert ok.expected != wrong.expected, ok.id
