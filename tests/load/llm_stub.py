"""A streaming OpenAI-compatible stub on loopback for the load generator's tests (its own process):
`python tests/load/llm_stub.py PORT [GOLDEN_JSONL]`.

It sends known chunks with known delays, so the load generator's measurements can be checked:
- every answer starts with a role chunk with empty content (as vLLM and OpenAI do), then the
  first content chunk after `ttft_ms` (a list: request k waits `ttft_ms[k % len]`), then one
  content chunk (one token) every `itl_ms`, a final chunk with `finish_reason`, a usage chunk
  with empty `choices` when `stream_options.include_usage`, and `data: [DONE]`;
- golden prompts (from GOLDEN_JSONL) are answered with their expected text, one character per
  chunk, or with a wrong text for every `wrong_every`-th golden request;
- `mode`: "cut" closes the connection after `cut_after` content chunks (no [DONE]), "error_chunk"
  sends an OpenAI error object inside the stream, "http_error" answers `status` with an error body.
POST /_config changes the behaviour (keys above), GET /_stats tells what it sent.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

from aiohttp import web

CONFIG: dict[str, Any] = {
    "ttft_ms": [50],
    "itl_ms": 20,
    "mode": None,
    "cut_after": 2,
    "status": 503,
    "wrong_every": 0,
    "model": "stub-model",
}
STATS: dict[str, Any] = {
    "requests": 0, "completed": 0, "golden": 0, "wrong_sent": 0, "by_ttft": {}, "models": {}
}  # fmt: skip
GOLDEN: dict[str, str] = {}
_counter = itertools.count()
_golden_counter = itertools.count(1)


def _key(api: str, body: dict[str, Any]) -> str:
    prompt = body.get("messages") if api == "chat" else body.get("prompt")
    return json.dumps([api, prompt], sort_keys=True)


def _load_golden(path: Path) -> None:
    for line in path.read_text().splitlines():
        case = json.loads(line)
        GOLDEN[_key(case["api"], case)] = case["expected"]


def _words(api: str, body: dict[str, Any]) -> int:
    if api == "chat":
        return sum(len(str(m.get("content", "")).split()) for m in body.get("messages") or [])
    return len(str(body.get("prompt", "")).split())


def _chunk(api: str, text: str | None, finish: str | None = None, role: bool = False) -> dict[str, Any]:
    if api == "chat":
        delta: dict[str, Any] = {"content": text} if text is not None else {}
        if role:
            delta["role"] = "assistant"
        choice: dict[str, Any] = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        obj = "chat.completion.chunk"
    else:
        choice = {"index": 0, "text": text or "", "logprobs": None, "finish_reason": finish}
        obj = "text_completion"
    return {"id": "cmpl-stub", "object": obj, "created": int(time.time()), "model": CONFIG["model"],
            "choices": [choice]}  # fmt: skip


async def _send(resp: web.StreamResponse, payload: dict[str, Any] | str) -> None:
    data = payload if isinstance(payload, str) else json.dumps(payload)
    await resp.write(f"data: {data}\n\n".encode())


def _texts(api: str, body: dict[str, Any]) -> tuple[list[str], bool]:
    """The content chunks to send, and whether this is a golden request."""
    expected = GOLDEN.get(_key(api, body))
    if expected is None:
        return [f"w{i} " for i in range(int(body.get("max_tokens") or 16))], False
    STATS["golden"] += 1
    every = int(CONFIG["wrong_every"])
    if every and next(_golden_counter) % every == 0:
        STATS["wrong_sent"] += 1
        expected = expected[::-1] + "!"
    return list(expected), True


async def _completion(request: web.Request, api: str) -> web.StreamResponse:
    body = await request.json()
    STATS["requests"] += 1
    STATS["models"][str(body.get("model"))] = STATS["models"].get(str(body.get("model")), 0) + 1
    if CONFIG["mode"] == "http_error":
        error = {"message": "injected failure", "type": "server_error", "param": None, "code": 503}
        return web.json_response({"error": error}, status=int(CONFIG["status"]))
    k = next(_counter)
    ttft_list = CONFIG["ttft_ms"]
    ttft = float(ttft_list[k % len(ttft_list)])
    texts, _golden = _texts(api, body)
    resp = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
    await resp.prepare(request)
    await _send(resp, _chunk(api, "", role=True))
    await asyncio.sleep(ttft / 1000)
    for i, text in enumerate(texts):
        if i:
            await asyncio.sleep(float(CONFIG["itl_ms"]) / 1000)
        if CONFIG["mode"] == "cut" and i == int(CONFIG["cut_after"]):
            assert request.transport is not None
            request.transport.abort()
            return resp
        if CONFIG["mode"] == "error_chunk" and i == int(CONFIG["cut_after"]):
            await _send(resp, {"error": {"message": "engine died", "type": "server_error", "code": 500}})
            await _send(resp, "[DONE]")
            await resp.write_eof()
            return resp
        await _send(resp, _chunk(api, text))
    await _send(resp, _chunk(api, None, finish="length"))
    if (body.get("stream_options") or {}).get("include_usage"):
        # One token per word, plus one (as a BOS token would): distinguishable from the client's count.
        usage = {"prompt_tokens": _words(api, body) + 1, "completion_tokens": len(texts)}
        usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
        await _send(
            resp, {"id": "cmpl-stub", "object": "chat.completion.chunk", "choices": [], "usage": usage}
        )
    await _send(resp, "[DONE]")
    await resp.write_eof()
    STATS["completed"] += 1
    STATS["by_ttft"][str(int(ttft))] = STATS["by_ttft"].get(str(int(ttft)), 0) + 1
    return resp


async def chat(request: web.Request) -> web.StreamResponse:
    return await _completion(request, "chat")


async def completions(request: web.Request) -> web.StreamResponse:
    return await _completion(request, "completions")


async def models(request: web.Request) -> web.Response:
    return web.json_response({"object": "list", "data": [{"id": CONFIG["model"], "object": "model"}]})


async def infer(request: web.Request) -> web.Response:
    body = await request.json()
    STATS["requests"] += 1
    if CONFIG["mode"] == "http_error":
        return web.json_response({"error": "injected failure"}, status=int(CONFIG["status"]))
    data = body["inputs"][0]["data"]
    STATS["completed"] += 1
    outputs = [{"name": "output-0", "shape": [1], "datatype": "FP32", "data": [sum(data)]}]
    return web.json_response({"model_name": request.match_info["name"], "outputs": outputs})


async def configure(request: web.Request) -> web.Response:
    CONFIG.update(await request.json())
    return web.json_response(CONFIG)


async def stats(request: web.Request) -> web.Response:
    return web.json_response(STATS)


def app() -> web.Application:
    application = web.Application()
    application.router.add_post("/v1/chat/completions", chat)
    application.router.add_post("/v1/completions", completions)
    application.router.add_get("/v1/models", models)
    application.router.add_post("/v2/models/{name}/infer", infer)
    application.router.add_post("/_config", configure)
    application.router.add_get("/_stats", stats)
    return application


if __name__ == "__main__":
    if len(sys.argv) > 2:
        _load_golden(Path(sys.argv[2]))
    web.run_app(app(), host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
