"""The built-in demo pipeline: a small, offline question-answering pipeline over the demo corpus.

It is the default "connector", so the debug-mode workflow (correct a stage, "re-run from here",
compare the revised answer) can be tried without any external AI service. It has the same three
stages real pipelines report in their traces:

1. decomposition: a rule-based split of a compound question into sub-queries;
2. retrieval: TF-IDF cosine similarity over the corpus (title + text), top-k per sub-query;
3. generation: an *extractive* answer, i.e. the best-matching sentences of the retrieved
   documents, each with a citation marker, followed by the list of cited sources.

Everything is pure and deterministic (same input, same output, no randomness, no ORM, no network)
so that re-running from an uncorrected stage reproduces the original answer exactly and tests can
pin the behaviour. `ask()` builds an answer payload accepted by `feedback.ingest.validate_answer`
once the caller adds an `external_id`; `rerun()` rebuilds the stages after a corrected one.
"""

from __future__ import annotations

import copy
import hashlib
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS, TfidfVectorizer

from feedback.demo_data import demo_corpus

MODEL = "demo-pipeline"
MODEL_VERSION = "tfidf-1"

# What `compose` answers when no sentence of the documents shares a term with the question: an
# honest "nothing found" beats an answer stitched from irrelevant sentences.
NO_ANSWER = "The corpus has nothing on this question."

# The stage kinds of a demo trace, by position.
STAGE_KINDS: tuple[str, ...] = ("decomposition", "retrieval", "generation")

# Fragments shorter than this are not useful search queries on their own ("mushy", "Any tips"),
# so `decompose` merges them back into a neighbour.
MIN_SUBQUERY_WORDS = 3
# Extractive answers stay short: a few sentences, and no single document dominates.
MAX_ANSWER_SENTENCES = 4
MAX_SENTENCES_PER_DOCUMENT = 2
# A sentence must score at least this fraction of the best sentence's score: a sentence sharing
# one incidental word with the question ("hot day" for "hot pan") is noise next to a real match.
RELATIVE_SENTENCE_CUTOFF = 0.3

# Where a compound question splits: question marks, semicolons, exclamation marks, sentence
# ends (a full stop followed by a capital, so "1.5 cups" stays whole), "and" between clauses and
# comparisons. The group captures the separator so merged fragments keep their original wording.
_SPLIT = re.compile(
    r"(\?|;|!|\.\s+(?=[A-Z])|(?i:\s+and\s+)|(?i:\s+(?:vs\.?|versus|compared\s+(?:to|with))\s+))"
)
# Sentence boundaries inside document text: terminal punctuation followed by whitespace.
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
# Punctuation that is noise at either end of a sub-query.
_EDGE_PUNCTUATION = " \t\r\n.,;:!?"
# scikit-learn's default token pattern: words of two or more characters.
_TOKEN = re.compile(r"(?u)\b\w\w+\b")
# Inflection endings stripped by `_stem`, longest first, with their replacement.
_SUFFIXES: tuple[tuple[str, str], ...] = (
    ("sses", "ss"),
    ("ies", "y"),
    ("ing", ""),
    ("ed", ""),
    ("es", ""),
    ("s", ""),
)


def _stem(word: str) -> str:
    """A deliberately crude suffix stripper, so "burned" finds "burns" and "tyres" finds "tyre".

    Not linguistics, just enough to stop plain inflection from hiding the obvious document;
    the same function runs on documents and queries, so its mistakes cancel out."""
    if word.endswith(("ss", "us", "is")):
        return word
    for suffix, replacement in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + replacement
    return word


def _tokens(text: str) -> list[str]:
    # Stop words are removed before stemming: the English list holds unstemmed words.
    return [_stem(word) for word in _TOKEN.findall(text.lower()) if word not in ENGLISH_STOP_WORDS]


@dataclass(frozen=True, slots=True)
class _Index:
    vectorizer: Any  # sklearn ships no type stubs
    matrix: Any  # scipy.sparse CSR, one L2-normalised row per corpus document
    documents: tuple[dict[str, str], ...]


@cache
def _index() -> _Index:
    """Fit the vectorizer once, on first use, so importing this module stays cheap."""
    documents = tuple(demo_corpus())
    # Sublinear tf keeps a word repeated in one document from drowning the others; the title is
    # part of the text because it is the densest statement of what a document is about. English
    # stop words are dropped inside `_tokens` (before stemming) rather than by `stop_words=`.
    vectorizer = TfidfVectorizer(
        tokenizer=_tokens, lowercase=False, token_pattern=None, sublinear_tf=True
    )
    matrix = vectorizer.fit_transform([f"{doc['title']} {doc['text']}" for doc in documents])
    return _Index(vectorizer=vectorizer, matrix=matrix, documents=documents)


def _similarities(texts: Any, queries: list[str]) -> np.ndarray:
    """Cosine similarity of each text to each query, shape (len(texts), len(queries)); `texts`
    is a list of strings or an already vectorised matrix.

    TF-IDF rows are L2-normalised, so the dot product is the cosine."""
    vectorizer = _index().vectorizer
    matrix = vectorizer.transform(texts) if isinstance(texts, list) else texts
    return np.asarray((matrix @ vectorizer.transform(queries).T).toarray(), dtype=float)


def _word_count(text: str) -> int:
    return len(text.strip(_EDGE_PUNCTUATION).split())


def decompose(question: str) -> list[str]:
    """Split a compound question into sub-queries; a simple question stays whole.

    Returns an empty list only for a blank question."""
    if not question.strip():
        return []
    # re.split with a capturing group alternates fragment, separator, fragment, ...
    pieces = _SPLIT.split(question)
    merged: list[str] = [pieces[0]]
    for separator, fragment in zip(pieces[1::2], pieces[2::2], strict=True):
        if (
            _word_count(fragment) < MIN_SUBQUERY_WORDS
            or _word_count(merged[-1]) < MIN_SUBQUERY_WORDS
        ):
            merged[-1] = merged[-1] + separator + fragment
        else:
            merged.append(fragment)
    subqueries: list[str] = []
    seen: set[str] = set()
    for fragment in merged:
        cleaned = " ".join(fragment.split()).strip(_EDGE_PUNCTUATION)
        key = cleaned.casefold()
        if cleaned and key not in seen:
            seen.add(key)
            subqueries.append(cleaned)
    return subqueries or [question.strip()]


def retrieve(queries: list[str], *, k: int = 3) -> list[dict[str, Any]]:
    """The top `k` corpus documents for each query, merged by best score, best first.

    Returns copies of the corpus entries with a `score` (cosine similarity, 4 decimals); documents
    that share no term with any query are left out."""
    queries = [query for query in queries if query.strip()]
    if not queries or k <= 0:
        return []
    index = _index()
    scores = _similarities(index.matrix, queries)
    best: dict[int, float] = {}
    for column in range(scores.shape[1]):
        # A stable sort on the negated score breaks ties by corpus order, for determinism.
        order = np.argsort(-scores[:, column], kind="stable")[:k]
        for row in order:
            score = round(float(scores[row, column]), 4)
            if score > 0:
                best[int(row)] = max(best.get(int(row), 0.0), score)
    ranked = sorted(best.items(), key=lambda item: (-item[1], item[0]))
    return [{**index.documents[row], "score": score} for row, score in ranked]


def _sentences(text: str) -> list[str]:
    return [sentence.strip() for sentence in _SENTENCE_END.split(text) if sentence.strip()]


def _cite(sentence: str, number: int) -> str:
    """Put the marker before the sentence's final punctuation: "... gluey [1]." """
    body = sentence.rstrip(".!?")
    return f"{body} [{number}]{sentence[len(body) :]}"


def _source_line(number: int, document: dict[str, Any]) -> str:
    # Documents added by hand in debug mode may lack a title or url; say what is known.
    title = str(document.get("title") or document.get("id") or "Untitled document").strip()
    url = str(document.get("url") or "").strip()
    return f"- [{number}] {title} ({url})" if url else f"- [{number}] {title}"


def compose(question: str, subqueries: list[str], documents: list[dict[str, Any]]) -> str:
    """An extractive answer: the best-matching sentences of `documents`, cited as [n].

    n is the 1-based position of the sentence's document in `documents`. Documents only need a
    `text` (annotators can add one by hand in debug mode); `title` and `url` feed the sources."""
    queries = [query for query in [question, *subqueries] if query.strip()]
    candidates: list[tuple[int, int, str]] = []  # (document index, sentence index, sentence)
    for doc_index, document in enumerate(documents):
        text = document.get("text")
        if isinstance(text, str):
            candidates.extend(
                (doc_index, sent_index, sentence)
                for sent_index, sentence in enumerate(_sentences(text))
            )
    if not queries or not candidates:
        return NO_ANSWER
    # One query of everything asked: scored per sub-query instead, a filler fragment such as
    # "How do I fix it" pulls in any sentence with "fix", however unrelated to the question.
    sentences = [sentence for _, _, sentence in candidates]
    scores = _similarities(sentences, [" ".join(queries)])[:, 0]
    ranked = sorted(range(len(candidates)), key=lambda i: (-scores[i], i))
    floor = scores[ranked[0]] * RELATIVE_SENTENCE_CUTOFF
    chosen: list[int] = []
    per_document: dict[int, int] = {}
    for i in ranked:
        if scores[i] <= 0 or scores[i] < floor or len(chosen) == MAX_ANSWER_SENTENCES:
            break
        doc_index = candidates[i][0]
        if per_document.get(doc_index, 0) < MAX_SENTENCES_PER_DOCUMENT:
            per_document[doc_index] = per_document.get(doc_index, 0) + 1
            chosen.append(i)
    if not chosen:
        return NO_ANSWER
    # Candidates are in document order, then text order, so sorting indices restores reading
    # order: each document's sentences stay together and in their original sequence.
    chosen.sort()
    body = " ".join(_cite(candidates[i][2], candidates[i][0] + 1) for i in chosen)
    cited = sorted(per_document)
    sources = "\n".join(_source_line(doc_index + 1, documents[doc_index]) for doc_index in cited)
    return f"{body}\n\nSources:\n{sources}"


def _added_id(document: dict[str, Any]) -> str:
    """A stable id for a document an annotator added by hand, derived from its content, because
    a trace's documents need an id to be stored and cited."""
    content = f"{document.get('title') or ''}\n{document.get('text') or ''}"
    return "added-" + hashlib.sha256(content.encode()).hexdigest()[:12]


def _with_ids(documents: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        doc if isinstance(doc.get("id"), str) and doc["id"] else {**doc, "id": _added_id(doc)}
        for doc in documents
    ]


def _retrieval_stage(subqueries: list[str], documents: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "kind": "retrieval",
        "position": 1,
        "parent": 0,
        "input": {"queries": list(subqueries)},
        "output": {"documents": documents},
    }


def _generation_stage(documents: list[dict[str, Any]], text: str) -> dict[str, Any]:
    return {
        "kind": "generation",
        "position": 2,
        "parent": 1,
        "input": {"documents": [doc["id"] for doc in documents]},
        "output": {"text": text},
    }


def _payload(question: str, trace: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "prompt": [{"role": "user", "content": question}],
        "response": trace[-1]["output"]["text"],
        "model": MODEL,
        "model_version": MODEL_VERSION,
        "metadata": {"pipeline": "demo"},
        "trace": trace,
    }


def ask(question: str) -> dict[str, Any]:
    """Run the whole pipeline: an answer payload without `external_id` (the caller assigns it)."""
    if not question.strip():
        raise ValueError("The question must not be blank.")
    subqueries = decompose(question)
    documents = retrieve(subqueries)
    trace = [
        {
            "kind": "decomposition",
            "position": 0,
            "input": {"question": question},
            "output": {"subqueries": subqueries},
        },
        _retrieval_stage(subqueries, documents),
        _generation_stage(documents, compose(question, subqueries, documents)),
    ]
    return _payload(question, trace)


def _checked_trace(trace: Any, from_position: int) -> list[dict[str, Any]]:
    """A deep copy of `trace` after checking it has the demo's shape, so the caller's lists are
    never mutated and a malformed correction fails loudly instead of producing a half answer."""
    # bool is an int and 1.0 == 1: neither is a position a caller should get away with.
    if (
        isinstance(from_position, bool)
        or not isinstance(from_position, int)
        or from_position not in range(len(STAGE_KINDS))
    ):
        raise ValueError(
            f"Unknown stage position {from_position!r}: the demo pipeline has positions 0 "
            f"(decomposition), 1 (retrieval) and 2 (generation)."
        )
    expected = ", ".join(STAGE_KINDS)
    if not isinstance(trace, list) or len(trace) != len(STAGE_KINDS):
        raise ValueError(f"Not a demo pipeline trace: expected three stages ({expected}).")
    for position, (stage, kind) in enumerate(zip(trace, STAGE_KINDS, strict=True)):
        if (
            not isinstance(stage, dict)
            or stage.get("kind") != kind
            or stage.get("position", position) != position
        ):
            raise ValueError(
                f"Not a demo pipeline trace: stage {position} must be {kind!r} at position "
                f"{position} (stages: {expected})."
            )
        if position <= from_position and not isinstance(stage.get("output"), dict):
            raise ValueError(f"Not a demo pipeline trace: the {kind} stage has no output object.")
    checked: list[dict[str, Any]] = copy.deepcopy(trace)
    subqueries = checked[0]["output"].get("subqueries")
    if not isinstance(subqueries, list) or not all(isinstance(q, str) for q in subqueries):
        raise ValueError("Not a demo pipeline trace: subqueries must be a list of strings.")
    if from_position >= 1:
        documents = checked[1]["output"].get("documents")
        if not isinstance(documents, list) or not all(
            isinstance(doc, dict) and isinstance(doc.get("text"), str) for doc in documents
        ):
            raise ValueError(
                "Not a demo pipeline trace: retrieved documents must be objects with a text."
            )
    if from_position == 2 and not isinstance(checked[2]["output"].get("text"), str):
        raise ValueError("Not a demo pipeline trace: the generation output needs a text.")
    return checked


def rerun(question: str, trace: list[dict[str, Any]], *, from_position: int) -> dict[str, Any]:
    """Re-run the pipeline after the stage at `from_position` was corrected.

    Stages up to and including `from_position` are kept as given (the caller has already applied
    the annotator's corrections); every later stage is recomputed from them. Documents without an
    id (added by hand) get a stable content-derived one, since stored traces require ids.
    Raises ValueError for an unknown position or a trace that isn't the demo's shape."""
    stages = _checked_trace(trace, from_position)
    subqueries: list[str] = stages[0]["output"]["subqueries"]
    if from_position == 0:
        # Corrected sub-queries: search again with exactly those.
        documents = retrieve(subqueries)
        stages[1] = _retrieval_stage(subqueries, documents)
    else:
        # Corrected documents: used as given and in the given order, no re-retrieval, because
        # the annotator's ranking is the correction.
        documents = _with_ids(stages[1]["output"]["documents"])
        stages[1]["output"]["documents"] = documents
    if from_position < 2:
        stages[2] = _generation_stage(documents, compose(question, subqueries, documents))
    return _payload(question, stages)
