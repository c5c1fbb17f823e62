"""The known-answer canary: a synthetic prober that sends golden prompts to each region's gateway
and counts whether the answer was right (`llm_canary_requests_total{region, outcome}`).

`outcome` is `correct`, `wrong` (answered, but not the known answer) or `error` (no answer). The
quality SLI is wrong / (correct + wrong): a region the prober cannot reach is an availability
problem, and counting it as "wrong" made the quality SLO page during a partition.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter

OUTCOMES = ("correct", "wrong", "error")


@dataclass(frozen=True)
class GoldenCase:
    id: str
    api: str  # "chat" | "completions"
    request: dict[str, Any]  # messages or prompt, and max_tokens
    expected: str


def read_golden(path: Path) -> list[GoldenCase]:
    cases = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        api = str(rec.get("api", "chat"))
        body = {"max_tokens": int(rec["max_tokens"])}
        if api == "chat":
            body["messages"] = rec["messages"]
        else:
            body["prompt"] = rec["prompt"]
        cases.append(GoldenCase(str(rec["id"]), api, body, str(rec["expected"])))
    return cases


def answer_text(api: str, body: dict[str, Any]) -> str | None:
    """The generated text of a non-streaming OpenAI answer, None when it has none."""
    try:
        choice = body["choices"][0]
        return str(choice["message"]["content"] if api == "chat" else choice["text"])
    except (KeyError, IndexError, TypeError):
        return None


class Prober:
    def __init__(
        self, cases: Sequence[GoldenCase], model: str, rate_per_region: float, timeout_s: float = 5.0
    ) -> None:
        if not cases:
            raise ValueError("the prober needs at least one golden case")
        self.cases = list(cases)
        self.model = model
        self.interval = 1.0 / rate_per_region
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "llm_canary_requests",
            "Known prompts sent to each region, by outcome (correct, wrong answer, error).",
            ["region", "outcome"],
            registry=self.registry,
        )
        self.last: dict[str, tuple[float, str]] = {}  # region -> (when, outcome) of the last probe

    async def probe(self, session: aiohttp.ClientSession, base_url: str, case: GoldenCase) -> str:
        path = "/v1/chat/completions" if case.api == "chat" else "/v1/completions"
        body = {**case.request, "model": self.model, "temperature": 0, "stream": False}
        try:
            async with session.post(base_url + path, json=body, timeout=self.timeout) as r:
                if r.status != 200:
                    return "error"
                text = answer_text(case.api, json.loads(await r.read()))
        except (TimeoutError, aiohttp.ClientError, ValueError):
            return "error"
        if text is None:
            return "error"
        return "correct" if text == case.expected else "wrong"

    async def run_region(self, session: aiohttp.ClientSession, region: str, base_url: str) -> None:
        for outcome in OUTCOMES:  # every series exists from the start (rate() needs a first sample)
            self.requests.labels(region=region, outcome=outcome)
        for case in itertools.cycle(self.cases):
            started = time.monotonic()
            outcome = await self.probe(session, base_url, case)
            self.requests.labels(region=region, outcome=outcome).inc()
            self.last[region] = (time.time(), outcome)
            await asyncio.sleep(max(0.0, self.interval - (time.monotonic() - started)))
