"""The language model every GPU node serves: a small deterministic character-level model in numpy.

Architecture: the last `context` characters are embedded, concatenated, passed through one tanh
hidden layer and projected to logits over a printable alphabet plus an end-of-sequence token. A
character-bigram prior counted from a fixed built-in corpus is added to the logits, so the text looks
like text, and an end-of-sequence term that grows with the number of generated tokens makes answers
end by themselves (finish_reason "stop") at realistic lengths. One token is one character.

Weights are seeded (`LmConfig.seed`) and written once as a checkpoint whose SHA-256 every node checks
before serving: a corrupt checkpoint refuses to load. Computation is float64 so that a row's result
does not depend on which other sequences share its batch (BLAS kernels differ by batch size), which
makes greedy decoding (temperature 0) give the same text for the same prompt on every node of the
same version, batched or alone. Temperature > 0 samples with a counter-based generator keyed by the
request's `seed` and the token position, again independent of the batch.

A different version (`bad_version` fault, or a canary deploy) means different weights and therefore
different answers to the golden prompts (`golden_cases`, `golden.jsonl`, docs/twin.md 1.3).
"""

from __future__ import annotations

import functools
import hashlib
import io
import itertools
import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, model_validator

from reliability.files import write_atomic

# Token ids 0..95 are these characters; 96 is end-of-sequence on output and padding on input.
ALPHABET = "\n" + "".join(chr(c) for c in range(32, 127))
EOS = len(ALPHABET)
VOCAB = EOS + 1
PAD = EOS
_FALLBACK = ALPHABET.index("?")
_CHAR_IDS = {c: i for i, c in enumerate(ALPHABET)}
# JSON-escaped bytes of each token as it appears inside a JSON string (EOS has no text).
TOKEN_JSON: tuple[bytes, ...] = (*(json.dumps(c)[1:-1].encode() for c in ALPHABET), b"")
TOKEN_TEXT: tuple[str, ...] = (*ALPHABET, "")

_CORPUS = (
    "An inference service is judged by the time to the first token and by the gap between tokens. "
    "When the cache of keys and values is full, the scheduler preempts the newest request and runs "
    "it again later. A node whose graphics card fell off the bus reports the error and stops "
    "answering; the gateway sees the health check fail and sends traffic to the other nodes. "
    "Reliability is a feature: write the objective first, measure it with the same names the "
    "platform exports, then break things on purpose and watch the budget. The canary asks questions "
    "whose answers are known, so a silent change of the model is found within seconds.\n"
    "User: What is a service level objective?\nAssistant: A target for a measured indicator, such "
    "as ninety nine percent of requests faster than half a second over four weeks.\n"
)


class CheckpointError(Exception):
    pass


class LmConfig(BaseModel):
    """Shape and seed of the model; stored inside the checkpoint."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 11
    version: str = Field("v1", pattern=r"^[A-Za-z0-9._-]+$")
    context: int = Field(8, ge=1, le=64, description="Characters the model sees.")
    embed: int = Field(16, ge=1, le=256)
    hidden: int = Field(96, ge=1, le=1024)
    prompt_buckets: int = Field(1024, ge=1, le=65536, description="Hashed character bigrams of the prompt.")
    prompt_scale: float = Field(0.3, ge=0, description="Weight of the prompt state in the hidden layer.")
    mlp_scale: float = Field(1.5, gt=0, description="Weight of the seeded network against the prior.")
    eos_base: float = -9.0
    eos_slope: float = Field(0.25, ge=0, description="End-of-sequence logit added per generated token.")


def version_config(base: LmConfig, version: str) -> LmConfig:
    """The same architecture under another version: different weights, derived from the version name."""
    if version == base.version:
        return base
    return base.model_copy(update={"version": version, "seed": base.seed + zlib.crc32(version.encode())})


def _bigram_prior() -> np.ndarray:
    """log P(next | last) from the corpus, add-0.5 smoothed; rows are input ids (PAD = start)."""
    counts = np.full((VOCAB, VOCAB), 0.5)
    ids = [PAD, *encode(_CORPUS)]
    for a, b in itertools.pairwise(ids):
        counts[a, b] += 1.0
    counts[:, EOS] = 1e-9  # ending is the length term's job, not the corpus's
    return np.log(counts / counts.sum(axis=1, keepdims=True))


def init_weights(cfg: LmConfig) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(cfg.seed)
    d_in = cfg.context * cfg.embed
    return {
        "emb": rng.normal(0.0, 1.0, size=(VOCAB, cfg.embed)),
        "wp": rng.normal(0.0, 1.0, size=(cfg.prompt_buckets, cfg.hidden)),
        "w1": rng.normal(0.0, 1.0 / np.sqrt(d_in), size=(d_in, cfg.hidden)),
        "b1": rng.normal(0.0, 0.1, size=cfg.hidden),
        "w2": rng.normal(0.0, 1.0 / np.sqrt(cfg.hidden), size=(cfg.hidden, VOCAB)),
        "b2": rng.normal(0.0, 0.1, size=VOCAB),
        "prior": _bigram_prior(),
    }


def encode(text: str) -> list[int]:
    """Characters outside the alphabet read as '?' (the prompt's token count is still its length)."""
    return [_CHAR_IDS.get(c, _FALLBACK) for c in text]


def decode(tokens: Sequence[int]) -> str:
    return "".join(TOKEN_TEXT[t] for t in tokens)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    x = x + np.uint64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return x ^ (x >> np.uint64(31))


def uniforms(seeds: np.ndarray, positions: np.ndarray) -> np.ndarray:
    """One uniform in [0, 1) per (seed, position): the same draw whatever the batch."""
    with np.errstate(over="ignore"):
        key = seeds.astype(np.uint64) * np.uint64(0x100000001B3) + positions.astype(np.uint64)
        return (_splitmix64(key) >> np.uint64(11)).astype(np.float64) / float(1 << 53)


@dataclass(frozen=True)
class TinyLm:
    config: LmConfig
    tables: np.ndarray  # (context * VOCAB, hidden): each position's embedding already projected by w1
    wp: np.ndarray  # (prompt_buckets, hidden): what the prompt as a whole adds to the hidden layer
    b1: np.ndarray
    w2: np.ndarray
    b2: np.ndarray
    prior: np.ndarray

    @classmethod
    def from_weights(cls, cfg: LmConfig, w: dict[str, np.ndarray]) -> TinyLm:
        e, k = cfg.embed, cfg.context
        tables = np.concatenate([w["emb"] @ w["w1"][j * e : (j + 1) * e] for j in range(k)])
        wp = w["wp"] * cfg.prompt_scale
        return cls(cfg, tables, wp, w["b1"], w["w2"] * cfg.mlp_scale, w["b2"] * cfg.mlp_scale, w["prior"])

    @classmethod
    def seeded(cls, cfg: LmConfig) -> TinyLm:
        return cls.from_weights(cfg, init_weights(cfg))

    @property
    def context(self) -> int:
        return self.config.context

    @functools.cached_property
    def _offsets(self) -> np.ndarray:
        return np.arange(self.context) * VOCAB

    def prompt_state(self, prompt: str) -> np.ndarray:
        """What prefill computes once per request: the prompt's hashed character bigrams, summed and
        scaled by 1/sqrt(n) so long and short prompts weigh alike. Without it every chat answer would
        start alike, since the window only sees the template's last characters."""
        ids = np.array([PAD, *encode(prompt)], dtype=np.int64)
        buckets = (ids[:-1] * VOCAB + ids[1:]) % self.config.prompt_buckets
        return np.asarray(self.wp[buckets].sum(axis=0) / np.sqrt(max(len(buckets), 1)))

    def logits(self, ctx: np.ndarray, generated: np.ndarray, state: np.ndarray) -> np.ndarray:
        """ctx: (B, context) input ids, oldest first; generated: (B,) tokens generated so far;
        state: (B, hidden) prompt states."""
        # One gather for all positions: row j * VOCAB + id of the flattened tables.
        h = state + self.b1 + self.tables[ctx + self._offsets].sum(axis=1)
        out = np.tanh(h) @ self.w2 + self.b2 + self.prior[ctx[:, -1]]
        out[:, EOS] += self.config.eos_base + self.config.eos_slope * generated
        return out

    def next_tokens(
        self,
        ctx: np.ndarray,
        generated: np.ndarray,
        state: np.ndarray,
        temperature: np.ndarray,
        seeds: np.ndarray,
        allow_eos: np.ndarray,
    ) -> np.ndarray:
        """The next token of every row in one call: argmax where temperature is 0, else a sample."""
        logits = self.logits(ctx, generated, state)
        logits[~allow_eos, EOS] = -np.inf
        tokens = logits.argmax(axis=1)
        hot = temperature > 0
        if hot.any():
            z = logits[hot] / temperature[hot, None]
            z -= z.max(axis=1, keepdims=True)
            cdf = np.cumsum(np.exp(z), axis=1)
            u = uniforms(seeds[hot], generated[hot]) * cdf[:, -1]
            tokens[hot] = np.minimum((cdf <= u[:, None]).sum(axis=1), VOCAB - 1)
        return tokens

    def context_of(self, prompt_tail: Sequence[int], output: Sequence[int]) -> list[int]:
        """The model's window over prompt + output, left-padded."""
        k = self.context
        tail = [*prompt_tail[-k:], *output[-k:]][-k:]
        return [PAD] * (k - len(tail)) + tail


def generate(
    model: TinyLm,
    prompt: str,
    max_tokens: int,
    temperature: float = 0.0,
    seed: int = 0,
    ignore_eos: bool = False,
) -> tuple[list[int], str]:
    """One sequence alone, token by token: (output tokens, finish_reason "stop" | "length")."""
    tail = encode(prompt[-model.context :])
    state = model.prompt_state(prompt)[None, :]
    out: list[int] = []
    while len(out) < max_tokens:
        ctx = np.array([model.context_of(tail, out)])
        tok = int(
            model.next_tokens(
                ctx,
                np.array([len(out)]),
                state,
                np.array([temperature]),
                np.array([seed], dtype=np.uint64),
                np.array([not ignore_eos]),
            )[0]
        )
        out.append(tok)
        if tok == EOS:
            return out, "stop"
    return out, "length"


# --- chat template -----------------------------------------------------------------------------


def chat_prompt(messages: Sequence[dict[str, str]]) -> str:
    """The one fixed template: each message as '<|role|>\\ncontent\\n', then the assistant's turn."""
    parts = [f"<|{m['role']}|>\n{m['content']}\n" for m in messages]
    return "".join(parts) + "<|assistant|>\n"


# --- checkpoint --------------------------------------------------------------------------------


def checkpoint_bytes(cfg: LmConfig) -> bytes:
    buf = io.BytesIO()
    meta = np.frombuffer(cfg.model_dump_json().encode(), dtype=np.uint8)
    np.savez(buf, config=meta, **init_weights(cfg))
    return buf.getvalue()


def write_checkpoint(path: Path, cfg: LmConfig) -> str:
    """Write the weights atomically; returns the SHA-256 every node checks before serving."""
    data = checkpoint_bytes(cfg)
    write_atomic(path, data)
    return hashlib.sha256(data).hexdigest()


def load_checkpoint(path: Path, sha256: str | None) -> TinyLm:
    """Verify (unless sha256 is None) and load; a corrupt or foreign file raises CheckpointError."""
    data = Path(path).read_bytes()
    actual = hashlib.sha256(data).hexdigest()
    if sha256 is not None and actual != sha256:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: sha256 {actual[:12]}..., expected {sha256[:12]}..."
        )
    try:
        with np.load(io.BytesIO(data)) as z:
            cfg = LmConfig.model_validate_json(bytes(z["config"]))
            weights = {k: np.asarray(z[k]) for k in ("emb", "wp", "w1", "b1", "w2", "b2", "prior")}
    except (OSError, ValueError, KeyError) as exc:
        raise CheckpointError(f"checkpoint {path} is not a language-model checkpoint: {exc}") from exc
    return TinyLm.from_weights(cfg, weights)


# --- golden answers ----------------------------------------------------------------------------


class GoldenCase(BaseModel):
    """One canary question with its known answer at temperature 0 (docs/twin.md 1.3)."""

    model_config = ConfigDict(extra="forbid")

    id: str
    api: Literal["chat", "completions"]
    messages: list[dict[str, str]] | None = None
    prompt: str | None = None
    max_tokens: int = Field(ge=1)
    expected: str

    @model_validator(mode="after")
    def _one_input(self) -> GoldenCase:
        if (self.api == "chat") != (self.messages is not None) or (self.api == "completions") != (
            self.prompt is not None
        ):
            raise ValueError("chat cases carry messages, completions cases a prompt")
        return self

    def prompt_text(self) -> str:
        return chat_prompt(self.messages) if self.messages is not None else str(self.prompt)


_GOLDEN_INPUTS: tuple[tuple[str, str, object, int], ...] = (
    ("chat-slo", "chat", [{"role": "user", "content": "What is a service level objective?"}], 48),
    ("chat-ttft", "chat", [{"role": "user", "content": "Define time to first token."}], 40),
    (
        "chat-system",
        "chat",
        [
            {"role": "system", "content": "You are a terse site reliability engineer."},
            {"role": "user", "content": "The GPU fell off the bus. What now?"},
        ],
        64,
    ),
    ("chat-short", "chat", [{"role": "user", "content": "Say hello."}], 16),
    ("chat-long", "chat", [{"role": "user", "content": "Explain preemption in vLLM. " * 4}], 96),
    ("completion-budget", "completions", "The error budget of a service is", 48),
    ("completion-canary", "completions", "A canary asks questions whose", 32),
    ("completion-newline", "completions", "Incident timeline:\n", 64),
)


def golden_cases(checkpoint: Path, sha256: str | None = None) -> list[GoldenCase]:
    """The canary questions with the answers this checkpoint gives at temperature 0."""
    model = load_checkpoint(checkpoint, sha256)
    return golden_cases_for(model)


def golden_cases_for(model: TinyLm) -> list[GoldenCase]:
    cases = []
    for case_id, api, inp, max_tokens in _GOLDEN_INPUTS:
        fields: dict[str, object] = {"messages": inp} if api == "chat" else {"prompt": inp}
        case = GoldenCase(id=case_id, api=api, max_tokens=max_tokens, expected="", **fields)  # type: ignore[arg-type]
        tokens, _ = generate(model, case.prompt_text(), max_tokens)
        cases.append(case.model_copy(update={"expected": decode(tokens)}))
    return cases


def write_golden(path: Path, cases: Sequence[GoldenCase]) -> None:
    write_atomic(path, "".join(c.model_dump_json(exclude_none=True) + "\n" for c in cases))


def read_golden(path: Path) -> list[GoldenCase]:
    from reliability.errors import InputError

    cases = []
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            cases.append(GoldenCase.model_validate_json(line))
        except ValueError as exc:
            raise InputError(f"{path}: line {n}", str(exc).splitlines()[0]) from exc
    return cases
