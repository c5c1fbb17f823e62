"""Synthetic input series for promtool unit tests, and the alerts they should trigger.

The SLI queries are read for their selectors so that "bad" and "good" events land on series the
queries actually select; the expected outcome is computed from the same piecewise-constant
traffic profile (a small simulator), so each test checks the generated rules, not a constant.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from reliability.slo.model import SLO, EventsSLI

_SELECTOR = re.compile(r"([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(?:\{([^{}]*)\})?\s*\[\{\{\.window\}\}\]")
_MATCHER = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"')
_BAD = ("500", "503", "429", "wrong", "error", "failed")
_GOOD = ("200", "201", "correct", "ok", "success")

Matcher = tuple[str, str, str]


@dataclass(frozen=True)
class Segment:
    steps: int  # samples in this segment
    total_rate: float  # events/s
    error_ratio: float


@dataclass(frozen=True)
class SeriesPlan:
    """Where good and bad events go: (metric, labels) for bad-only and good-only counters."""

    bad: tuple[str, dict[str, str]]
    good: tuple[str, dict[str, str]]
    # latency SLIs: the bucket counts only the fast (good) events, the count all of them
    latency_le: str | None = None


def _matchers(body: str) -> list[Matcher]:
    return [(n, op, v) for n, op, v in _MATCHER.findall(body)]


def _ok(value: str, op: str, pattern: str) -> bool:
    if op == "=":
        return value == pattern
    if op == "!=":
        return value != pattern
    hit = re.fullmatch(pattern, value) is not None
    return hit if op == "=~" else not hit


def _assign(required: list[Matcher], violate: Matcher | None = None) -> dict[str, str] | None:
    labels: dict[str, str] = {}
    names = {n for n, _, _ in required} | ({violate[0]} if violate else set())
    for name in sorted(names):
        ms = [(op, v) for n, op, v in required if n == name]
        options = [v for op, v in ms if op == "="] + list(_GOOD + _BAD if violate else _BAD + _GOOD)
        for cand in options:
            if all(_ok(cand, op, v) for op, v in ms) and (
                violate is None or violate[0] != name or not _ok(cand, violate[1], violate[2])
            ):
                if cand:
                    labels[name] = cand
                break
        else:
            return None
    return labels


def plan_for(slo: SLO) -> SeriesPlan | None:
    """None when the SLI's queries are too complex to synthesise series for (raw SLIs, joins)."""
    if slo.latency is not None:
        lat = slo.latency
        labels = dict((_matchers(lat.selector) and _assign(_matchers(lat.selector))) or {})
        return SeriesPlan(
            bad=(f"{lat.metric}_count", labels), good=(f"{lat.metric}_bucket", labels), latency_le=lat.le
        )
    if not isinstance(slo.sli, EventsSLI):
        return None
    err = _SELECTOR.findall(slo.sli.error_query)
    tot = _SELECTOR.findall(slo.sli.total_query)
    if len(err) != 1 or len(tot) != 1 or err[0][0] != tot[0][0]:
        return None
    metric = tot[0][0]
    err_m, tot_m = _matchers(err[0][1]), _matchers(tot[0][1])
    bad = _assign(err_m + tot_m)
    extra = [m for m in err_m if m not in tot_m]
    good = _assign(tot_m, extra[0]) if extra else None
    if bad is None or good is None:
        return None
    return SeriesPlan(bad=(metric, bad), good=(metric, good))


def counter_values(segments: list[Segment], interval_s: int, part: str) -> str:
    """promtool expanding notation of a counter; part is 'bad', 'good' or 'all'."""
    out: list[str] = []
    value = 0.0
    first = True
    for seg in segments:
        share = {"bad": seg.error_ratio, "good": 1 - seg.error_ratio, "all": 1.0}[part]
        inc = seg.total_rate * share * interval_s
        if first:
            out.append(f"{_num(value)}+{_num(inc)}x{seg.steps - 1}")
            value += inc * (seg.steps - 1)
            first = False
        else:
            value += inc
            out.append(f"{_num(value)}+{_num(inc)}x{seg.steps - 1}")
            value += inc * (seg.steps - 1)
    return " ".join(out)


def _num(x: float) -> str:
    r = round(x, 9)
    return repr(int(r)) if r == int(r) else repr(r)


def window_stats(
    segments: list[Segment], interval_s: int, at_step: int, window_s: int
) -> tuple[float, float]:
    """(error ratio, total rate/s) over the samples a range selector [window] sees at `at_step`."""
    errs, tots = [0.0], [0.0]
    for seg in segments:
        for _ in range(seg.steps):
            errs.append(errs[-1] + seg.total_rate * seg.error_ratio * interval_s)
            tots.append(tots[-1] + seg.total_rate * interval_s)
    # sample k is at k*interval (index k in the cumulative lists is the value after k increments)
    first = max(0, at_step - window_s // interval_s)
    d_err = errs[at_step] - errs[first]
    d_tot = tots[at_step] - tots[first]
    span = (at_step - first) * interval_s
    if d_tot <= 0 or span <= 0:
        return float("nan"), 0.0
    return d_err / d_tot, d_tot / span
