"""Per-request measurement of streamed answers, with the times given (no clock, no server)."""

from __future__ import annotations

import json

import pytest

from reliability.load.measure import Measured, SseDecoder, StreamError, StreamMeasure, body_error, is_good


def _chat(content: str | None, finish: str | None = None, role: bool = False) -> str:
    delta: dict[str, object] = {} if content is None else {"content": content}
    if role:
        delta["role"] = "assistant"
    return json.dumps({"object": "chat.completion.chunk", "choices": [{"index": 0, "delta": delta,
                       "finish_reason": finish}]})  # fmt: skip


def _events(raw: str) -> list[str]:
    dec = SseDecoder()
    out = [d for line in raw.splitlines(keepends=True) if (d := dec.feed(line)) is not None]
    tail = dec.close()
    return [*out, tail] if tail is not None else out


def test_sse_events_are_split_at_blank_lines() -> None:
    raw = (
        ": keep-alive comment\r\n\r\n"
        'data: {"a": 1}\r\n\r\n'
        'event: message\nid: 7\ndata:{"b": 2}\n\n'
        "data: first\ndata: second\n\n"
        "data: [DONE]"
    )
    assert _events(raw) == ['{"a": 1}', '{"b": 2}', "first\nsecond", "[DONE]"]


def test_chat_stream_measures_ttft_itl_tpot_from_content_chunks() -> None:
    m = StreamMeasure(sent=100.0)
    m.event(_chat("", role=True), 100.001)  # role-only chunk: not the first token
    m.event(_chat("Hel"), 100.050)
    m.event(_chat("lo"), 100.070)
    m.event(_chat(" world"), 100.100)
    m.event(_chat(None, finish="stop"), 100.101)
    m.event(json.dumps({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 4}}), 100.102)
    m.event("[DONE]", 100.103)
    out = m.finish(end=100.110, status=200, prompt_tokens=5)
    assert m.text == "Hello world"
    assert out.ttft_ms == pytest.approx(50.0)
    assert out.itl_ms == pytest.approx([20.0, 30.0])
    assert out.output_tokens == 4 and out.prompt_tokens == 9  # usage wins over chunk counts
    assert out.tpot_ms == pytest.approx((110.0 - 50.0) / 3)
    assert out.status == 200


def test_completions_stream_without_usage_counts_chunks() -> None:
    m = StreamMeasure(sent=0.0)
    for i, t in enumerate([0.2, 0.3, 0.5]):
        m.event(json.dumps({"object": "text_completion", "choices": [{"text": f"t{i}"}]}), t)
    m.event("[DONE]", 0.6)
    out = m.finish(end=0.6, prompt_tokens=7)
    assert (out.output_tokens, out.prompt_tokens) == (3, 7)
    assert out.ttft_ms == pytest.approx(200.0)
    assert out.itl_ms == pytest.approx([100.0, 200.0])
    assert out.tpot_ms == pytest.approx(200.0)


def test_one_token_answer_has_no_tpot_and_empty_answer_no_ttft() -> None:
    one = StreamMeasure(sent=0.0)
    one.event(_chat("x"), 0.1)
    one.event("[DONE]", 0.1)
    out = one.finish(end=0.1)
    assert (out.ttft_ms, out.itl_ms, out.tpot_ms, out.output_tokens) == (pytest.approx(100.0), [], None, 1)
    empty = StreamMeasure(sent=0.0)
    empty.event(_chat("", role=True), 0.1)
    empty.event("[DONE]", 0.2)
    out = empty.finish(end=0.2)
    assert (out.ttft_ms, out.output_tokens) == (None, 0)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (json.dumps({"error": {"message": "engine died", "type": "server_error"}}), "engine died"),
        (_chat(None, finish="abort"), "abort"),
        ("{not json", "not JSON"),
        ("[1, 2]", "not a JSON object"),
    ],
)
def test_errors_inside_the_stream_fail_the_request(data: str, message: str) -> None:
    m = StreamMeasure(sent=0.0)
    m.event(_chat("a"), 0.1)
    with pytest.raises(StreamError, match=message):
        m.event(data, 0.2)


def test_a_cut_stream_fails_and_nothing_may_follow_done() -> None:
    cut = StreamMeasure(sent=0.0)
    cut.event(_chat("a"), 0.1)
    with pytest.raises(StreamError, match=r"without \[DONE\]"):
        cut.finish(end=0.2)
    done = StreamMeasure(sent=0.0)
    done.event("[DONE]", 0.1)
    with pytest.raises(StreamError, match="after"):
        done.event(_chat("late"), 0.2)


def test_error_bodies_give_short_messages() -> None:
    assert body_error(b'{"error": {"message": "model not found", "type": "NotFound", "code": 404}}') == (
        "model not found"
    )
    assert body_error(b"<html>Bad Gateway</html>") == "<html>Bad Gateway</html>"
    assert body_error(b"") == "empty body"


def test_goodput_needs_success_and_every_configured_target() -> None:
    fast = Measured(status=200, ttft_ms=100.0, tpot_ms=20.0, output_tokens=10)
    slow_first = Measured(status=200, ttft_ms=900.0, tpot_ms=20.0, output_tokens=10)
    slow_tokens = Measured(status=200, ttft_ms=100.0, tpot_ms=80.0, output_tokens=10)
    one_token = Measured(status=200, ttft_ms=100.0, tpot_ms=None, output_tokens=1)
    no_content = Measured(status=200, output_tokens=0)
    assert is_good(False, fast, 500.0, 50.0)
    assert not is_good(True, fast, 500.0, 50.0)
    assert not is_good(False, slow_first, 500.0, 50.0)
    assert is_good(False, slow_first, None, 50.0)  # no TTFT target: not checked
    assert not is_good(False, slow_tokens, 500.0, 50.0)
    assert is_good(False, slow_tokens, 500.0, None)
    assert is_good(False, one_token, 500.0, 50.0)  # no TPOT by definition
    assert not is_good(False, no_content, 500.0, None)  # a TTFT target needs a TTFT
    assert is_good(False, None, None, None)  # a user's own locustfile without targets
    assert not is_good(False, None, 500.0, None)
    assert not is_good(False, None, None, 50.0)
