"""The engine loop: drives the pure `Engine` in real time and runs the model, one numpy call per step.

Each running sequence owns a slot in a few arrays (the model's window over its last characters, its
prompt state, its sampling parameters): that is the twin's KV cache, filled when a sequence is
admitted (prefill) and refilled after a preemption (recompute). A step samples every sequence due
for a token in one `TinyLm.next_tokens` call, then sleeps until the modelled GPU step would end,
records the tokens with the actual time, updates vLLM's metrics and writes each stream's
pre-encoded SSE chunk straight to its connection: one `transport.write` per token, framed for HTTP/1.1
chunked transfer encoding, with no task switch per token (the stream's handler only waits for the
end, then aiohttp writes the last chunk). Through aiohttp's `StreamResponse.write` and a handler
woken per token, a token cost 56 us of node CPU instead of 39 us (benchmarks/bench_llm_node.py,
64 streams).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from reliability.lab.llm.engine import Engine, FinishedStats, Sequence, Status, Step, StepResult
from reliability.lab.llm.metrics import DcgmState, VllmMetrics
from reliability.lab.llm.openai import DONE, OpenAIError, StreamEncoder, internal_error, stream_error
from reliability.lab.llm.tinylm import EOS, PAD, TOKEN_TEXT, TinyLm, decode

_NO_EOS = np.iinfo(np.int64).max


@dataclass(eq=False, slots=True)
class LlmRequest:
    """The engine-side state of one HTTP request (a Sequence's payload)."""

    encoder: StreamEncoder | None  # None: not streamed
    include_usage: bool
    temperature: float
    seed: int
    min_tokens: int  # end-of-sequence is not sampled before this many tokens (ignore_eos: never)
    stops: list[str]
    prompt_tail: list[int]
    state: np.ndarray
    fail_at_first_token: bool = False  # errors fault: the request fails inside the engine
    wrong: bool = False  # wrong fault: tokens are silently corrupted
    slot: int = -1
    transport: asyncio.WriteTransport | None = None  # a stream's connection, once its headers are out
    chunked: bool = True  # HTTP/1.1: each write is one chunk of the chunked body
    gone: bool = False  # the client closed the connection
    closed: bool = False
    done: asyncio.Event = field(default_factory=asyncio.Event)
    error: OpenAIError | None = None
    finish_reason: str | None = None
    stop_reason: str | None = None
    text: str | None = None  # the answer's text once finished
    pending: str = ""  # stop strings: text held back until it cannot start a stop string

    # --- what the HTTP handler sees ------------------------------------------------------------

    def push(self, data: bytes) -> None:
        t = self.transport
        if t is None or t.is_closing():
            self.gone = True
            return
        t.write(b"%x\r\n%b\r\n" % (len(data), data) if self.chunked else data)

    def close(self) -> None:
        self.closed = True
        self.done.set()

    def fail(self, err: OpenAIError) -> None:
        self.error = err
        if self.encoder is not None:
            self.push(stream_error(err))
            self.push(DONE)
        self.close()


class Runner:
    def __init__(
        self,
        engine: Engine,
        model: TinyLm,
        metrics: VllmMetrics,
        dcgm: DcgmState,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.model = model
        self.metrics = metrics
        self.dcgm = dcgm
        self.clock = clock
        n, k = engine.config.max_num_seqs, model.context
        self.ctx = np.full((n, k), PAD, dtype=np.int64)
        self.state = np.zeros((n, model.config.hidden))
        self.generated = np.zeros(n, dtype=np.int64)
        self.temperature = np.zeros(n)
        self.seeds = np.zeros(n, dtype=np.uint64)
        self.min_tokens = np.zeros(n, dtype=np.int64)
        self.wrong = np.zeros(n, dtype=bool)
        self.free_slots = list(range(n - 1, -1, -1))
        self.dead = False  # the engine died (Xid 48/95/79): nothing runs until cleared
        self.paused = False  # gray hang: the engine takes requests but never steps
        self.steps = 0
        self._wake = asyncio.Event()

    # --- requests ------------------------------------------------------------------------------

    def submit(self, seq: Sequence) -> None:
        self.engine.add(seq, self.clock())
        self.wake()

    def wake(self) -> None:
        self._wake.set()

    def abort(self, seq: Sequence, reason: str = "abort") -> None:
        """End a sequence from outside a step (the client went away)."""
        stats = self.engine.finish(seq, reason, self.clock())
        if stats is not None:
            self._release(seq)
            self.metrics.finished(stats)
            self._publish_state()
            self.wake()
        seq.payload.close()

    def fail_inflight(self, err: OpenAIError, kill: bool) -> None:
        """Every request in the engine fails with `err` (finish_reason error); `kill`: the engine dies."""
        for stats in self.engine.fail_all(self.clock(), "error"):
            self._release(stats.seq)
            self.metrics.finished(stats)
            stats.seq.payload.fail(err)
        self.dead = self.dead or kill
        self._publish_state()
        self.wake()

    def revive(self) -> None:
        self.dead = False
        self.paused = False
        self.wake()

    # --- the loop ------------------------------------------------------------------------------

    def _publish_state(self) -> None:
        e = self.engine
        self.metrics.scheduler_state(e.num_running, e.num_waiting, e.kv_cache_usage)

    async def run(self) -> None:
        """Steps back to back while there is work. A GPU step starts when the previous one ended,
        while the CPU still hands out the previous step's tokens (vLLM overlaps the two), so the
        Python work of one step may run into the next one's time, up to a step's length."""
        engine = self.engine
        prev_end: float | None = None  # when the previous step ended on the modelled GPU
        overlap = 0.0
        while True:
            step = None
            if not (self.dead or self.paused) and engine.has_work():
                now = self.clock()
                start = now if prev_end is None else max(prev_end, now - overlap)
                step = engine.schedule(start)
            if step is None:
                prev_end = None
                self._publish_state()
                self._wake.clear()
                await self._wake.wait()
                continue
            prev_end, overlap = step.started + step.duration_s, step.duration_s
            for seq in step.preempted:
                self._release(seq)
            for seq in step.admitted:
                self._assign(seq)
            tokens = self._sample(step) if step.sampled else []
            delay = step.started + step.duration_s - self.clock()
            await asyncio.sleep(delay if delay > 0 else 0)
            if self.dead:
                continue  # the GPU failed during the step; its requests were failed already
            end = self.clock()
            result = engine.complete(step, end, tokens)
            self.steps += 1
            self.dcgm.busy_s += end - step.started
            self.metrics.step(result)  # finished requests are recorded as they are handed back
            self._deliver(result, end)
            self._publish_state()

    # --- slots ---------------------------------------------------------------------------------

    def _assign(self, seq: Sequence) -> None:
        req: LlmRequest = seq.payload
        slot = req.slot = self.free_slots.pop()
        self.ctx[slot] = self.model.context_of(req.prompt_tail, seq.output)
        self.state[slot] = req.state
        self.generated[slot] = len(seq.output)
        self.temperature[slot] = req.temperature
        self.seeds[slot] = np.uint64(req.seed % 2**64)
        self.min_tokens[slot] = req.min_tokens
        self.wrong[slot] = req.wrong

    def _release(self, seq: Sequence) -> None:
        req: LlmRequest = seq.payload
        if req.slot >= 0:
            self.free_slots.append(req.slot)
            req.slot = -1

    def _sample(self, step: Step) -> list[int]:
        sampled = step.sampled
        idx = np.fromiter((s.payload.slot for s in sampled), dtype=np.int64, count=len(sampled))
        gen = self.generated[idx]
        toks = self.model.next_tokens(
            self.ctx[idx],
            gen,
            self.state[idx],
            self.temperature[idx],
            self.seeds[idx],
            gen >= self.min_tokens[idx],
        )
        wrong = self.wrong[idx]
        if wrong.any():
            toks = np.where(wrong & (toks != EOS), (toks + 1) % EOS, toks)
        # The step writes each sequence's new token into its window (its KV cache).
        self.ctx[idx, :-1] = self.ctx[idx, 1:]
        self.ctx[idx, -1] = toks
        self.generated[idx] += 1
        return toks.tolist()

    # --- handing tokens to the streams ---------------------------------------------------------

    def _deliver(self, result: StepResult, now: float) -> None:
        finished = {f.seq: f for f in result.finished}
        for seq, tok in result.tokens:
            req: LlmRequest = seq.payload
            enc = req.encoder
            if enc is not None and len(seq.output) == 1 and enc.api == "chat":
                req.push(enc.role())
            if req.fail_at_first_token and len(seq.output) == 1:
                f = finished.pop(seq, None)
                if f is None:
                    f = self.engine.finish(seq, "error", now)
                else:  # it also ended in this step: count it as the error it became
                    f = dataclasses.replace(f, finish_reason="error")
                self._end(seq, f, internal_error())
                continue
            f = finished.get(seq)
            if f is not None:
                self._finish(seq, f, tok)
            elif req.stops:
                self._with_stops(seq, req, TOKEN_TEXT[tok], now)
            elif enc is not None:
                req.push(enc.token(tok))
            if req.gone:
                self.abort(seq)

    def _end(self, seq: Sequence, f: FinishedStats | None, err: OpenAIError) -> None:
        if f is not None:
            self._release(seq)
            self.metrics.finished(f)
        seq.payload.fail(err)

    def _with_stops(self, seq: Sequence, req: LlmRequest, piece: str, now: float) -> None:
        """vLLM's stop strings: the text is held back while it could still begin a stop string; a
        match ends the request with finish_reason stop and the string as stop_reason."""
        text = req.pending + piece
        for stop in req.stops:
            at = text.find(stop)
            if at >= 0:
                stats = self.engine.finish(seq, "stop", now)
                req.stop_reason, req.pending = stop, ""
                if stats is not None:
                    self._finish_text(seq, stats, text[:at], stop)
                return
        hold = max(len(s) for s in req.stops) - 1
        emit, req.pending = (text[:-hold], text[-hold:]) if hold else (text, "")
        if emit and req.encoder is not None:
            req.push(req.encoder.text(emit))

    def _finish(self, seq: Sequence, f: FinishedStats, last_tok: int) -> None:
        req: LlmRequest = seq.payload
        piece = TOKEN_TEXT[last_tok]
        if req.stops:
            text = req.pending + piece
            for stop in req.stops:
                at = text.find(stop)
                if at >= 0:
                    f = dataclasses.replace(f, finish_reason="stop")
                    self._finish_text(seq, f, text[:at], stop)
                    return
            piece = text
        self._finish_text(seq, f, piece, None)

    def _finish_text(self, seq: Sequence, f: FinishedStats, last_piece: str, stop_reason: str | None) -> None:
        req: LlmRequest = seq.payload
        self._release(seq)
        self.metrics.finished(f)
        req.finish_reason, req.stop_reason = f.finish_reason, stop_reason
        if req.stops:
            req.text = _text_until_stop(decode(seq.output), req.stops)
        else:
            req.text = decode(seq.output)
        enc = req.encoder
        if enc is not None:
            req.push(enc.final(last_piece, f.finish_reason, stop_reason))
            if req.include_usage:
                req.push(enc.usage(seq.prompt_len, len(seq.output)))
            req.push(DONE)
        req.close()


def _text_until_stop(text: str, stops: list[str]) -> str:
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


async def cancel_task(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


__all__ = ["LlmRequest", "Runner", "Status", "cancel_task"]
