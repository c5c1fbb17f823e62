"""The OpenAI-compatible wire format as vLLM 0.33.0 speaks it (pure: parse requests, encode answers).

Requests: `vllm/entrypoints/openai/{chat_completion,completion}/protocol.py` (unknown fields are
allowed and ignored, as vLLM's OpenAIBaseModel does; temperature defaults to 1.0; completions'
max_tokens to 16, chat's to what is left of max_model_len). Answers byte for byte in vLLM's field
order: streamed chunks are `model_dump_json(exclude_unset=True)` of vLLM's chunk models, so the
fields vLLM passes explicitly appear even when null (`logprobs`, `token_ids`, `kv_transfer_params`,
the first chat chunk's `prompt_token_ids`/`prompt_text`); the usage chunk drops nulls; full
responses are complete `model_dump()`s. Errors: `{"error": {"message", "type", "param", "code"}}`.

Streaming chunks are pre-encoded: each request builds its byte prefix and suffix once, and a token
becomes one chunk by joining three byte strings (the token's JSON-escaped text comes from a table).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from reliability.lab.llm.tinylm import TOKEN_JSON, chat_prompt

DONE = b"data: [DONE]\n\n"
DEFAULT_TEMPERATURE = 1.0  # vLLM's _DEFAULT_SAMPLING_PARAMS when the model sets none
COMPLETIONS_DEFAULT_MAX_TOKENS = 16  # vLLM CompletionRequest.max_tokens


class OpenAIError(Exception):
    """An error answered in OpenAI's shape with vLLM's status code and type."""

    def __init__(self, status: int, message: str, err_type: str, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.err_type, self.param = status, message, err_type, param

    def body(self) -> dict[str, Any]:
        return error_body(self.status, self.message, self.err_type, self.param)


def error_body(status: int, message: str, err_type: str, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": param, "code": status}}


def bad_request(message: str, param: str | None = None) -> OpenAIError:
    return OpenAIError(400, message, "BadRequestError", param)


def internal_error(message: str = "Internal server error") -> OpenAIError:
    return OpenAIError(500, message, "InternalServerError")


ENGINE_DEAD = "The server had an error while processing your request."  # EngineDeadError.CLIENT_MESSAGE


class _Model(BaseModel):
    model_config = ConfigDict(extra="allow")


class StreamOptions(_Model):
    include_usage: bool | None = False
    continuous_usage_stats: bool | None = False


class ChatMessage(_Model):
    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class _Sampling(_Model):
    model: str | None = None
    temperature: float | None = Field(None, ge=0.0)
    seed: int | None = Field(None, ge=-(2**63), le=2**63 - 1)
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    n: int | None = 1
    stop: str | list[str] | None = None
    ignore_eos: bool = False
    min_tokens: int = Field(0, ge=0)
    logprobs: Any = None

    @model_validator(mode="after")
    def _supported(self) -> _Sampling:
        if self.stream_options is not None and not self.stream:
            raise ValueError("Stream options can only be defined when `stream=True`.")
        if (self.n or 1) != 1:
            raise ValueError("n > 1 is not supported by this server")
        if self.logprobs not in (None, False):
            raise ValueError("logprobs are not supported by this server")
        return self

    def stop_strings(self) -> list[str]:
        stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
        return [s for s in stops if s]


class ChatCompletionRequest(_Sampling):
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)

    def prompt_text(self) -> str:
        return chat_prompt([{"role": m.role, "content": m.text()} for m in self.messages])

    def requested_max_tokens(self) -> int | None:
        return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Sampling):
    prompt: str | list[str]
    max_tokens: int | None = Field(COMPLETIONS_DEFAULT_MAX_TOKENS, ge=1)

    @field_validator("prompt")
    @classmethod
    def _one_prompt(cls, v: str | list[str]) -> str | list[str]:
        if isinstance(v, list) and len(v) != 1:
            raise ValueError("exactly one prompt is supported by this server")
        return v

    def prompt_text(self) -> str:
        return self.prompt if isinstance(self.prompt, str) else self.prompt[0]

    def requested_max_tokens(self) -> int | None:
        return self.max_tokens


Api = Literal["chat", "completions"]


def parse_request(api: Api, raw: bytes) -> ChatCompletionRequest | CompletionRequest:
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise bad_request(f"Invalid JSON body: {exc}") from exc
    if not isinstance(data, dict):
        raise bad_request("The request body must be a JSON object")
    model = ChatCompletionRequest if api == "chat" else CompletionRequest
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        loc = ".".join(str(p) for p in err["loc"]) or None
        msg = err["msg"].removeprefix("Value error, ")
        raise bad_request(f"{loc}: {msg}" if loc else msg, loc) from exc


def max_tokens_for(requested: int | None, prompt_tokens: int, max_model_len: int) -> int:
    """vLLM's get_max_tokens: reject a prompt that leaves no room, clamp the rest."""
    if prompt_tokens >= max_model_len:
        raise OpenAIError(
            400,
            f"This model's maximum context length is {max_model_len} tokens. However, your prompt "
            f"contains {prompt_tokens} input tokens, which exceeds this limit even without any output "
            "tokens. Please reduce the length of the input prompt.",
            "BadRequestError",
            "input_tokens",
        )
    room = max_model_len - prompt_tokens
    return room if requested is None else min(requested, room)


def unknown_model(name: str | None, served: str) -> OpenAIError:
    return OpenAIError(
        404, f"The model `{name}` does not exist. Valid aliases: {served}.", "NotFoundError", "model"
    )


def _dumps(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode()


def new_request_id(api: Api) -> str:
    return f"{'chatcmpl' if api == 'chat' else 'cmpl'}-{uuid.uuid4().hex}"


@dataclass(slots=True)
class StreamEncoder:
    """The SSE chunks of one streamed request, pre-encoded around the token text."""

    api: Api
    request_id: str
    model: str
    created: int
    _prefix: bytes = b""
    _mid: bytes = b""
    _suffix: bytes = b""
    _head: bytes = b""
    _token: tuple[bytes, bytes] = (b"", b"")

    def __post_init__(self) -> None:
        obj = "chat.completion.chunk" if self.api == "chat" else "text_completion"
        self._head = (
            b'{"id":' + _dumps(self.request_id) + b',"object":"' + obj.encode() + b'","created":'
            + str(self.created).encode() + b',"model":' + _dumps(self.model) + b',"choices":'
        )  # fmt: skip
        if self.api == "chat":
            self._prefix = b"data: " + self._head + b'[{"index":0,"delta":{"content":"'
            self._mid = b'"},"logprobs":null,"finish_reason":'
            self._suffix = b',"token_ids":null}],"kv_transfer_params":null}\n\n'
        else:
            self._prefix = b"data: " + self._head + b'[{"index":0,"text":"'
            self._mid = b'","logprobs":null,"finish_reason":'
            self._suffix = (
                b',"stop_reason":null,"prompt_token_ids":null,"token_ids":null,"weight_versions":null}],'
                b'"kv_transfer_params":null}\n\n'
            )
        self._token = self._prefix, self._mid + b"null" + self._suffix

    def role(self) -> bytes:
        """Chat's first chunk (sent with the first token): the assistant role and empty content."""
        return (
            b"data: " + self._head + b'[{"index":0,"delta":{"role":"assistant","content":""},'
            b'"logprobs":null,"finish_reason":null}],"prompt_token_ids":null,"prompt_text":null}\n\n'
        )

    def token(self, tok: int) -> bytes:
        prefix, rest = self._token
        return prefix + TOKEN_JSON[tok] + rest

    def text(self, text: str) -> bytes:
        prefix, rest = self._token
        return prefix + json.dumps(text, ensure_ascii=False)[1:-1].encode() + rest

    def final(self, text: str, finish_reason: str, stop_reason: str | None) -> bytes:
        """The chunk carrying finish_reason (and the last piece of text, possibly empty)."""
        esc = json.dumps(text, ensure_ascii=False)[1:-1].encode()
        if self.api == "chat":
            tail = (
                b',"stop_reason":' + _dumps(stop_reason) + b',"token_ids":null,"weight_versions":null}],'
                b'"kv_transfer_params":null}\n\n'
            )
        else:
            tail = (
                b',"stop_reason":' + _dumps(stop_reason)
                + b',"prompt_token_ids":null,"token_ids":null,"weight_versions":null}],'
                b'"kv_transfer_params":null}\n\n'
            )  # fmt: skip
        return self._prefix + esc + self._mid + _dumps(finish_reason) + tail

    def usage(self, prompt_tokens: int, completion_tokens: int) -> bytes:
        usage = {
            "prompt_tokens": prompt_tokens,
            "total_tokens": prompt_tokens + completion_tokens,
            "completion_tokens": completion_tokens,
        }
        return b"data: " + self._head + b'[],"usage":' + _dumps(usage) + b"}\n\n"


def stream_error(err: OpenAIError) -> bytes:
    return b"data: " + _dumps(err.body()) + b"\n\n"


def full_response(
    api: Api,
    request_id: str,
    model: str,
    created: int,
    text: str,
    finish_reason: str,
    stop_reason: str | None,
    prompt_tokens: int,
    completion_tokens: int,
) -> dict[str, Any]:
    """A non-streamed answer: vLLM's ChatCompletionResponse / CompletionResponse model_dump()."""
    usage = {
        "prompt_tokens": prompt_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "completion_tokens": completion_tokens,
        "prompt_tokens_details": None,
        "completion_tokens_details": None,
    }
    if api == "chat":
        choice: dict[str, Any] = {
            "index": 0,
            "message": {
                "role": "assistant",
                "content": text,
                "refusal": None,
                "annotations": None,
                "audio": None,
                "function_call": None,
                "reasoning": None,
            },
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": stop_reason,
            "token_ids": None,
            "routed_experts": None,
            "weight_versions": None,
        }
        tail: dict[str, Any] = {"prompt_logprobs": None, "prompt_token_ids": None, "prompt_text": None}
    else:
        choice = {
            "index": 0,
            "text": text,
            "logprobs": None,
            "finish_reason": finish_reason,
            "stop_reason": stop_reason,
            "token_ids": None,
            "prompt_logprobs": None,
            "prompt_token_ids": None,
            "routed_experts": None,
            "weight_versions": None,
        }
        tail = {}
    return {
        "id": request_id,
        "object": "chat.completion" if api == "chat" else "text_completion",
        "created": created,
        "model": model,
        "choices": [choice],
        "service_tier": None,
        "system_fingerprint": None,
        "usage": usage,
        **tail,
        "kv_transfer_params": None,
        "ec_transfer_params": None,
        "metrics": None,
    }


def model_list(name: str, root: str, max_model_len: int, created: int | None = None) -> dict[str, Any]:
    """GET /v1/models: vLLM's ModelList with one ModelCard."""
    created = int(time.time()) if created is None else created
    return {
        "object": "list",
        "data": [
            {
                "id": name,
                "object": "model",
                "created": created,
                "owned_by": "vllm",
                "root": root,
                "parent": None,
                "max_model_len": max_model_len,
                "permission": [
                    {
                        "id": f"modelperm-{uuid.uuid4().hex}",
                        "object": "model_permission",
                        "created": created,
                        "allow_create_engine": False,
                        "allow_sampling": True,
                        "allow_logprobs": True,
                        "allow_search_indices": False,
                        "allow_view": True,
                        "allow_fine_tuning": False,
                        "organization": "*",
                        "group": None,
                        "is_blocking": False,
                    }
                ],
            }
        ],
    }
