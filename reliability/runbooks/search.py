"""BM25F search over runbooks, with typo tolerance for alert names and title words.

Hand-written rather than rank_bm25: we need per-field boosts (BM25F) and the "why it
matched" explanation, and the CLI must start without numpy. The index precomputes each
(term, runbook) contribution, so a query is a few dictionary look-ups.
"""

from __future__ import annotations

import difflib
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from reliability.runbooks.text import alert_terms, tokenize

if TYPE_CHECKING:
    from reliability.runbooks.models import Runbook

# Alert names and titles are written to be searched for; the body mentions everything.
FIELD_BOOSTS: dict[str, float] = {"alerts": 4.0, "title": 3.0, "tags": 2.0, "body": 1.0}
FIELD_B: dict[str, float] = {"alerts": 0.3, "title": 0.5, "tags": 0.5, "body": 0.75}
K1 = 1.2
# difflib ratio: one transposition in a 4-letter word is 0.75, one typo in 8 letters ~0.88.
FUZZY_CUTOFF = 0.75
# Results scoring under this share of the best one matched only a common body word: noise.
MIN_RELATIVE_SCORE = 0.1


@dataclass(frozen=True)
class SearchResult:
    id: str
    title: str
    score: float
    matched: dict[str, list[str]]  # field -> query terms found there
    corrections: dict[str, str]  # misspelt query term -> the term searched instead
    first_mitigation_step: str | None
    path: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "title": self.title,
            "score": round(self.score, 4),
            "matched": self.matched,
            "corrections": self.corrections,
            "first_mitigation_step": self.first_mitigation_step,
            "path": self.path,
        }


class _Doc(NamedTuple):
    """What a result shows of a runbook: kept small so the cached index loads fast."""

    id: str
    title: str
    first_mitigation_step: str | None
    path: str


FIELD_NAMES = tuple(FIELD_BOOSTS)


class _Posting(NamedTuple):
    doc: int
    weight: float  # BM25F saturated term weight, before idf
    fields: int  # bit i set = found in FIELD_NAMES[i]


def _fields(rb: Runbook) -> dict[str, list[str]]:
    return {
        "alerts": [t for a in rb.meta.alerts for t in alert_terms(a)],
        "title": tokenize(rb.meta.title),
        "tags": [t for tag in rb.meta.tags for t in tokenize(tag.replace("-", " "))],
        "body": tokenize(rb.body),
    }


@dataclass
class SearchIndex:
    docs: list[_Doc]
    postings: dict[str, list[_Posting]] = field(default_factory=dict)
    idf: dict[str, float] = field(default_factory=dict)
    fuzzy_vocab: list[str] = field(default_factory=list)

    @classmethod
    def build(cls, runbooks: Iterable[Runbook]) -> SearchIndex:
        docs = list(runbooks)
        per_doc = [_fields(rb) for rb in docs]
        n = max(len(docs), 1)
        avg_len = {f: max(sum(len(d[f]) for d in per_doc) / n, 1.0) for f in FIELD_NAMES}
        postings: dict[str, list[_Posting]] = {}
        fuzzy: set[str] = set()
        for i, fields in enumerate(per_doc):
            weighted: dict[str, float] = {}
            where: dict[str, int] = {}
            for bit, name in enumerate(FIELD_NAMES):
                terms = fields[name]
                norm = 1 - FIELD_B[name] + FIELD_B[name] * len(terms) / avg_len[name]
                scale = FIELD_BOOSTS[name] / norm
                for term, tf in Counter(terms).items():
                    weighted[term] = weighted.get(term, 0.0) + scale * tf
                    where[term] = where.get(term, 0) | (1 << bit)
            for term, w in weighted.items():
                postings.setdefault(term, []).append(_Posting(i, w / (K1 + w), where[term]))
            fuzzy.update(fields["alerts"])
            fuzzy.update(fields["title"])
        idf = {t: math.log(1 + (len(docs) - len(p) + 0.5) / (len(p) + 0.5)) for t, p in postings.items()}
        summary = [_Doc(rb.id, rb.title, rb.first_mitigation_step, str(rb.path)) for rb in docs]
        return cls(summary, postings, idf, sorted(fuzzy))

    def _expand(self, term: str) -> tuple[str, float] | None:
        """The indexed term to search for `term`, and how much to trust it."""
        if term in self.postings:
            return term, 1.0
        if len(term) < 4 or term.isdigit():
            return None
        close = difflib.get_close_matches(term, self.fuzzy_vocab, n=1, cutoff=FUZZY_CUTOFF)
        if not close:
            return None
        return close[0], difflib.SequenceMatcher(None, term, close[0]).ratio()

    def search(self, query: str, limit: int = 5) -> list[SearchResult]:
        scores: dict[int, float] = {}
        matched: dict[int, dict[str, list[str]]] = {}
        corrections: dict[str, str] = {}
        for qterm in dict.fromkeys(tokenize(query)):
            found = self._expand(qterm)
            if found is None:
                continue
            term, trust = found
            if term != qterm:
                corrections[qterm] = term
            idf = self.idf[term]
            for p in self.postings[term]:
                scores[p.doc] = scores.get(p.doc, 0.0) + trust * idf * p.weight
                per_field = matched.setdefault(p.doc, {})
                for bit, f in enumerate(FIELD_NAMES):
                    if p.fields & (1 << bit) and term not in per_field.setdefault(f, []):
                        per_field[f].append(term)
        ranked = sorted(scores.items(), key=lambda kv: (-kv[1], self.docs[kv[0]].id))[:limit]
        if ranked:
            floor = ranked[0][1] * MIN_RELATIVE_SCORE
            ranked = [(doc, score) for doc, score in ranked if score >= floor]
        results = []
        for doc, score in ranked:
            rb = self.docs[doc]
            used = {t for terms in matched[doc].values() for t in terms}
            results.append(
                SearchResult(
                    id=rb.id,
                    title=rb.title,
                    score=score,
                    matched={f: matched[doc][f] for f in FIELD_BOOSTS if f in matched[doc]},
                    corrections={q: t for q, t in corrections.items() if t in used},
                    first_mitigation_step=rb.first_mitigation_step,
                    path=rb.path,
                )
            )
        return results
