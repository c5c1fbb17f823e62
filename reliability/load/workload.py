"""What the built-in users send: prompt/output length distributions, prompt text, golden cases (pure).

Length distributions (pydantic, also the JSON the locustfile reads from its configuration):
- a plain integer, or `{"dist": "fixed", "value": n}`: always n;
- `{"dist": "uniform", "min": a, "max": b}`: integers a..b, each equally likely;
- `{"dist": "normal", "mean": m, "sigma": s, "min": a, "max": b}`: sigma in tokens;
- `{"dist": "lognormal", "mean": m, "sigma": s, "min": a, "max": b}`: `mean` is the distribution's
  arithmetic mean in tokens (before clipping) and `sigma` the standard deviation of its logarithm,
  so mu = ln(mean) - sigma^2 / 2; a long right tail, as real prompt and answer lengths have.
Draws are rounded and clipped to [min, max] (min defaults to 1, max to 1,000,000).

Prompt text of n tokens: n words drawn from a fixed list of common English words, each of which is
one token for the usual BPE tokenizers; the server's `usage.prompt_tokens` is what gets recorded
when it sends usage. Golden cases: `golden.jsonl` (docs/twin.md 1.3), one JSON object a line.
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from reliability.errors import InputError
from reliability.files import validation_error
from reliability.load.defaults import DEFAULT_OUTPUT_TOKENS, DEFAULT_PROMPT_TOKENS

MAX_TOKENS = 1_000_000
__all__ = ["DEFAULT_OUTPUT_TOKENS", "DEFAULT_PROMPT_TOKENS", "GoldenCase", "length_dist", "read_golden"]


class _Dist(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    min: int = Field(1, ge=0)
    max: int = Field(MAX_TOKENS, ge=0, le=MAX_TOKENS)

    @model_validator(mode="after")
    def _ordered(self) -> _Dist:
        if self.min > self.max:
            raise ValueError(f"min {self.min} > max {self.max}")
        return self

    def _clip(self, x: float) -> int:
        return min(self.max, max(self.min, round(x)))


class Fixed(_Dist):
    dist: Literal["fixed"] = "fixed"
    value: int = Field(ge=0, le=MAX_TOKENS)

    def sample(self, rng: random.Random) -> int:
        return self.value


class Uniform(_Dist):
    dist: Literal["uniform"]

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.min, self.max)


class Normal(_Dist):
    dist: Literal["normal"]
    mean: float = Field(gt=0, le=MAX_TOKENS)
    sigma: float = Field(ge=0, le=MAX_TOKENS)

    def sample(self, rng: random.Random) -> int:
        return self._clip(rng.gauss(self.mean, self.sigma))


class LogNormal(_Dist):
    dist: Literal["lognormal"]
    mean: float = Field(gt=0, le=MAX_TOKENS)
    sigma: float = Field(ge=0, le=5)

    def sample(self, rng: random.Random) -> int:
        mu = math.log(self.mean) - self.sigma**2 / 2
        return self._clip(rng.lognormvariate(mu, self.sigma))


LengthDist = Annotated[Fixed | Uniform | Normal | LogNormal, Field(discriminator="dist")]
_ADAPTER: TypeAdapter[Fixed | Uniform | Normal | LogNormal] = TypeAdapter(LengthDist)


def length_dist(spec: Any, where: str = "load.prompt_tokens") -> Fixed | Uniform | Normal | LogNormal:
    """A distribution from its spec (int, dict, JSON text or an instance); InputError naming `where`."""
    if isinstance(spec, Fixed | Uniform | Normal | LogNormal):
        return spec
    if isinstance(spec, str):
        try:
            spec = json.loads(spec)
        except ValueError:
            raise InputError(where, f"not JSON: {spec[:60]!r}") from None
    if isinstance(spec, int) and not isinstance(spec, bool):
        spec = {"dist": "fixed", "value": spec}
    try:
        return _ADAPTER.validate_python(spec)
    except ValidationError as exc:
        raise validation_error(where, exc) from exc


def dist_json(spec: Any, where: str) -> str:
    return length_dist(spec, where).model_dump_json()


# Common English words that BPE tokenizers (GPT-2/Llama families) keep as one token with a space.
_WORD_TEXT = (
    "the of and to in is was for on that with as by at from his her they have had not are were this "
    "which but be one all their said there when an who will more no if out so up what about into than "
    "them can only other new some time could these two may then do first any my now such like our over "
    "man me even most made after also did many before must through back years where much your way well "
    "down should because each just those people how too little state good very make world still own see "
    "men work long get here between both life being under never day same another know while last might "
    "us great old year off come since against go came right used take three"
)
WORDS = tuple(_WORD_TEXT.split(" "))


def prompt_text(rng: random.Random, tokens: int) -> str:
    return " ".join(rng.choices(WORDS, k=max(1, tokens)))


class GoldenCase(BaseModel):
    """One line of `golden.jsonl`: a prompt with its expected answer at temperature 0."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    api: Literal["chat", "completions"]
    messages: list[dict[str, Any]] | None = None
    prompt: str | None = None
    max_tokens: int = Field(gt=0)
    expected: str

    @model_validator(mode="after")
    def _prompt_for_api(self) -> GoldenCase:
        if self.api == "chat" and not self.messages:
            raise ValueError("api 'chat' needs messages")
        if self.api == "completions" and self.prompt is None:
            raise ValueError("api 'completions' needs prompt")
        return self

    @property
    def prompt_words(self) -> int:
        text = (
            self.prompt
            if self.api == "completions"
            else " ".join(str(m.get("content", "")) for m in self.messages or [])
        )
        return len(str(text).split())


def read_golden(path: Path | str) -> list[GoldenCase]:
    """Every case of a golden file; InputError naming file, line and field for anything wrong."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8")
    except OSError as exc:
        raise InputError(str(path), f"cannot read golden file: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise InputError(str(path), "not UTF-8 text") from None
    cases: list[GoldenCase] = []
    for n, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
        except ValueError:
            raise InputError(f"{path}:{n}", "not a JSON object") from None
        try:
            cases.append(GoldenCase.model_validate(data))
        except ValidationError as exc:
            raise validation_error(f"{path}:{n}", exc) from exc
    if not cases:
        raise InputError(str(path), "no golden cases in the file")
    return cases
