"""Turning runbook text and queries into search terms (pure functions)."""

from __future__ import annotations

import re

_CAMEL_LOWER_UPPER = re.compile(r"([a-z0-9])([A-Z])")
_CAMEL_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_WORD = re.compile(r"[a-z0-9]+")
_RAW_WORD = re.compile(r"[A-Za-z0-9]+")
_CAMEL = re.compile(r"[a-z0-9][A-Z]")

# "no", "not", "up" and "down" stay searchable: "up == 0", "node down".
_STOP = "a an and are as at be but by do does for from has have how i if in into is it its me my of on or"
STOPWORDS = frozenset(
    (_STOP + " our so that the their then there these this to was we were what when").split()
)


# Acronyms of the serving vocabulary. Alert names put some back to back ("VLLMKV" in
# VLLMKVCacheExhausted), which CamelCase alone cannot split; a run of capitals made only of these
# is split into them, so "kv cache" finds the alert.
ACRONYMS = ("VLLM", "LLM", "GPU", "KV", "API", "TTFT", "ITL", "TPOT", "DCGM", "ECC", "HTTP", "SLO")
_ACRONYMS_LONGEST_FIRST = sorted(ACRONYMS, key=len, reverse=True)

# What on-call engineers type and what runbooks write for the same thing. Documents and queries get
# the same expansion (after stemming), so either form finds the other: "TTFT" finds "time to first
# token", "preemption" finds "preempted", "cordon" finds "unschedulable".
SYNONYMS: dict[str, tuple[str, ...]] = {
    "ttft": ("time", "first", "token"),
    "itl": ("inter", "token", "latency"),
    "tpot": ("time", "per", "output", "token"),
    "preemption": ("preempt",),
    "preempt": ("preemption",),
    "cordon": ("unschedulable",),
    "unschedulable": ("cordon",),
    "notready": ("not", "ready"),
    "oom": ("out", "memory"),
}


def _split_acronyms(run: str) -> list[str] | None:
    """'VLLMKV' -> ['VLLM', 'KV'] if the run is made of known acronyms only, else None."""
    if not run:
        return []
    for acronym in _ACRONYMS_LONGEST_FIRST:
        if run.startswith(acronym):
            rest = _split_acronyms(run[len(acronym) :])
            if rest is not None:
                return [acronym, *rest]
    return None


def split_camel(word: str) -> str:
    """'InferenceAPIHighErrorRate' -> 'Inference API High Error Rate', 'VLLMKVCache' -> 'VLLM KV Cache'."""
    spaced = _CAMEL_LOWER_UPPER.sub(r"\1 \2", _CAMEL_ACRONYM.sub(r"\1 \2", word))
    return " ".join(
        " ".join(_split_acronyms(part) or [part]) if part.isupper() and len(part) > 3 else part
        for part in spaced.split(" ")
    )


def stem(token: str) -> str:
    """A deliberately tiny suffix stripper: enough that 'predictions' finds 'prediction'.

    Applied to documents and queries alike, so it only has to be consistent, not linguistic.
    """
    if token.isdigit() or len(token) <= 3:
        return token
    for suffix, repl, min_len in (("ies", "y", 5), ("sses", "ss", 5), ("ing", "", 6), ("ed", "", 5)):
        if token.endswith(suffix) and len(token) >= min_len:
            return token[: -len(suffix)] + repl
    if token.endswith("s") and not token.endswith(("ss", "us", "is")):
        return token[:-1]
    return token


# word as written -> its terms; runbooks repeat a small vocabulary, so this makes indexing ~4x faster.
_WORD_TERMS: dict[str, tuple[str, ...]] = {}


def _word_terms(word: str) -> tuple[str, ...]:
    terms = _WORD_TERMS.get(word)
    if terms is None:
        camel = len(word) >= 5 and _CAMEL.search(word) is not None
        parts = _WORD.findall((split_camel(word) if camel else word).lower())
        kept = [stem(w) for w in parts if w not in STOPWORDS and (len(w) > 1 or w.isdigit())]
        kept = [t for term in kept for t in (term, *SYNONYMS.get(term, ()))]
        terms = (*kept, word.lower()) if camel else tuple(kept)
        if len(_WORD_TERMS) < 200_000:  # bounded: a cache, not a leak
            _WORD_TERMS[word] = terms
    return terms


def tokenize(text: str) -> list[str]:
    """Search terms of free text: CamelCase split, lower-cased, stop words dropped, stemmed,
    synonyms added.

    A CamelCase word (an alert name) also yields itself whole, so the exact alert name is one
    rare, high-scoring term. Short mixed-case words ("NaN", "IDs") are not CamelCase.
    """
    return [t for word in _RAW_WORD.findall(text) for t in _word_terms(word)]


def alert_terms(alert: str) -> list[str]:
    """An alert name as terms: its words and the whole name."""
    return [*tokenize(split_camel(alert)), alert.lower()]
