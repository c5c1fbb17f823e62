"""Built-in Locust users for LLM serving (run by Locust only, never imported by the harness).

- `OpenAIChatUser` (`user="openai-chat"`): POST /v1/chat/completions, `stream: true`,
  `stream_options: {include_usage: true}`.
- `OpenAICompletionsUser` (`user="openai-completions"`): POST /v1/completions, streaming likewise.
- `OIPPredictUser` (`user="oip-predict"`): KServe Open Inference Protocol v2,
  POST /v2/models/{name}/infer with `inputs: [{name, shape, datatype: FP32, data}]`.

`LoadRun` runs this file after `shape_locustfile` (our load shape); alone (`locust -f
llm_locustfile.py OpenAIChatUser -u 5 -t 1m ...`) it runs with Locust's own options, and the options
of `reliability.load.plugin.OPTIONS` come from their environment variables or `--reliability-*`.

Each request fires Locust's `events.request` once, when it ended: response_time = e2e in ms,
response_length = output tokens, exception = why it failed (None when it succeeded), and
`context["reliability"]` = `reliability.load.measure.Measured` for the stats plugin.

Per-request measurements, as defined in `reliability.load.measure` (docs/twin.md section 3):
TTFT = first non-empty content chunk received - request sent; ITL = each gap between consecutive
non-empty content chunks; TPOT = (e2e - TTFT) / (output tokens - 1); e2e = last byte received -
request sent; output tokens from `usage` when sent, else the number of content chunks; prompt tokens
from `usage`, else the words sent. Times are taken on `time.perf_counter` when a line of the event
stream has been read from the socket.

A request fails on a non-200 status, a connection error, the whole-request timeout, a body that is not
an event stream, an OpenAI error object inside the stream, a finish_reason `abort`/`error`, or a
stream that ends without `data: [DONE]` (cut).

Judging: with a golden file, a share of the requests (`judge_share`) are golden cases of the user's
API (`chat` or `completions`) sent at temperature 0; a complete answer (HTTP 200, stream ended with
[DONE]) is `judged`, and `wrong` when its streamed text differs from `expected` (exact match).
A failed request is a failure, neither judged nor wrong.

Other requests: a prompt of n words (n from the prompt distribution) and `max_tokens` from the output
distribution, each user with its own seeded random generator (seed, worker index, user number).
The model is the configured one, else the first of GET /v1/models, asked once per process (a failed
ask is reported as a failed `GET /v1/models` request and retried on the next task).
"""

from __future__ import annotations

import itertools
import json
import random
import time
from typing import Any

import gevent
from geventhttpclient import HTTPClient
from geventhttpclient.url import URL
from locust import User, constant, constant_throughput, task
from locust.exception import StopUser

from reliability.load.measure import Measured, SseDecoder, StreamError, StreamMeasure, body_error
from reliability.load.plugin import CONTEXT_KEY, option
from reliability.load.workload import GoldenCase, length_dist, prompt_text, read_golden

__all__ = ["OIPPredictUser", "OpenAIChatUser", "OpenAICompletionsUser"]

HEADERS = {"Content-Type": "application/json", "Accept": "text/event-stream"}
CONNECT_TIMEOUT_S = 2.0


class RequestFailed(Exception):
    """A request that did not succeed; the message becomes its `errors` key."""


_user_numbers = itertools.count()
_model: dict[str, str] = {}
_golden: dict[str, list[GoldenCase]] = {}


def _golden_cases(path: str, api: str) -> list[GoldenCase]:
    """The golden cases of one API from `path` (read once per process)."""
    if not path:
        return []
    if path not in _golden:
        _golden[path] = read_golden(path)
    return [c for c in _golden[path] if c.api == api]


class _ApiUser(User):
    abstract = True
    default_timeout_s = 60.0

    def wait_time(self) -> float:
        return self._wait(self)

    def on_start(self) -> None:
        env = self.environment
        runner = env.runner
        worker = getattr(runner, "worker_index", 0) or 0
        seed = int(option(env, "--reliability-seed"))
        self.rng = random.Random(seed * 1_000_003 + worker * 10_007 + next(_user_numbers))
        rps = float(option(env, "--reliability-user-rps"))
        self._wait = constant_throughput(rps) if rps > 0 else constant(0)
        timeout = option(env, "--reliability-request-timeout-s")
        self.timeout_s = float(timeout) if timeout else self.default_timeout_s
        self.configured_model = str(option(env, "--reliability-model") or "")
        base = URL(self.host or env.host or "")
        self.base_path = base.path.rstrip("/")
        self.http = self._client()

    def _client(self) -> HTTPClient:
        return HTTPClient.from_url(
            self.host or self.environment.host,
            concurrency=1,
            connection_timeout=CONNECT_TIMEOUT_S,
            network_timeout=self.timeout_s,
        )

    def on_stop(self) -> None:
        self.http.close()

    def _fire(self, name: str, sent: float, end: float, exc: Exception | None, measured: Measured) -> None:
        e2e_ms = (end - sent) * 1000.0
        self.environment.events.request.fire(
            request_type="POST",
            name=name,
            response_time=e2e_ms,
            response_length=measured.output_tokens,
            exception=exc,
            context={CONTEXT_KEY: measured},
            response=None,
            url=name,
            start_time=time.time() - e2e_ms / 1000.0,
        )

    def _reset(self) -> None:
        # A connection left mid-answer (error, timeout, cut) must not serve the next request.
        self.http.close()
        self.http = self._client()

    def _model_name(self) -> str | None:
        """The configured model, else the first one the server lists (asked until one answer came;
        users ask side by side rather than queue behind one that hangs)."""
        if self.configured_model:
            return self.configured_model
        if "name" in _model:
            return _model["name"]
        sent = time.perf_counter()
        status = 0
        try:
            with gevent.Timeout(self.timeout_s, RequestFailed(f"timeout after {self.timeout_s:g} s")):
                resp = self.http.get(self.base_path + "/v1/models", headers={"Accept": "application/json"})
                status = resp.status_code
                body = resp.read()
                if status != 200:
                    raise RequestFailed(f"HTTP {status}: {body_error(body)}")
                data = json.loads(body).get("data") or []
                if not data or not isinstance(data[0], dict) or not data[0].get("id"):
                    raise RequestFailed("no model listed")
        except (StopUser, gevent.GreenletExit):
            raise
        except Exception as exc:
            self._reset()
            self.environment.events.request.fire(
                request_type="GET",
                name="/v1/models",
                response_time=(time.perf_counter() - sent) * 1000.0,
                response_length=0,
                exception=exc,
                context={CONTEXT_KEY: Measured(status=status)},
                response=None,
            )
            return None
        return _model.setdefault("name", str(data[0]["id"]))


class _StreamingUser(_ApiUser):
    abstract = True
    api = "chat"
    path = "/v1/chat/completions"

    def on_start(self) -> None:
        super().on_start()
        env = self.environment
        self.prompt_dist = length_dist(
            option(env, "--reliability-prompt-tokens"), "RELIABILITY_PROMPT_TOKENS"
        )
        self.output_dist = length_dist(
            option(env, "--reliability-output-tokens"), "RELIABILITY_OUTPUT_TOKENS"
        )
        self.golden = _golden_cases(str(option(env, "--reliability-golden-path") or ""), self.api)
        self.judge_share = float(option(env, "--reliability-judge-share"))

    def _prompt_body(self, text: str) -> dict[str, Any]:
        raise NotImplementedError

    def _golden_body(self, case: GoldenCase) -> dict[str, Any]:
        raise NotImplementedError

    @task
    def generate(self) -> None:
        model = self._model_name()
        if model is None:
            return
        case: GoldenCase | None = None
        if self.golden and self.rng.random() < self.judge_share:
            case = self.rng.choice(self.golden)
            body = self._golden_body(case)
            body["max_tokens"] = case.max_tokens
            body["temperature"] = 0
            prompt_words = case.prompt_words
        else:
            prompt_words = self.prompt_dist.sample(self.rng)
            body = self._prompt_body(prompt_text(self.rng, prompt_words))
            body["max_tokens"] = self.output_dist.sample(self.rng)
        body.update(model=model, stream=True, stream_options={"include_usage": True})
        self._stream(body, prompt_words, case)

    def _stream(self, body: dict[str, Any], prompt_words: int, case: GoldenCase | None) -> None:
        payload = json.dumps(body).encode()
        status = 0
        exc: Exception | None = None
        measured: Measured | None = None
        stream: StreamMeasure | None = None
        sent = end = time.perf_counter()
        wall_offset = time.time() - sent
        try:
            with gevent.Timeout(self.timeout_s, RequestFailed(f"timeout after {self.timeout_s:g} s")):
                resp = self.http.request("POST", self.base_path + self.path, body=payload, headers=HEADERS)
                status = resp.status_code
                if status != 200:
                    raise RequestFailed(f"HTTP {status}: {body_error(resp.read())}")
                ctype = str(resp.get("content-type") or "")
                if not ctype.startswith("text/event-stream"):
                    raise RequestFailed(f"not an event stream ({ctype or 'no content-type'})")
                stream = StreamMeasure(sent)
                decoder = SseDecoder()
                while line := resp.readline(b"\n"):
                    data = decoder.feed(line.decode("utf-8", errors="replace"))
                    if data is not None:
                        stream.event(data, time.perf_counter())
                end = time.perf_counter()  # the last byte is in
                tail = decoder.close()
                if tail is not None:
                    stream.event(tail, end)
                measured = stream.finish(end, status, prompt_words, wall_offset)
                if case is not None:
                    measured.judged = True
                    measured.wrong = stream.text != case.expected
        except StreamError as err:
            exc = err
        except RequestFailed as err:
            exc = err
        except (StopUser, gevent.GreenletExit):
            raise
        except Exception as err:  # connection refused/reset, a cut chunked body (parse error), ...
            what = f"{type(err).__name__}: {err}" if str(err) else type(err).__name__
            exc = RequestFailed(f"stream cut ({what})" if status == 200 else what)
        if exc is not None:
            end = time.perf_counter()
            self._reset()
            measured = Measured(status=status)
            if stream is not None and stream.chunk_times:
                stream.timings(measured, wall_offset)
            else:
                measured.waited_ms = (end - sent) * 1000.0
        assert measured is not None
        self._fire(self.path, sent, end, exc, measured)


class OpenAIChatUser(_StreamingUser):
    """POST /v1/chat/completions, streaming."""

    api = "chat"
    path = "/v1/chat/completions"

    def _prompt_body(self, text: str) -> dict[str, Any]:
        return {"messages": [{"role": "user", "content": text}]}

    def _golden_body(self, case: GoldenCase) -> dict[str, Any]:
        return {"messages": case.messages}


class OpenAICompletionsUser(_StreamingUser):
    """POST /v1/completions, streaming."""

    api = "completions"
    path = "/v1/completions"

    def _prompt_body(self, text: str) -> dict[str, Any]:
        return {"prompt": text}

    def _golden_body(self, case: GoldenCase) -> dict[str, Any]:
        return {"prompt": case.prompt}


class OIPPredictUser(_ApiUser):
    """KServe Open Inference Protocol v2: POST /v2/models/{name}/infer (the predictive model)."""

    default_timeout_s = 5.0

    def on_start(self) -> None:
        super().on_start()
        self.features = int(option(self.environment, "--reliability-features"))

    @task
    def infer(self) -> None:
        if not self.configured_model:
            raise StopUser()  # LoadRun refuses oip-predict without a model; a bare locust run stops here
        path = f"{self.base_path}/v2/models/{self.configured_model}/infer"
        name = "/v2/models/{name}/infer"
        data = [round(self.rng.uniform(-1, 1), 4) for _ in range(self.features)]
        inputs = [{"name": "input-0", "shape": [1, self.features], "datatype": "FP32", "data": data}]
        payload = json.dumps({"inputs": inputs}).encode()
        status = 0
        exc: Exception | None = None
        sent = time.perf_counter()
        try:
            with gevent.Timeout(self.timeout_s, RequestFailed(f"timeout after {self.timeout_s:g} s")):
                resp = self.http.request(
                    "POST", path, body=payload, headers={"Content-Type": "application/json"}
                )
                status = resp.status_code
                body = resp.read()
                if status != 200:
                    raise RequestFailed(f"HTTP {status}: {body_error(body)}")
                end = time.perf_counter()
                outputs = json.loads(body).get("outputs")
                if not isinstance(outputs, list) or not outputs:
                    raise RequestFailed("answer has no outputs")
        except RequestFailed as err:
            exc = err
        except (StopUser, gevent.GreenletExit):
            raise
        except Exception as err:
            exc = RequestFailed(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)
        if exc is not None:
            end = time.perf_counter()
            self._reset()
        self._fire(name, sent, end, exc, Measured(status=status))
