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
from typing import Any

import aiohttp
from prometheus_client import CollectorRegistry, Counter

from reliability.lab.llm.tinylm import GoldenCase

OUTCOMES = ("correct", "wrong", "error")


def golden_request(case: GoldenCase) -> dict[str, Any]:
    """The request body (without `model`) asking a golden case at temperature 0, not streamed."""
    body: dict[str, Any] = {"max_tokens": case.max_tokens, "temperature": 0, "stream": False}
    body.update({"messages": case.messages} if case.api == "chat" else {"prompt": case.prompt})
    return body


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
        body = {**golden_request(case), "model": self.model}
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
