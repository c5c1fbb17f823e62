"""Per-request measurement of a streamed LLM answer (pure: times are given, nothing is read here).

Client-side definitions (docs/twin.md section 3; tools differ, these are ours):
- e2e: last byte of the answer received (after `data: [DONE]`) minus request sent.
- TTFT (time to first token): first chunk with non-empty content received minus request sent. The
  role-only first chunk vLLM and OpenAI send (empty content) does not count, nor do usage chunks.
- ITL (inter-token latency): the gaps between consecutive non-empty content chunks; a chunk may hold
  more than one token, so with n content chunks there are n - 1 gaps (all recorded, not averaged).
- TPOT (time per output token): (e2e - TTFT) / (output tokens - 1); undefined for fewer than 2 tokens.
- output tokens: `usage.completion_tokens` when the server sends usage, else the number of non-empty
  content chunks. prompt tokens: `usage.prompt_tokens`, else the client's own count of what it sent.
- goodput: a request is good when it succeeded and met every configured latency target: TTFT <=
  target and TPOT <= target. A target not configured is not checked; a configured target fails a
  request that could not be measured against it (no TTFT: no content chunk, or a user's own
  locustfile that reports no measurements), except that an answer of fewer than 2 tokens has no
  TPOT by definition and meets a TPOT target.

`SseDecoder` parses server-sent events as the HTML standard defines them (fields per line, an event
ends at a blank line, multi-line `data` joined with newlines, comment lines starting with `:` ignored),
fed line by line as the bytes arrive, so each event is timestamped when its last line arrived.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

DONE = "[DONE]"


class StreamError(Exception):
    """The stream broke the protocol or carried an error: the request failed."""


class SseDecoder:
    """Server-sent events from lines (one line per `feed`, with or without its line ending)."""

    def __init__(self) -> None:
        self._data: list[str] = []

    def feed(self, line: str) -> str | None:
        """The data of the event this line ends (a blank line), else None."""
        line = line.rstrip("\r\n")
        if not line:
            if not self._data:
                return None
            data = "\n".join(self._data)
            self._data = []
            return data
        if line.startswith(":"):
            return None
        name, _, value = line.partition(":")
        if name == "data":
            self._data.append(value[1:] if value.startswith(" ") else value)
        return None

    def close(self) -> str | None:
        """An event left without its blank line when the stream ended (servers omit the last one)."""
        if not self._data:
            return None
        data = "\n".join(self._data)
        self._data = []
        return data


@dataclass(slots=True)
class Measured:
    """What one request measured; travels in Locust's `events.request` context to the stats plugin."""

    status: int = 0
    ttft_ms: float | None = None
    itl_ms: list[float] = field(default_factory=list)
    tpot_ms: float | None = None
    prompt_tokens: int = 0
    output_tokens: int = 0
    judged: bool = False
    wrong: bool = False
    # Wall-clock times of the samples, so each lands in the second it was observed (an ITL gap of a
    # long stream belongs to the second it happened in, not to the second the stream ended).
    first_token_at: float | None = None
    itl_at: list[float] = field(default_factory=list)
    # A request that failed before any token: how long it had waited (a lower bound of its TTFT).
    waited_ms: float | None = None


@dataclass
class StreamMeasure:
    """Accumulates one streamed answer: `event(data, at)` per SSE event, `finish(end)` at the end.

    Times are seconds on one monotonic clock; `sent` is when the request was sent. Understands the
    OpenAI chat (`choices[0].delta.content`) and completions (`choices[0].text`) chunk shapes and
    the usage chunk (empty `choices`, `usage`). An `error` object in the stream, data after
    `[DONE]`, unparsable JSON and a finish_reason of `abort`/`error` raise StreamError.
    """

    sent: float
    text_parts: list[str] = field(default_factory=list)
    chunk_times: list[float] = field(default_factory=list)
    usage: dict[str, Any] | None = None
    done: bool = False

    def event(self, data: str, at: float) -> None:
        if self.done:
            raise StreamError("data after [DONE]")
        if data.strip() == DONE:
            self.done = True
            return
        try:
            obj = json.loads(data)
        except ValueError:
            raise StreamError("chunk is not JSON") from None
        if not isinstance(obj, dict):
            raise StreamError("chunk is not a JSON object")
        if obj.get("error"):
            raise StreamError(f"error in stream: {error_message(obj)}")
        if isinstance(obj.get("usage"), dict):
            self.usage = obj["usage"]
        choices = obj.get("choices") or []
        if not choices:
            return
        choice = choices[0] if isinstance(choices[0], dict) else {}
        if choice.get("finish_reason") in ("abort", "error"):
            raise StreamError(f"finish_reason {choice['finish_reason']}")
        delta = choice.get("delta")
        if isinstance(delta, dict):
            text = delta.get("content") or ""
            timed = text or delta.get("reasoning_content") or ""
        else:
            text = timed = choice.get("text") or ""
        if timed:
            self.chunk_times.append(at)
        if text:
            self.text_parts.append(text)

    @property
    def text(self) -> str:
        return "".join(self.text_parts)

    def finish(
        self, end: float, status: int = 200, prompt_tokens: int = 0, wall_offset: float = 0.0
    ) -> Measured:
        """The measurements; StreamError when the stream ended without `[DONE]` (a cut stream).
        `wall_offset` turns the monotonic times into wall-clock ones (time.time() - perf_counter())."""
        if not self.done:
            raise StreamError("stream ended without [DONE]")
        usage = self.usage or {}
        output = _int(usage.get("completion_tokens"), len(self.chunk_times))
        m = Measured(status=status, output_tokens=output)
        m.prompt_tokens = _int(usage.get("prompt_tokens"), prompt_tokens)
        self.timings(m, wall_offset)
        if self.chunk_times and output >= 2:
            m.tpot_ms = (end - self.chunk_times[0]) * 1000.0 / (output - 1)
        return m

    def timings(self, m: Measured, wall_offset: float) -> None:
        """TTFT and ITL of what arrived (also of a stream cut later: its first token did come)."""
        if not self.chunk_times:
            return
        first = self.chunk_times[0]
        m.ttft_ms = (first - self.sent) * 1000.0
        m.first_token_at = first + wall_offset
        m.itl_ms = [(b - a) * 1000.0 for a, b in zip(self.chunk_times, self.chunk_times[1:], strict=False)]
        m.itl_at = [b + wall_offset for b in self.chunk_times[1:]]


def _int(value: Any, default: int) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def error_message(obj: Any) -> str:
    """The message of an OpenAI error object `{"error": {"message": ...}}` (or a string error)."""
    err = obj.get("error") if isinstance(obj, dict) else None
    if isinstance(err, dict):
        return str(err.get("message") or err.get("type") or "error")[:120]
    if err:
        return str(err)[:120]
    return "error"


def body_error(body: bytes) -> str:
    """A short message from an error response body (OpenAI error shape, else the text's start)."""
    try:
        return error_message(json.loads(body))
    except ValueError:
        return body[:80].decode("utf-8", errors="replace").strip() or "empty body"


def is_good(
    failed: bool, measured: Measured | None, ttft_target_ms: float | None, tpot_target_ms: float | None
) -> bool:
    """Goodput: succeeded and met every configured target (module docstring)."""
    if failed:
        return False
    if ttft_target_ms is not None:
        ttft = measured.ttft_ms if measured is not None else None
        if ttft is None or ttft > ttft_target_ms:
            return False
    if tpot_target_ms is not None:
        if measured is None:
            return False
        if measured.tpot_ms is not None and measured.tpot_ms > tpot_target_ms:
            return False
    return True
