"""The continuous-batching engine on a fake clock: admission, batching, prefill, preemption, queueing."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from reliability.lab.llm.engine import Engine, EngineConfig, FinishedStats, Sequence, Status, StepResult

EOS = 99


def config(**kw: float) -> EngineConfig:
    base = {
        "kv_cache_tokens": 4096,
        "block_size": 16,
        "max_num_seqs": 8,
        "max_model_len": 1024,
        "max_num_batched_tokens": 1024,
        "prefill_s_per_token": 0.001,
        "decode_step_base_s": 0.010,
        "decode_step_per_seq_s": 0.002,
    }
    return EngineConfig.model_validate({**base, **kw})


def seq(name: str, prompt: int = 10, max_tokens: int = 5, arrival: float = 0.0) -> Sequence:
    return Sequence(name, prompt, max_tokens, arrival)


def drive(
    engine: Engine,
    now: float = 0.0,
    tokens: Callable[[list[Sequence]], list[int]] = lambda s: [1] * len(s),
    max_steps: int = 10_000,
) -> tuple[float, list[StepResult], list[float]]:
    """Run steps until idle; returns the end time, every step's result and every step's duration."""
    results, durations = [], []
    for _ in range(max_steps):
        step = engine.schedule(now)
        if step is None:
            return now, results, durations
        now += step.duration_s
        durations.append(step.duration_s)
        results.append(engine.complete(step, now, tokens(step.sampled)))
    raise AssertionError("engine did not go idle")


def finished(results: list[StepResult]) -> dict[str, FinishedStats]:
    return {f.seq.request_id: f for r in results for f in r.finished}


def test_defaults_stand_for_an_h100_and_must_fit_one_sequence() -> None:
    cfg = EngineConfig()
    # Llama-3.1-8B bf16: 128 KiB of KV per token; ~55.8 GiB of cache on an 80 GB H100.
    assert cfg.kv_cache_tokens * 128 * 1024 / 2**30 == pytest.approx(55.8, abs=0.1)
    assert cfg.num_blocks == 28_558 and cfg.max_num_seqs == 1024
    assert EngineConfig.lab().num_blocks == 768
    with pytest.raises(ValueError, match="must hold one sequence"):
        EngineConfig(kv_cache_tokens=1000, max_model_len=2048)


def test_admission_stops_at_max_num_seqs_and_the_rest_queue() -> None:
    engine = Engine(config(max_num_seqs=2))
    for name in "abc":
        engine.add(seq(name), 0.0)
    step = engine.schedule(0.0)
    assert step is not None
    assert [s.request_id for s in step.admitted] == ["a", "b"]
    assert engine.num_running == 2 and engine.num_waiting == 1
    engine.complete(step, step.duration_s, [1, 1])
    _, results, _ = drive(engine, step.duration_s)
    done = finished(results)
    # c waited until a and b finished (their 5th token), then was admitted.
    assert done["c"].queued_s == pytest.approx(done["a"].e2e_s)
    assert done["c"].queued_s > 0 and done["a"].queued_s == 0
    assert engine.used_blocks == 0 and not engine.has_work()


def test_decode_step_time_grows_with_the_running_batch() -> None:
    def decode_step(n: int) -> float:
        engine = Engine(config())
        for i in range(n):
            engine.add(seq(f"s{i}", prompt=4, max_tokens=10), 0.0)
        first = engine.schedule(0.0)
        assert first is not None and first.decode_seqs == 0  # the first step only prefills
        engine.complete(first, first.duration_s, [1] * n)
        step = engine.schedule(first.duration_s)
        assert step is not None and step.decode_seqs == n and step.prefill_tokens == 0
        return step.duration_s

    assert decode_step(1) == pytest.approx(0.010 + 0.002)
    assert decode_step(8) == pytest.approx(0.010 + 8 * 0.002)


def test_prefill_time_grows_with_prompt_tokens_and_long_prompts_are_chunked() -> None:
    def ttft(prompt: int) -> float:
        engine = Engine(config(max_num_batched_tokens=256))
        engine.add(seq("a", prompt=prompt, max_tokens=2), 0.0)
        _, results, _ = drive(engine)
        return results[0].ttfts[0] if results[0].ttfts else next(r.ttfts[0] for r in results if r.ttfts)

    assert ttft(100) == pytest.approx(0.010 + 100 * 0.001)
    # 600 tokens in chunks of 256: three prefill steps before the first token.
    assert ttft(600) == pytest.approx(3 * 0.010 + 600 * 0.001)


def test_metrics_intervals_are_exact() -> None:
    engine = Engine(config())
    engine.add(seq("a", prompt=20, max_tokens=4, arrival=-0.5), 0.0)
    end, results, durations = drive(engine)
    f = finished(results)["a"]
    assert f.finish_reason == "length" and f.generation_tokens == 4
    assert f.queued_s == 0.0
    assert f.prefill_s == pytest.approx(durations[0])
    assert f.e2e_s == pytest.approx(end + 0.5)  # from arrival at the API server
    assert f.decode_s == pytest.approx(sum(durations[1:]))
    assert f.mean_time_per_output_token_s == pytest.approx(f.decode_s / 3)
    itls = [v for r in results for v in r.itls]
    assert itls == pytest.approx(durations[1:])
    assert sum(r.prompt_tokens for r in results) == 20 and sum(r.generation_tokens for r in results) == 4


def test_finish_reasons() -> None:
    engine = Engine(config(max_model_len=64, kv_cache_tokens=4096), eos_token=EOS)
    engine.add(seq("eos", max_tokens=50), 0.0)
    engine.add(seq("len", max_tokens=3), 0.0)
    engine.add(seq("ctx", prompt=60, max_tokens=50), 0.0)
    engine.add(seq("gone", max_tokens=50), 0.0)
    step = engine.schedule(0.0)
    assert step is not None
    aborted = engine.finish(next(s for s in engine.running if s.request_id == "gone"), "abort", 0.0)
    assert aborted is not None and aborted.finish_reason == "abort"
    engine.complete(step, step.duration_s, [1] * len(step.sampled))

    def tokens(sampled: list[Sequence]) -> list[int]:
        return [EOS if s.request_id == "eos" and len(s.output) == 2 else 1 for s in sampled]

    _, results, _ = drive(engine, step.duration_s, tokens)
    done = finished(results)
    assert done["eos"].finish_reason == "stop" and done["eos"].generation_tokens == 3
    assert done["len"].finish_reason == "length" and done["len"].generation_tokens == 3
    assert done["ctx"].finish_reason == "length" and done["ctx"].generation_tokens == 4  # 60 + 4 = 64
    assert "gone" not in done


def test_engine_death_fails_running_and_waiting_requests() -> None:
    engine = Engine(config(max_num_seqs=1))
    engine.add(seq("a"), 0.0)
    engine.add(seq("b"), 0.0)
    step = engine.schedule(0.0)
    assert step is not None
    dead = engine.fail_all(0.001)
    assert {f.seq.request_id: f.finish_reason for f in dead} == {"a": "error", "b": "error"}
    waited = next(f for f in dead if f.seq.request_id == "b")
    assert waited.queued_s == pytest.approx(0.001) and waited.generation_tokens == 0
    assert engine.used_blocks == 0 and not engine.has_work()


def test_kv_pressure_preempts_the_newest_sequence_which_recomputes_later() -> None:
    # 8 blocks of 16 tokens; three sequences of 20 + 40 tokens each need 4 blocks at the end.
    engine = Engine(config(kv_cache_tokens=128, max_model_len=128))
    for name in "abc":
        engine.add(seq(name, prompt=20, max_tokens=40, arrival=0.0), 0.0)
    seen_waiting, preempted = 0, []
    now = 0.0
    results = []
    for _ in range(1000):
        step = engine.schedule(now)
        if step is None:
            break
        preempted += [s.request_id for s in step.preempted]
        seen_waiting = max(seen_waiting, engine.num_waiting)
        assert engine.used_blocks <= engine.capacity_blocks
        now += step.duration_s
        results.append(engine.complete(step, now, [1] * len(step.sampled)))
    done = finished(results)
    assert preempted and preempted[0] == "c"  # the newest goes first
    assert seen_waiting >= 1
    assert sum(r.preemptions for r in results) == len(preempted)
    assert done["c"].num_preemptions >= 1 and done["a"].num_preemptions == 0
    # Every request still produced all its tokens; the preempted one recomputed prompt + output.
    assert all(f.generation_tokens == 40 and f.finish_reason == "length" for f in done.values())
    assert max(r.iteration_tokens for r in results) > 20  # a recompute prefill of prompt + output
    assert engine.used_blocks == 0


def test_a_cut_cache_preempts_until_it_fits_and_shows_as_usage() -> None:
    engine = Engine(config(kv_cache_tokens=1024))
    for i in range(4):
        engine.add(seq(f"s{i}", prompt=100, max_tokens=100), 0.0)
    step = engine.schedule(0.0)
    assert step is not None
    engine.complete(step, step.duration_s, [1] * len(step.sampled))
    used = engine.used_blocks
    assert engine.kv_cache_usage == pytest.approx(used / 64)
    engine.set_capacity(0.25)  # 16 blocks left: room for two of the four
    step = engine.schedule(1.0)
    assert step is not None and len(step.preempted) == 2
    assert engine.num_running == 2 and engine.num_waiting == 2
    assert engine.kv_cache_usage <= 1.0 and engine.used_blocks <= 16
    engine.complete(step, 1.0 + step.duration_s, [1] * len(step.sampled))
    _, results, _ = drive(engine, 2.0)
    assert len(finished(results)) == 4


def test_slow_decode_multiplies_decode_steps_only() -> None:
    engine = Engine(config())
    engine.slow_factor = 3.0
    engine.add(seq("a", prompt=100, max_tokens=3), 0.0)
    _, _, durations = drive(engine)
    assert durations[0] == pytest.approx(3 * 0.010 + 100 * 0.001)
    assert durations[1] == pytest.approx(3 * (0.010 + 0.002))


def test_statuses_move_waiting_running_finished() -> None:
    engine = Engine(config())
    s = seq("a", max_tokens=1)
    engine.add(s, 0.0)
    assert s.status is Status.WAITING
    step = engine.schedule(0.0)
    assert step is not None and s.status is Status.RUNNING
    engine.complete(step, 0.1, [1])
    assert s.status is Status.FINISHED and s.finish_reason == "length"


def test_the_lab_profile_queues_and_preempts_under_a_few_dozen_streams() -> None:
    engine = Engine(EngineConfig.lab())
    for i in range(40):  # chat-sized requests: a 200-token prompt and 250 tokens of answer
        engine.add(seq(f"s{i}", prompt=200, max_tokens=250), 0.0)
    _, results, _ = drive(engine)
    done = finished(results)
    assert len(done) == 40 and all(f.generation_tokens == 250 for f in done.values())
    assert sum(1 for f in done.values() if f.queued_s > 0) >= 8  # beyond max_num_seqs 32
    assert sum(r.preemptions for r in results) > 0  # 32 x 450 tokens > 12,288
