"""Continuous batching as vLLM's v1 scheduler does it, as a pure model of time (no I/O, no clock).

The caller drives it: `schedule(now)` plans one engine step (which sequences run, how long the step
takes on the GPU being modelled), the caller computes the sampled tokens and waits out the step, then
`complete(step, now, tokens)` appends the tokens with the step's end time. Every timestamp vLLM's
metrics are built from (queued, scheduled, first token, each token, finished) is kept per sequence, so
the metrics are exact for the modelled engine, and unit tests drive it with a fake clock.

Scheduling follows vLLM v1 (`vllm/v1/core/sched/scheduler.py`, 0.33.0): running sequences first, in
order, each taking one token of the step's budget (`max_num_batched_tokens`) to decode or a chunk of
its prefill; a sequence that needs a new KV block when none is free preempts the newest running
sequence (recompute: its blocks are freed, it goes back to the front of the waiting queue and
prefills prompt + output again later). Then, if nothing was preempted, waiting sequences are admitted
first come first served while `max_num_seqs`, the token budget and free blocks allow (chunked
prefill). A sequence samples a token in the step that computes its last known token.

Step time: `decode_step_base_s + decode_step_per_seq_s * decoding sequences + prefill_s_per_token *
prefill tokens`: decode is bound by reading the weights once per step plus each sequence's KV cache;
prefill is compute-bound and grows with the tokens it processes.
"""

from __future__ import annotations

import enum
from collections import deque
from collections.abc import Sequence as Seq
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator


class EngineConfig(BaseModel):
    """Engine parameters (lab YAML `engine:`). The defaults stand for Meta-Llama-3.1-8B-Instruct in
    bf16 on one NVIDIA H100 80GB HBM3 (SXM) served by vLLM 0.33 (v1 engine) with `vllm serve` defaults:

    - KV cache per token = 2 (K and V) x 32 layers x 8 KV heads x 128 head dim x 2 bytes = 128 KiB.
    - Memory for the KV cache: gpu_memory_utilization 0.92 (vLLM 0.33 default) x 81,559 MiB
      = 75,034 MiB, minus the weights (8.03e9 parameters x 2 bytes = 15,317 MiB), minus about
      2,600 MiB of activation peak at 8,192 batched tokens, CUDA graphs and the CUDA context
      (an estimate; vLLM profiles it at start) = about 57,117 MiB = 456,936 tokens, rounded down to
      whole blocks of 16: 28,558 blocks = 456,928 tokens.
    - block_size 16, max_num_seqs 1024 and max_num_batched_tokens 8192: vLLM's defaults for the
      OpenAI server on GPUs with >= 70 GiB that are not A100 (`EngineArgs`, `CacheConfig`).
    - max_model_len 131,072: the model's context length (it fits the cache, so vLLM keeps it).
    - prefill 30 us/token: 2 x 8.03e9 FLOP per token at ~55% of the H100's 989 TFLOPS dense bf16
      (about 33k prefill tokens/s, in line with published vLLM prefill throughput for 8B on H100).
    - decode step 6 ms + 0.09 ms per running sequence: reading 16 GB of weights at 3.35 TB/s takes
      4.8 ms plus kernel overhead (about 6-7 ms inter-token latency at batch 1), and each sequence
      adds its KV reads (128 KiB x ~1k tokens of context) and its share of compute, giving about
      29 ms per step at 256 running sequences, as vLLM benchmarks on this GPU report.

    `EngineConfig.lab()` is the scaled-down profile for the lab's 2 CPU cores.
    """

    model_config = ConfigDict(extra="forbid")

    kv_cache_tokens: int = Field(456_928, ge=1, description="KV cache capacity in tokens.")
    block_size: int = Field(16, ge=1, le=1024, description="Tokens per KV cache block.")
    max_num_seqs: int = Field(1024, ge=1, description="Most sequences running in one step.")
    max_model_len: int = Field(131_072, ge=2, description="Prompt + output tokens of one sequence.")
    max_num_batched_tokens: int = Field(8192, ge=1, description="Tokens one step may process.")
    prefill_s_per_token: float = Field(3.0e-5, ge=0, le=1)
    decode_step_base_s: float = Field(0.006, ge=0, le=10)
    decode_step_per_seq_s: float = Field(9.0e-5, ge=0, le=1)

    @model_validator(mode="after")
    def _fits(self) -> EngineConfig:
        if self.num_blocks * self.block_size < self.max_model_len:
            # vLLM refuses to start when one sequence of max_model_len cannot fit the cache.
            raise ValueError(
                f"kv_cache_tokens ({self.kv_cache_tokens}) must hold one sequence of max_model_len "
                f"({self.max_model_len}) in whole blocks of {self.block_size}"
            )
        return self

    @property
    def num_blocks(self) -> int:
        return self.kv_cache_tokens // self.block_size

    @classmethod
    def lab(cls) -> EngineConfig:
        """The lab on 2 CPU cores: a node runs 32 sequences at ~18 ms per step (about 1,800 tokens/s),
        queues beyond 32 concurrent streams, and its 12,288-token cache (768 blocks) runs out, so it
        preempts, when a few dozen streams each hold a few hundred tokens."""
        return cls(
            kv_cache_tokens=12_288,
            block_size=16,
            max_num_seqs=32,
            max_model_len=2048,
            max_num_batched_tokens=2048,
            prefill_s_per_token=5.0e-5,
            decode_step_base_s=0.010,
            decode_step_per_seq_s=0.00025,
        )


class Status(enum.Enum):
    WAITING = "waiting"
    RUNNING = "running"
    FINISHED = "finished"


@dataclass(eq=False, slots=True)
class Sequence:
    """One request inside the engine. `payload` belongs to the caller (its stream, sampling state)."""

    request_id: str
    prompt_len: int
    max_tokens: int
    arrival_ts: float
    payload: Any = None
    output: list[int] = field(default_factory=list)
    status: Status = Status.WAITING
    finish_reason: str | None = None
    queued_ts: float = 0.0
    scheduled_ts: float | None = None
    first_token_ts: float = 0.0
    last_token_ts: float = 0.0
    num_computed: int = 0
    blocks: int = 0
    num_preemptions: int = 0

    @property
    def num_tokens(self) -> int:
        return self.prompt_len + len(self.output)


@dataclass(frozen=True, slots=True)
class FinishedStats:
    """vLLM's per-request intervals (`vllm/v1/metrics/stats.py` update_from_finished_request)."""

    seq: Sequence
    finish_reason: str
    e2e_s: float
    queued_s: float
    prefill_s: float
    decode_s: float
    inference_s: float
    mean_time_per_output_token_s: float
    prompt_tokens: int
    generation_tokens: int
    num_preemptions: int
    max_tokens: int


@dataclass(slots=True)
class Step:
    started: float
    scheduled: list[tuple[Sequence, int]]  # (sequence, tokens computed in this step)
    sampled: list[Sequence]  # sequences that produce a token when the step ends
    admitted: list[Sequence]  # sequences taken from the waiting queue in this step
    preempted: list[Sequence]
    prefill_tokens: int
    decode_seqs: int
    duration_s: float


@dataclass(slots=True)
class StepResult:
    tokens: list[tuple[Sequence, int]]
    ttfts: list[float]
    itls: list[float]
    prompt_tokens: int
    generation_tokens: int
    preemptions: int
    iteration_tokens: int
    finished: list[FinishedStats]


class Engine:
    def __init__(self, config: EngineConfig, eos_token: int | None = None) -> None:
        self.config = config
        self.eos_token = eos_token
        self.total_blocks = config.num_blocks
        self.capacity_blocks = config.num_blocks
        self.used_blocks = 0
        self.waiting: deque[Sequence] = deque()
        self.running: list[Sequence] = []
        self.slow_factor = 1.0  # slow_decode fault: decode steps take this many times longer

    # --- state ---------------------------------------------------------------------------------

    @property
    def num_running(self) -> int:
        return len(self.running)

    @property
    def num_waiting(self) -> int:
        return len(self.waiting)

    @property
    def kv_cache_usage(self) -> float:
        """Share of the (possibly cut) cache in use, as vLLM's 1 - free/total."""
        return min(1.0, self.used_blocks / self.capacity_blocks) if self.capacity_blocks else 1.0

    def has_work(self) -> bool:
        return bool(self.running or self.waiting)

    def set_capacity(self, fraction: float) -> None:
        """kv_cache_cut: only this share of the blocks is usable; excess is reclaimed by preemption."""
        self.capacity_blocks = max(1, int(self.total_blocks * fraction))

    def _blocks_for(self, tokens: int) -> int:
        return -(-tokens // self.config.block_size)

    # --- requests ------------------------------------------------------------------------------

    def add(self, seq: Sequence, now: float) -> None:
        seq.queued_ts = now
        seq.status = Status.WAITING
        self.waiting.append(seq)

    def finish(self, seq: Sequence, reason: str, now: float) -> FinishedStats | None:
        """End a sequence from outside a step (abort, error, stop string); None if already finished."""
        if seq.status is Status.FINISHED:
            return None
        if seq.status is Status.WAITING:
            self.waiting.remove(seq)
        else:
            self.running.remove(seq)
        return self._finish(seq, reason, now)

    def fail_all(self, now: float, reason: str = "error") -> list[FinishedStats]:
        """The engine died: every sequence ends with this reason."""
        done = [self._finish(s, reason, now) for s in [*self.running, *self.waiting]]
        self.running.clear()
        self.waiting.clear()
        return done

    def _free(self, seq: Sequence) -> None:
        self.used_blocks -= seq.blocks
        seq.blocks = 0

    def _finish(self, seq: Sequence, reason: str, now: float) -> FinishedStats:
        self._free(seq)
        seq.status = Status.FINISHED
        seq.finish_reason = reason
        n = len(seq.output)
        if seq.scheduled_ts is not None:
            queued = seq.scheduled_ts - seq.queued_ts
            prefill = (seq.first_token_ts - seq.scheduled_ts) if n else 0.0
            decode = (seq.last_token_ts - seq.first_token_ts) if n else 0.0
            inference = (seq.last_token_ts - seq.scheduled_ts) if n else 0.0
        else:  # ended while waiting: it only queued
            queued, prefill, decode, inference = now - seq.queued_ts, 0.0, 0.0, 0.0
        return FinishedStats(
            seq=seq,
            finish_reason=reason,
            e2e_s=now - seq.arrival_ts,
            queued_s=queued,
            prefill_s=prefill,
            decode_s=decode,
            inference_s=inference,
            mean_time_per_output_token_s=decode / (n - 1) if n > 1 else 0.0,
            prompt_tokens=seq.prompt_len,
            generation_tokens=n,
            num_preemptions=seq.num_preemptions,
            max_tokens=seq.max_tokens,
        )

    # --- one step ------------------------------------------------------------------------------

    def _preempt_newest(self, preempted: list[Sequence]) -> Sequence:
        victim = self.running.pop()
        self._free(victim)
        victim.num_computed = 0
        victim.num_preemptions += 1
        victim.status = Status.WAITING
        self.waiting.appendleft(victim)
        preempted.append(victim)
        return victim

    def schedule(self, now: float) -> Step | None:
        """Plan the next step; None when there is nothing to run."""
        cfg = self.config
        budget = cfg.max_num_batched_tokens
        scheduled: list[tuple[Sequence, int]] = []
        preempted: list[Sequence] = []
        # A cut cache gives blocks back first, newest sequences first.
        while self.used_blocks > self.capacity_blocks and self.running:
            self._preempt_newest(preempted)

        i = 0
        while i < len(self.running) and budget > 0:
            seq = self.running[i]
            new = min(seq.num_tokens - seq.num_computed, budget)
            need = self._blocks_for(seq.num_computed + new) - seq.blocks
            while need > self.capacity_blocks - self.used_blocks:
                if self._preempt_newest(preempted) is seq:
                    break
            else:
                seq.blocks += need
                self.used_blocks += need
                budget -= new
                scheduled.append((seq, new))
                i += 1
                continue
            break  # seq itself was preempted: nothing behind it is left to schedule

        admitted: list[Sequence] = []
        if not preempted:
            while self.waiting and len(self.running) < cfg.max_num_seqs and budget > 0:
                seq = self.waiting[0]
                new = min(seq.num_tokens - seq.num_computed, budget)
                need = self._blocks_for(seq.num_computed + new) - seq.blocks
                if need > self.capacity_blocks - self.used_blocks:
                    break
                self.waiting.popleft()
                seq.blocks += need
                self.used_blocks += need
                seq.status = Status.RUNNING
                if seq.scheduled_ts is None:  # vLLM keeps the first SCHEDULED time across preemptions
                    seq.scheduled_ts = max(now, seq.queued_ts)
                self.running.append(seq)
                admitted.append(seq)
                budget -= new
                scheduled.append((seq, new))

        if not scheduled:
            # Everything left was preempted (or nothing fits): an empty step reports the preemptions
            # and the next one admits again.
            return Step(now, [], [], [], preempted, 0, 0, 0.0) if preempted else None
        sampled = [s for s, new in scheduled if s.num_computed + new == s.num_tokens]
        decode_seqs = sum(
            1 for s, new in scheduled if new == 1 and s.output and s.num_computed + 1 == s.num_tokens
        )
        prefill_tokens = sum(new for _, new in scheduled) - decode_seqs
        duration = (
            cfg.decode_step_base_s + cfg.decode_step_per_seq_s * decode_seqs
        ) * self.slow_factor + cfg.prefill_s_per_token * prefill_tokens
        return Step(now, scheduled, sampled, admitted, preempted, prefill_tokens, decode_seqs, duration)

    def complete(self, step: Step, now: float, tokens: Seq[int]) -> StepResult:
        """The step ended at `now`; `tokens[i]` is the token `step.sampled[i]` produced."""
        for seq, new in step.scheduled:
            seq.num_computed += new
        result = StepResult([], [], [], 0, 0, len(step.preempted), sum(n for _, n in step.scheduled), [])
        max_len = self.config.max_model_len
        for seq, tok in zip(step.sampled, tokens, strict=True):
            if seq.status is not Status.RUNNING:
                continue  # finished from outside while the step ran (client went away)
            if not seq.output:
                result.ttfts.append(now - seq.arrival_ts)
                result.prompt_tokens += seq.prompt_len
                seq.first_token_ts = now
            else:
                result.itls.append(now - seq.last_token_ts)
            seq.last_token_ts = now
            seq.output.append(tok)
            result.generation_tokens += 1
            result.tokens.append((seq, tok))
            reason = None
            if tok == self.eos_token:
                reason = "stop"
            elif len(seq.output) >= seq.max_tokens or seq.num_tokens >= max_len:
                reason = "length"
            if reason is not None:
                self.running.remove(seq)
                result.finished.append(self._finish(seq, reason, now))
        return result
