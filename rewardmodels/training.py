"""Reward models learned from users' feedback: P[Love] and Bradley-Terry preferences.

Pure computation over plain data: no Django, no ORM, so every function can be tested on synthetic
data without a database. A service loads rows, calls these functions and stores what they return.

* **P[Love]** (RLUF): does an exposure (an answer shown to a viewer) get a Love reaction within a
  window? A logistic model trained out of core with `SGDClassifier.partial_fit` over batches, so
  memory is bounded by one batch however many rows there are.
* **Preference**: Bradley-Terry, i.e. logistic regression on the feature difference of a chosen and
  a rejected response to the same prompt.

Both share `featurize`: stateless hashed text features (nothing to fit or store besides the
`FeatureConfig`) plus a few dense "format" features (emojis, sign-offs, flattery...) that make
reward hacking visible in the heaviest coefficients.
"""

from __future__ import annotations

import hashlib
import heapq
import io
import json
import math
import re
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import chain
from pathlib import Path
from typing import Any, TypeAlias

import numpy as np
import scipy.sparse as sp
import skops.io as sio
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression, SGDClassifier
from sklearn.metrics import average_precision_score, roc_auc_score
from sklearn.preprocessing import normalize

__all__ = [
    "ALPHA_GRID",
    "BASELINE_NAMES",
    "FEATURE_GROUPS",
    "FORMAT_FEATURE_NAMES",
    "STRENGTH_GRID",
    "BaselineRows",
    "Batch",
    "FeatureConfig",
    "FeatureNamer",
    "Sample",
    "Selection",
    "ViewerAdjustments",
    "ViewerStats",
    "baseline_predictions",
    "compare_to_baselines",
    "dumps_artifact",
    "evaluate_p_love",
    "feature_count",
    "featurize",
    "fit_format_model",
    "fit_p_love",
    "fit_preference",
    "fit_sample",
    "fit_viewer_adjustments",
    "is_personal",
    "load_artifact",
    "loads_artifact",
    "longer_wins_accuracy",
    "pairwise_accuracy",
    "per_viewer_auc",
    "personal_artifact",
    "personalise",
    "predict_p_love",
    "predict_p_love_for",
    "preference_rewards",
    "save_artifact",
    "select_p_love",
    "suggested_epochs",
    "temporal_split_index",
    "top_features",
    "viewer_key",
    "viewer_keys",
    "viewer_weight",
]

# A P[Love] classifier: SGD over every column, or an exact fit of a few (`fit_format_model`).
PLoveModel: TypeAlias = SGDClassifier | LogisticRegression

# --- Features ---------------------------------------------------------------------------------

FORMAT_FEATURE_NAMES: tuple[str, ...] = (
    "log_length",
    "newlines",
    "bullets",
    "emojis",
    "exclamations",
    "questions",
    "urls",
    "code_blocks",
    "sign_off",
    "flattery",
)

# Rows are featurized (and predicted) in chunks of this many so that even a caller that passes a
# million rows at once never holds more than one chunk's sparse matrix.
CHUNK_ROWS = 10_000

# Emoji and dingbat code points. They are tokens of their own in the word views (so "w:😊" can
# show up among the heaviest coefficients) and are counted by the "emojis" format feature.
_EMOJI_CLASS = "[\U0001f000-\U0001faff\u2600-\u27bf\u2b00-\u2bff]"
# sklearn's default word pattern (2+ word characters) plus single emoji characters.
TOKEN_PATTERN = r"(?u)\b\w\w+\b|" + _EMOJI_CLASS

_EMOJI_RE = re.compile(_EMOJI_CLASS)
_BULLET_RE = re.compile(r"^[ \t]*(?:[-*+•]|\d{1,3}[.)])[ \t]+\S", re.MULTILINE)
_BULLET_STARTS = frozenset("-*+•0123456789 \t")
# Phrases are matched in lower-cased text, without re.IGNORECASE and without a leading \b: both
# keep the regex engine from its fast scan for the first characters and made these searches 3-4x
# slower. `_has_phrase` checks the word boundary at the start of a match instead.
_SIGN_OFF_RE = re.compile(
    r"(?:hope (?:this|that|it) helps|let me know if|feel free to (?:ask|reach out|let me know)"
    r"|happy (?:to help|coding|learning|writing|cooking)|good luck|best of luck|cheers"
    r"|best regards|kind regards|hope you (?:enjoy|find|like)|glad (?:i|to) (?:could )?help"
    r"|you['\u2019]ve got this)\b"
)
_FLATTERY_RE = re.compile(
    r"(?:(?:great|excellent|good|fantastic|wonderful|awesome|brilliant|amazing|interesting"
    r"|insightful|thoughtful) question"
    r"|what an? (?:great|excellent|fantastic|wonderful|interesting|insightful) \w+"
    r"|you['\u2019]re (?:absolutely|totally|completely) right|you are (?:absolutely|totally) right"
    r"|i love (?:this|that|your) (?:question|idea)|thanks? (?:you )?for (?:asking|such a))\b"
)
# Sign-offs close an answer and flattery opens it; looking only at the ends keeps a quoted
# "good luck" in the middle of a story from counting.
_EDGE_CHARS = 200
_LOG_LENGTH_SCALE = math.log1p(10_000)  # 10,000 characters or more -> 1.0


def _has_phrase(pattern: re.Pattern[str], text: str) -> bool:
    """Whether `pattern` matches `text` (lower-cased) starting at a word boundary."""
    return any(
        match.start() == 0 or not text[match.start() - 1].isalnum()
        for match in pattern.finditer(text)
    )


def _format_row(text: str) -> tuple[float, ...]:
    """The dense format features of one response, each clipped to [0, 1].

    Why these: optimising P[Love] alone rewards phrases that attract reactions (RLUF "reward
    hacking"); giving them a named column each makes that visible in `top_features`. Counting uses
    str methods where possible: this runs once per row, 1,000,000 times per epoch.
    """
    lower = text.lower()
    bullets = len(_BULLET_RE.findall(text)) if "\n" in text or text[:1] in _BULLET_STARTS else 0
    emojis = 0 if text.isascii() else len(_EMOJI_RE.findall(text))
    urls = (
        lower.count("http://")
        + lower.count("https://")
        + lower.count("www.")
        - lower.count("//www.")
    )
    return (
        min(1.0, math.log1p(len(text)) / _LOG_LENGTH_SCALE),
        min(1.0, text.count("\n") / 20),
        min(1.0, bullets / 10),
        min(1.0, emojis / 5),
        min(1.0, text.count("!") / 5),
        min(1.0, text.count("?") / 5),
        min(1.0, urls / 3),
        min(1.0, (text.count("```") // 2) / 2),
        1.0 if _has_phrase(_SIGN_OFF_RE, lower[-_EDGE_CHARS:]) else 0.0,
        1.0 if _has_phrase(_FLATTERY_RE, lower[:_EDGE_CHARS]) else 0.0,
    )


def format_features(responses: Sequence[str]) -> np.ndarray:
    """Dense (rows, len(FORMAT_FEATURE_NAMES)) float32 matrix of format features."""
    out = np.zeros((len(responses), len(FORMAT_FEATURE_NAMES)), dtype=np.float32)
    for row, text in enumerate(responses):
        out[row] = _format_row(text)
    return out


@dataclass(frozen=True, slots=True)
class FeatureConfig:
    """How texts become columns. Stored with a model: features are hashed, so this is all that is
    needed to featurize new rows the same way."""

    n_features: int = 2**18  # hashed space per text view
    word_ngrams: tuple[int, int] = (1, 2)
    char_ngrams: tuple[int, int] = (3, 5)
    use_char: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.n_features, bool) or not isinstance(self.n_features, int):
            raise ValueError(f"n_features must be an integer, got {self.n_features!r}")
        if not 2**4 <= self.n_features <= 2**24:
            raise ValueError(f"n_features must be between 2**4 and 2**24, got {self.n_features}")
        _check_range("word_ngrams", self.word_ngrams, upper=4)
        _check_range("char_ngrams", self.char_ngrams, upper=8)
        if not isinstance(self.use_char, bool):
            raise ValueError(f"use_char must be a boolean, got {self.use_char!r}")

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples become lists)."""
        return {
            "n_features": self.n_features,
            "word_ngrams": list(self.word_ngrams),
            "char_ngrams": list(self.char_ngrams),
            "use_char": self.use_char,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> FeatureConfig:
        """Inverse of `as_dict`; missing keys take the defaults, unknown keys are an error (a
        config written by a newer version must not be silently read as something else)."""
        if not isinstance(data, Mapping):
            raise ValueError(f"a feature config must be a mapping, got {type(data).__name__}")
        known = {"n_features", "word_ngrams", "char_ngrams", "use_char"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown feature config keys: {', '.join(map(str, unknown))}")
        kwargs: dict[str, Any] = dict(data)
        for key in ("word_ngrams", "char_ngrams"):
            if key in kwargs:
                value = kwargs[key]
                if isinstance(value, str | bytes) or not isinstance(value, Sequence):
                    raise ValueError(f"{key} must be a pair of integers, got {value!r}")
                kwargs[key] = tuple(value)
        return cls(**kwargs)


def _check_range(name: str, value: Any, *, upper: int) -> None:
    if (
        not isinstance(value, tuple)
        or len(value) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        or not 1 <= value[0] <= value[1] <= upper
    ):
        raise ValueError(f"{name} must be a pair (low, high) with 1 <= low <= high <= {upper}")


def feature_count(config: FeatureConfig) -> int:
    """Total columns: one hashed block per text view plus the dense format features."""
    return _views_count(config) * config.n_features + len(FORMAT_FEATURE_NAMES)


def _views_count(config: FeatureConfig) -> int:
    return 3 if config.use_char else 2


@dataclass(frozen=True, slots=True)
class _Views:
    """The column layout: [response words | response chars (if used) | prompt words | format]."""

    words: HashingVectorizer
    chars: HashingVectorizer | None  # applied to single lower-cased words, see `_char_block`
    prompts: HashingVectorizer
    words_offset: int
    chars_offset: int | None
    prompts_offset: int
    format_offset: int


@lru_cache(maxsize=8)
def _views(config: FeatureConfig) -> _Views:
    """Vectorizers for a config; cached because they are stateless and the config is hashable."""
    common: dict[str, Any] = {
        "n_features": config.n_features,
        "alternate_sign": False,
        "dtype": np.float32,
    }
    words = HashingVectorizer(
        analyzer="word",
        ngram_range=config.word_ngrams,
        token_pattern=TOKEN_PATTERN,
        norm="l2",
        **common,
    )
    prompts = HashingVectorizer(
        analyzer="word", ngram_range=(1, 1), token_pattern=TOKEN_PATTERN, norm="l2", **common
    )
    chars = (
        HashingVectorizer(
            analyzer="char_wb", ngram_range=config.char_ngrams, lowercase=False, norm=None, **common
        )
        if config.use_char
        else None
    )
    n = config.n_features
    if config.use_char:
        return _Views(words, chars, prompts, 0, n, 2 * n, 3 * n)
    return _Views(words, None, prompts, 0, None, n, 2 * n)


def _empty(rows: int, columns: int) -> sp.csr_matrix:
    return sp.csr_matrix((rows, columns), dtype=np.float32)


def _hash_texts(vectorizer: HashingVectorizer, texts: Sequence[str]) -> sp.csr_matrix:
    if not texts:
        return _empty(0, vectorizer.n_features)
    return sp.csr_matrix(vectorizer.transform(texts), dtype=np.float32)


def _char_block(chars: HashingVectorizer, responses: Sequence[str]) -> sp.csr_matrix:
    """Hashed char_wb n-grams of the responses, l2-normalised per row.

    Equal to `HashingVectorizer(analyzer="char_wb", norm="l2").transform(responses)`, but char_wb
    n-grams never cross a whitespace, so a document's n-grams are the sum of its words' n-grams:
    hash each distinct word of the batch once (W: words x columns) and multiply by the
    document-word count matrix (D). Natural text repeats words, so this tokenizes several times
    fewer strings in Python than n-gramming every document (measured ~3.5x faster).
    """
    vocabulary: dict[str, int] = {}
    setdefault = vocabulary.setdefault
    ids: list[int] = []
    indptr = [0]
    for text in responses:
        ids.extend([setdefault(word, len(vocabulary)) for word in text.lower().split()])
        indptr.append(len(ids))
    if not vocabulary:
        return _empty(len(responses), chars.n_features)
    # Word ids in the words' own (sorted) order rather than the batch's: a row's words, and so
    # the order its product sums them in and stores its columns, are then the same whatever it
    # is batched with (its dot products sum in the same order: equal scores alone or batched),
    # without sorting the product's columns afterwards (that cost a tenth of featurizing).
    words = list(vocabulary)
    order = sorted(range(len(words)), key=words.__getitem__)
    rank = np.empty(len(words), dtype=np.intp)
    rank[order] = np.arange(len(words))
    counts = sp.csr_matrix(
        (np.ones(len(ids), dtype=np.float64), rank[np.asarray(ids, dtype=np.intp)], indptr),
        shape=(len(responses), len(words)),
    )
    counts.sum_duplicates()
    per_word = sp.csr_matrix(chars.transform([words[i] for i in order]), dtype=np.float64)
    return sp.csr_matrix(normalize(counts @ per_word, norm="l2", copy=False), dtype=np.float32)


def featurize(
    prompts: Sequence[str], responses: Sequence[str], config: FeatureConfig
) -> sp.csr_matrix:
    """(rows, feature_count(config)) float32 CSR matrix.

    Columns: hashed response word n-grams | hashed response char_wb n-grams (if `use_char`) |
    hashed prompt words | dense format features (the last len(FORMAT_FEATURE_NAMES) columns).
    Each text view lives in its own block of `n_features` columns, so a prompt word can never
    collide with a response word. Each hashed block is l2-normalised per row, so long answers do
    not get large feature values just for being long (length has its own format feature).
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    # Rows of one answer are the same features: P[Love] rows are exposures, and an answer is
    # shown to many viewers (a batch of 10,000 exposures of 20,000 answers held ~7,600 distinct
    # ones). Each distinct (prompt, response) is featurized once and its row copied to every
    # exposure of it; a row doesn't depend on what it is batched with, so nothing else changes.
    distinct: dict[tuple[str, str], int] = {}
    position = distinct.setdefault
    rows = np.fromiter(
        (position(pair, len(distinct)) for pair in zip(prompts, responses, strict=True)),
        dtype=np.intp,
        count=len(responses),
    )
    if len(distinct) == len(responses):
        return _featurize_distinct(prompts, responses, config)
    features = _featurize_distinct(
        [prompt for prompt, _ in distinct], [response for _, response in distinct], config
    )
    return sp.csr_matrix(features[rows])


def _featurize_distinct(
    prompts: Sequence[str], responses: Sequence[str], config: FeatureConfig
) -> sp.csr_matrix:
    views = _views(config)
    blocks = [_hash_texts(views.words, responses)]
    if views.chars is not None:
        blocks.append(_char_block(views.chars, responses))
    blocks.append(_hash_texts(views.prompts, prompts))
    blocks.append(sp.csr_matrix(format_features(responses)))
    return sp.csr_matrix(sp.hstack(blocks, format="csr", dtype=np.float32))


def _chunks(count: int) -> Iterator[slice]:
    for start in range(0, count, CHUNK_ROWS):
        yield slice(start, min(start + CHUNK_ROWS, count))


def _score_rows(
    prompts: Sequence[str],
    responses: Sequence[str],
    config: FeatureConfig,
    score: Callable[[sp.csr_matrix], np.ndarray],
) -> np.ndarray:
    """`score(features)` for every row, featurizing in chunks to bound memory."""
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    out = np.empty(len(responses), dtype=np.float64)
    for part in _chunks(len(responses)):
        out[part] = score(featurize(prompts[part], responses[part], config))
    return out


# --- Naming hashed columns --------------------------------------------------------------------

_MAX_NAMES_PER_COLUMN = 4


class FeatureNamer:
    """Remembers which readable token landed in which hashed column, for a bounded number of
    tokens, so the heaviest coefficients can be named ("w:😊", "w:hope this", 'c:"sunf"', ...).

    Hashing keeps no vocabulary (that is what makes it stateless and cheap), so names have to be
    collected on the side. The budget `max_tokens` is split evenly between the text views; within
    a batch the most frequent new tokens are kept first, and once a view's budget is spent it is no
    longer tokenized, so observing costs nothing after the first few batches. Heavy coefficients
    belong to frequent tokens, which are seen early.
    """

    def __init__(self, config: FeatureConfig, *, max_tokens: int = 200_000) -> None:
        if max_tokens < 0:
            raise ValueError("max_tokens must be >= 0")
        self.config = config
        self.max_tokens = max_tokens
        self._views = _views(config)
        views = _views_count(config)
        self._budget = max_tokens // views
        # Per view: the tokens already placed (bounded by the budget).
        self._seen: list[set[str]] = [set() for _ in range(views)]
        self._names: dict[int, list[str]] = {}
        self._hasher = FeatureHasher(
            n_features=config.n_features, input_type="string", alternate_sign=False
        )

    def __len__(self) -> int:
        """Number of tokens remembered."""
        return sum(len(seen) for seen in self._seen)

    @property
    def full(self) -> bool:
        """Every view's budget is spent: `observe` no longer does anything."""
        return all(len(seen) >= self._budget for seen in self._seen)

    def observe(self, prompts: Sequence[str], responses: Sequence[str]) -> None:
        """Remember the columns of these rows' tokens, tokenized exactly as `featurize` does.
        Each distinct text is read once (frequency counts texts, not exposures of them)."""
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        prompts, responses = list(dict.fromkeys(prompts)), list(dict.fromkeys(responses))
        views = self._views
        slot = 0
        if self._room(slot):
            analyze = views.words.build_analyzer()
            tokens = Counter(chain.from_iterable(analyze(text) for text in responses))
            self._add(slot, views.words_offset, tokens, "w:{}")
        if views.chars is not None and views.chars_offset is not None:
            slot += 1
            if self._room(slot):
                analyze = views.chars.build_analyzer()
                words = Counter(chain.from_iterable(text.lower().split() for text in responses))
                grams: Counter[str] = Counter()
                for word, count in words.items():
                    for gram in analyze(word):
                        grams[gram] += count
                self._add(slot, views.chars_offset, grams, 'c:"{}"')
        slot += 1
        if self._room(slot):
            analyze = views.prompts.build_analyzer()
            tokens = Counter(chain.from_iterable(analyze(text) for text in prompts))
            self._add(slot, views.prompts_offset, tokens, "p:{}")

    def _room(self, slot: int) -> int:
        return max(0, self._budget - len(self._seen[slot]))

    def _add(self, slot: int, offset: int, counts: Counter[str], label: str) -> None:
        seen = self._seen[slot]
        new = [token for token in counts if token not in seen]
        room = self._room(slot)
        if len(new) > room:
            new = heapq.nlargest(room, new, key=counts.__getitem__)
        if not new:
            return
        # One token per row: the row's only stored index is the token's column.
        columns = self._hasher.transform([[token] for token in new]).indices
        for token, column in zip(new, columns.tolist(), strict=True):
            seen.add(token)
            names = self._names.setdefault(offset + column, [])
            if len(names) < _MAX_NAMES_PER_COLUMN:
                names.append(label.format(token))

    def name(self, column: int) -> str:
        """Readable name of a column: "a / b" when several tokens share it, "?" when unknown."""
        total = feature_count(self.config)
        if not 0 <= column < total:
            raise IndexError(f"column {column} outside 0..{total - 1}")
        dense = column - self._views.format_offset
        if dense >= 0:
            return FORMAT_FEATURE_NAMES[dense]
        return " / ".join(self._names.get(column, ())) or "?"


# --- P[Love] ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ViewerStats:
    """One viewer's labelled exposures in the training part, and how many were loved."""

    exposures: int
    loves: int


def viewer_weight(
    stats: ViewerStats,
    *,
    cap: int = 200,
    uniform_factor: float = 0.25,
    min_for_uniform: int = 5,
) -> float:
    """Weight of each of a viewer's rows.

    RLUF feedback is sparse and sometimes adversarial: one heavy user must not dominate the model
    (rows weighted cap/exposures, so their total weight is `cap`), and a viewer who reacts the same
    way to everything (loves all or nothing across at least `min_for_uniform` exposures) says
    little about the answers, so their rows count `uniform_factor` as much.
    """
    if cap < 1:
        raise ValueError("cap must be >= 1")
    if stats.exposures <= 0:
        return 1.0
    weight = 1.0
    if stats.exposures > cap:
        weight = cap / stats.exposures
    if stats.exposures >= min_for_uniform and stats.loves in (0, stats.exposures):
        weight *= uniform_factor
    return weight


@dataclass
class Batch:
    """Up to a few thousand training rows: the unit of memory in `fit_p_love`."""

    prompts: list[str]
    responses: list[str]
    labels: np.ndarray  # bool or 0/1
    weights: np.ndarray = field(default_factory=lambda: np.ones(0))
    viewers: list[str] = field(default_factory=list)  # optional: who saw each row

    def __post_init__(self) -> None:
        rows = len(self.responses)
        if self.viewers and len(self.viewers) != rows:
            raise ValueError(f"{len(self.viewers)} viewers but {rows} responses")
        if len(self.weights) == 0 and rows:
            self.weights = np.ones(rows)
        if not len(self.prompts) == rows == len(self.labels) == len(self.weights):
            raise ValueError(
                f"batch columns differ in length: {len(self.prompts)} prompts, {rows} responses, "
                f"{len(self.labels)} labels, {len(self.weights)} weights"
            )


def new_p_love_classifier(*, alpha: float = 1e-6, seed: int = 0) -> SGDClassifier:
    """The estimator `fit_p_love` trains (exposed so a caller can inspect the settings).

    A constant step with averaged iterates (Polyak-Ruppert averaging; Bach & Moulines 2013 show it
    suits logistic regression), not sklearn's default "optimal" schedule: with a small `alpha` that
    schedule starts with steps in the tens. Measured on 100k synthetic exposures (6% Love rate,
    one epoch): default log loss 1.20, AUC 0.69; this setting 0.196, AUC 0.74 (oracle 0.190,
    0.76). Averaging also keeps the model from leaning on the last batches, which in a temporal
    order are the newest rows. Averaged early iterates shrink predictions towards the base rate, so
    the step is on the large side (0.3; 0.1 was under-confident on a few thousand rows, ECE 0.12
    against 0.05).
    """
    return SGDClassifier(
        loss="log_loss",
        penalty="l2",
        alpha=alpha,
        learning_rate="constant",
        eta0=0.3,
        average=True,
        random_state=seed,
    )


def suggested_epochs(rows: int, *, min_updates: int = 20_000, most: int = 20) -> int:
    """Epochs for `fit_p_love` so that SGD makes at least `min_updates` steps (capped at `most`).

    Averaged SGD starts from zero weights, so with few steps its probabilities are pulled
    towards the base rate (on 4,000 rows one epoch gave ECE 0.12, three epochs 0.05).
    """
    if rows <= 0:
        return 1
    return max(1, min(most, math.ceil(min_updates / rows)))


def fit_p_love(
    batches: Callable[[], Iterable[Batch]],
    *,
    config: FeatureConfig,
    epochs: int = 1,
    alpha: float = 1e-6,
    seed: int = 0,
    on_batch: Callable[[int], None] | None = None,
    namer: FeatureNamer | None = None,
    group: str = "all",
) -> PLoveModel:
    """Train P[Love] out of core: `batches()` is called once per epoch and each batch is featurized
    and fed to `partial_fit`, so memory is bounded by one batch.

    `on_batch(rows)` runs after every batch (progress, heartbeats); an exception it raises (e.g. the
    run was cancelled) propagates. `namer` observes the first epoch's batches. A `group` other
    than "all" fits `fit_format_model` in one pass, from the format features alone.
    Batches whose weights are all 0 are skipped (still reported to `on_batch`).
    Raises ValueError if the data has no rows, only one class or only zero weights (known after
    the first epoch).
    """
    if epochs < 1:
        raise ValueError("epochs must be >= 1")
    classifier = new_p_love_classifier(alpha=alpha, seed=seed)
    dense = group != "all"
    if dense:
        _format_group(group)  # an unknown group fails before any data is read
    kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # a small group's rows
    seen_labels: set[int] = set()
    fitted = False
    for epoch in range(1 if dense else epochs):
        for batch in batches():
            rows = len(batch.responses)
            if rows:
                labels = np.asarray(batch.labels).astype(np.int64)
                weights = np.asarray(batch.weights, dtype=np.float64)
                if not np.all(np.isfinite(weights)) or np.any(weights < 0):
                    raise ValueError("weights must be finite and >= 0")
                if not np.isin(labels, (0, 1)).all():
                    raise ValueError("labels must be booleans or 0/1")
                if epoch == 0:
                    seen_labels.update(np.unique(labels).tolist())
                    if namer is not None and not dense:
                        namer.observe(batch.prompts, batch.responses)
                if weights.any():  # partial_fit refuses a batch whose weights are all zero
                    fitted = True
                    if dense:
                        kept.append((format_features(batch.responses), labels, weights))
                    else:
                        classifier.partial_fit(
                            featurize(batch.prompts, batch.responses, config),
                            labels,
                            classes=np.array([0, 1]),
                            sample_weight=weights,
                        )
            if on_batch is not None:
                on_batch(rows)
        if epoch == 0 and len(seen_labels) < 2:
            raise ValueError(
                "P[Love] needs both loved and not-loved exposures; the data has "
                + ("no rows" if not seen_labels else f"only label {seen_labels.pop()}")
            )
        if epoch == 0 and not fitted:
            raise ValueError("every row has weight 0: nothing to learn from")
    if dense:
        formats, labels, weights = (np.concatenate(part) for part in zip(*kept, strict=True))
        return fit_format_model(formats, labels, weights, config=config, group=group, alpha=alpha)
    return classifier


def predict_p_love(
    classifier: PLoveModel,
    prompts: Sequence[str],
    responses: Sequence[str],
    config: FeatureConfig,
) -> np.ndarray:
    """P[Love] per row (probability of label 1)."""
    positive = list(classifier.classes_).index(1)
    return _score_rows(
        prompts, responses, config, lambda features: classifier.predict_proba(features)[:, positive]
    )


def evaluate_p_love(
    labels: np.ndarray,
    predictions: np.ndarray,
    *,
    versions: Sequence[str] | None = None,
    bins: int = 10,
) -> dict[str, Any]:
    """Held-out metrics for P[Love], JSON-serialisable (plain floats, ints, lists and None).

    Ranking (ROC-AUC, PR-AUC; None with one class), probabilistic quality (log loss, Brier),
    calibration (reliability over equal-width bins and ECE), per model version mean predicted
    P[Love] against the observed Love rate (the paper's offline-evaluator check), and the score
    histogram per label.
    """
    y = np.asarray(labels).astype(np.float64).ravel()
    p = np.asarray(predictions, dtype=np.float64).ravel()
    if y.shape != p.shape:
        raise ValueError(f"{y.size} labels but {p.size} predictions")
    if not np.isin(y, (0.0, 1.0)).all():
        raise ValueError("labels must be booleans or 0/1")
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise ValueError("predictions must be probabilities in [0, 1]")
    if bins < 1:
        raise ValueError("bins must be >= 1")
    if versions is not None and len(versions) != y.size:
        raise ValueError(f"{len(versions)} versions but {y.size} labels")
    rows = int(y.size)
    edges = [i / bins for i in range(bins + 1)]
    bin_of = np.minimum((p * bins).astype(np.int64), bins - 1)
    positive = y == 1
    histogram = {
        "edges": edges,
        "positive": np.bincount(bin_of[positive], minlength=bins).tolist(),
        "negative": np.bincount(bin_of[~positive], minlength=bins).tolist(),
    }
    if rows == 0:
        return {
            "rows": 0,
            "base_rate": None,
            "roc_auc": None,
            "pr_auc": None,
            "log_loss": None,
            "brier": None,
            "reliability": [],
            "ece": None,
            "by_version": [],
            "histogram": histogram,
        }
    both = 0 < positive.sum() < rows
    clipped = np.clip(p, 1e-15, 1 - 1e-15)
    reliability: list[dict[str, Any]] = []
    ece = 0.0
    counts = np.bincount(bin_of, minlength=bins)
    predicted_sums = np.bincount(bin_of, weights=p, minlength=bins)
    observed_sums = np.bincount(bin_of, weights=y, minlength=bins)
    for index in np.flatnonzero(counts).tolist():
        count = int(counts[index])
        mean_predicted = float(predicted_sums[index] / count)
        observed = float(observed_sums[index] / count)
        ece += count / rows * abs(observed - mean_predicted)
        reliability.append(
            {
                "bin_low": edges[index],
                "bin_high": edges[index + 1],
                "mean_predicted": mean_predicted,
                "observed": observed,
                "count": count,
            }
        )
    by_version: list[dict[str, Any]] = []
    if versions is not None:
        names, inverse = np.unique(np.asarray([str(v) for v in versions]), return_inverse=True)
        version_rows = np.bincount(inverse, minlength=len(names))
        version_predicted = np.bincount(inverse, weights=p, minlength=len(names))
        version_observed = np.bincount(inverse, weights=y, minlength=len(names))
        by_version = [
            {
                "version": str(name),
                "rows": int(count),
                "mean_predicted": float(version_predicted[i] / count),
                "observed": float(version_observed[i] / count),
            }
            for i, (name, count) in enumerate(zip(names.tolist(), version_rows, strict=True))
        ]
    return {
        "rows": rows,
        "base_rate": float(y.mean()),
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "pr_auc": float(average_precision_score(y, p)) if both else None,
        "log_loss": float(-np.mean(y * np.log(clipped) + (1 - y) * np.log(1 - clipped))),
        "brier": float(np.mean((p - y) ** 2)),
        "reliability": reliability,
        "ece": float(ece),
        "by_version": by_version,
        "histogram": histogram,
    }


def top_features(
    coefficients: np.ndarray, namer: FeatureNamer, *, k: int = 20
) -> dict[str, list[dict[str, Any]]]:
    """The k most positive and k most negative coefficients with readable names.

    Named columns come first; unnamed ("?") ones only fill up a list that would otherwise be short.
    Zero weights are never listed.
    """
    weights = np.asarray(coefficients, dtype=np.float64)
    if weights.ndim == 2 and weights.shape[0] == 1:
        weights = weights[0]
    if weights.ndim != 1:
        raise ValueError(f"expected one row of coefficients, got shape {weights.shape}")
    return {
        "positive": _heaviest(weights, namer, k, sign=1.0),
        "negative": _heaviest(weights, namer, k, sign=-1.0),
    }


def _heaviest(
    weights: np.ndarray, namer: FeatureNamer, k: int, *, sign: float
) -> list[dict[str, Any]]:
    signed = weights * sign
    candidates = np.flatnonzero(signed > 0)
    order = candidates[np.argsort(-signed[candidates], kind="stable")]
    named: list[tuple[int, str]] = []
    unknown: list[tuple[int, str]] = []
    for column in order.tolist():
        if len(named) >= k:
            break
        label = namer.name(column)
        if label == "?":
            if len(unknown) < k:
                unknown.append((column, label))
        else:
            named.append((column, label))
    chosen = named + unknown[: max(0, k - len(named))]
    chosen.sort(key=lambda item: -signed[item[0]])
    return [{"feature": label, "weight": float(weights[column])} for column, label in chosen]


def temporal_split_index(rows: int, test_fraction: float = 0.2) -> int:
    """Split point for rows sorted oldest first: train on [:i], test on [i:].

    A temporal split measures what matters for a reward model in production: predicting answers
    shown after training. Both sides are non-empty when rows >= 2.
    """
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if rows < 0:
        raise ValueError("rows must be >= 0")
    if rows < 2:
        return rows
    index = math.floor(rows * (1 - test_fraction) + 0.5)
    return min(max(index, 1), rows - 1)


# --- Honest baselines -------------------------------------------------------------------------

# A per-version rate is pulled towards the base rate as if each version had this many more
# exposures at the base rate, so a version seen once or never is not predicted at 0 or 1.
VERSION_PRIOR_ROWS = 1.0
# The length baseline is a one-feature logistic regression; more rows than this add nothing but
# time, so a larger training part is thinned to an evenly spaced sample of this size.
LENGTH_BASELINE_ROWS = 50_000
BASELINE_NAMES: tuple[str, ...] = ("base_rate", "model_version_rate", "length")


@dataclass(frozen=True, slots=True)
class BaselineRows:
    """What the baselines see of a set of exposures: the response lengths (characters), the
    model version of each answer and, for the rows they learn from, the labels."""

    lengths: np.ndarray
    versions: Sequence[str]
    labels: np.ndarray | None = None

    def __post_init__(self) -> None:
        if len(self.lengths) != len(self.versions) or (
            self.labels is not None and len(self.labels) != len(self.lengths)
        ):
            raise ValueError("lengths, versions and labels must have the same length")


def _log_length(lengths: np.ndarray) -> np.ndarray:
    return np.log1p(np.asarray(lengths, dtype=np.float64)).reshape(-1, 1)


def baseline_predictions(train: BaselineRows, test: BaselineRows) -> dict[str, np.ndarray]:
    """P[Love] of each test row by the three baselines a model must beat, fitted on `train`:

    * `base_rate`: the training part's Love rate for every row;
    * `model_version_rate`: the Love rate of the answer's model version in the training part,
      pulled towards the base rate by `VERSION_PRIOR_ROWS` (an unseen version gets the base rate);
    * `length`: a logistic regression on log(1 + response length) alone. Real reactions reward
      length, so a text model that can't beat this has learned nothing a ruler couldn't.
    """
    if train.labels is None or len(train.labels) == 0:
        raise ValueError("the baselines need labelled training rows")
    y = np.asarray(train.labels).astype(np.float64)
    base = float(y.mean())
    rows = len(test.lengths)
    out = {"base_rate": np.full(rows, base)}
    loves: dict[str, float] = {}
    seen: dict[str, int] = {}
    for version, label in zip(train.versions, y.tolist(), strict=True):
        loves[version] = loves.get(version, 0.0) + label
        seen[version] = seen.get(version, 0) + 1
    rate = {
        version: (loves[version] + VERSION_PRIOR_ROWS * base) / (count + VERSION_PRIOR_ROWS)
        for version, count in seen.items()
    }
    out["model_version_rate"] = np.fromiter(
        (rate.get(version, base) for version in test.versions), dtype=np.float64, count=rows
    )
    if 0.0 < base < 1.0:
        step = max(1, math.ceil(len(y) / LENGTH_BASELINE_ROWS))
        length_model = LogisticRegression(C=1.0, max_iter=200)
        length_model.fit(_log_length(train.lengths)[::step], y[::step].astype(np.int64))
        out["length"] = (
            length_model.predict_proba(_log_length(test.lengths))[:, 1] if rows else np.zeros(0)
        )
    else:
        out["length"] = np.full(rows, base)
    return out


def _ranking_and_loss(labels: np.ndarray, predictions: np.ndarray) -> dict[str, float | None]:
    y = np.asarray(labels).astype(np.float64)
    p = np.clip(np.asarray(predictions, dtype=np.float64), 1e-15, 1 - 1e-15)
    if y.size == 0:
        return {"roc_auc": None, "log_loss": None}
    both = 0 < y.sum() < y.size
    return {
        "roc_auc": float(roc_auc_score(y, p)) if both else None,
        "log_loss": float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p))),
    }


def compare_to_baselines(
    labels: np.ndarray, model: np.ndarray, baselines: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """Each baseline's held-out ROC-AUC and log loss with the model's lift over it (positive:
    the model is better; the log loss lift is baseline minus model), the best baseline (highest
    ROC-AUC, then lowest log loss) and whether the model beats every baseline on both."""
    mine = _ranking_and_loss(labels, model)
    table: dict[str, dict[str, float | None]] = {}
    for name, predictions in baselines.items():
        theirs = _ranking_and_loss(labels, predictions)
        table[name] = {
            **theirs,
            "roc_auc_lift": _difference(mine["roc_auc"], theirs["roc_auc"]),
            "log_loss_lift": _difference(theirs["log_loss"], mine["log_loss"]),
        }
    best = (
        min(
            table,
            key=lambda name: (
                -(table[name]["roc_auc"] or 0.0),
                table[name]["log_loss"] or 0.0,
            ),
        )
        if table
        else None
    )
    behind = sorted(
        name
        for name, row in table.items()
        if (row["roc_auc_lift"] is not None and row["roc_auc_lift"] <= 0)
        or (row["log_loss_lift"] is not None and row["log_loss_lift"] <= 0)
    )
    return {
        "model": mine,
        "by_baseline": table,
        "best_baseline": best,
        "behind": behind,
        "beats_baselines": not behind,
    }


def _difference(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else float(a - b)


def longer_wins_accuracy(chosen: Sequence[str], rejected: Sequence[str]) -> float | None:
    """The preference baseline: share of pairs whose chosen response is the longer one (ties
    count half); None without pairs."""
    if len(chosen) != len(rejected):
        raise ValueError(f"{len(chosen)} chosen but {len(rejected)} rejected responses")
    if not chosen:
        return None
    a = np.fromiter((len(t) for t in chosen), dtype=np.int64, count=len(chosen))
    b = np.fromiter((len(t) for t in rejected), dtype=np.int64, count=len(rejected))
    return float(np.mean((a > b) + 0.5 * (a == b)))


# --- Choosing the regularisation and the feature groups ----------------------------------------

# Which columns a P[Love] model may use: everything (hashed texts and format features, fitted
# out of core by SGD), the format features alone, or the response length alone. The last two
# are a handful of dense columns, fitted exactly (see `fit_format_model`).
FEATURE_GROUPS: tuple[str, ...] = ("all", "length", "format")  # on a tie, the earlier wins
ALPHA_GRID: tuple[float, ...] = (1e-6, 1e-5, 1e-4, 1e-3)


def _format_group(group: str) -> np.ndarray:
    """Which format columns (0-based within the format block) a small group uses."""
    if group == "format":
        return np.arange(len(FORMAT_FEATURE_NAMES))
    if group == "length":
        return np.array([FORMAT_FEATURE_NAMES.index("log_length")])
    raise ValueError(f"unknown feature group {group!r}; known: {', '.join(FEATURE_GROUPS)}")


def fit_format_model(
    formats: np.ndarray,
    labels: np.ndarray,
    weights: np.ndarray,
    *,
    config: FeatureConfig,
    group: str,
    alpha: float,
) -> LogisticRegression:
    """P[Love] from the format features ("format") or the length alone ("length").

    Averaged SGD barely moves the weight of a column as narrow as the log-length (most answers
    fall between 0.4 and 0.7 on its scale), so these few columns are fitted exactly instead: a
    logistic regression on them standardised, with SGD's penalty (alpha per row), whose
    scaling is then folded back into the weights. The result has a weight for every column of
    `featurize` (0 outside the group), so it scores feature rows like any P[Love] classifier.
    """
    columns = _format_group(group)
    y = np.asarray(labels).astype(np.int64)
    w = np.asarray(weights, dtype=np.float64)
    x = np.asarray(formats, dtype=np.float64)[:, columns]
    mean = np.average(x, axis=0, weights=w) if w.sum() > 0 else x.mean(axis=0)
    scale = x.std(axis=0)
    scale = np.where(scale > 1e-12, scale, 1.0)
    model = LogisticRegression(C=min(1e6, 1.0 / (alpha * max(1.0, float(w.sum())))), max_iter=1000)
    model.fit((x - mean) / scale, y, sample_weight=w)
    slopes = model.coef_[0] / scale
    full = np.zeros((1, feature_count(config)))
    full[0, _views(config).format_offset + columns] = slopes
    model.coef_ = full
    model.intercept_ = np.array([model.intercept_[0] - float(slopes @ mean)])
    model.n_features_in_ = full.shape[1]
    return model


def _format_block(features: sp.csr_matrix) -> np.ndarray:
    return np.asarray(features[:, -len(FORMAT_FEATURE_NAMES) :].toarray(), dtype=np.float64)


@dataclass
class Sample:
    """Featurized rows held in memory (the bounded sample the grid is searched on)."""

    features: sp.csr_matrix
    labels: np.ndarray
    weights: np.ndarray
    viewers: Sequence[str] = ()


@dataclass
class Selection:
    """The grid point chosen on the validation slice, every point's validation figures, and the
    chosen point's classifier (fitted on the rows before the slice)."""

    alpha: float
    group: str
    grid: list[dict[str, Any]]
    classifier: PLoveModel
    fitted: dict[tuple[str, float], PLoveModel] = field(default_factory=dict)  # every point


def fit_sample(
    sample: Sample,
    *,
    config: FeatureConfig,
    alpha: float,
    group: str = "all",
    epochs: int,
    seed: int = 0,
) -> PLoveModel:
    """`fit_p_love` on rows already featurized (the same estimators and passes)."""
    if group != "all":
        return fit_format_model(
            _format_block(sample.features),
            sample.labels,
            sample.weights,
            config=config,
            group=group,
            alpha=alpha,
        )
    classifier = new_p_love_classifier(alpha=alpha, seed=seed)
    labels = np.asarray(sample.labels).astype(np.int64)
    for _ in range(epochs):
        classifier.partial_fit(
            sample.features, labels, classes=np.array([0, 1]), sample_weight=sample.weights
        )
    return classifier


def select_p_love(
    fit: Sample,
    validation: Sample,
    *,
    config: FeatureConfig,
    alphas: Sequence[float],
    groups: Sequence[str] = FEATURE_GROUPS,
    epochs: int,
    seed: int = 0,
) -> Selection:
    """Fit every (alpha, feature group) on `fit` and keep the one with the lowest log loss on
    `validation`, the newest rows of the training part (ties: the earlier grid point, so list
    the preferred settings first). Rows are featurized once, before the search, and each point
    reuses them: the search costs `len(alphas) * epochs` passes of SGD over sparse rows already
    in memory, plus small exact fits on a few dense columns.

    Because the length-only model is a grid point, the chosen model can only lose to it on the
    validation slice by the noise of that slice; on data where length is all there is, it is
    the model."""
    if not alphas or not groups:
        raise ValueError("the grid needs at least one alpha and one feature group")
    y = np.asarray(validation.labels)
    grid: list[dict[str, Any]] = []
    best: tuple[float, int] | None = None
    chosen: PLoveModel | None = None
    fitted: dict[tuple[str, float], PLoveModel] = {}
    for group in groups:
        for alpha in alphas:
            classifier = fit_sample(
                fit, config=config, alpha=alpha, group=group, epochs=epochs, seed=seed
            )
            fitted[group, float(alpha)] = classifier
            positive = list(classifier.classes_).index(1)
            p = classifier.predict_proba(validation.features)[:, positive]
            figures = _ranking_and_loss(y, p)
            grid.append({"alpha": float(alpha), "group": group, **figures})
            loss = figures["log_loss"] if figures["log_loss"] is not None else math.inf
            if best is None or loss < best[0]:
                best, chosen = (loss, len(grid) - 1), classifier
    assert best is not None
    assert chosen is not None
    point = grid[best[1]]
    return Selection(point["alpha"], point["group"], grid, chosen, fitted)


# --- Personalised P[Love] ---------------------------------------------------------------------

# A viewer's adjustment is an offset and a weight per format feature (length among them) added to
# the global model's log-odds. It is fitted per viewer with an L2 penalty of `strength` pulling
# it to zero, i.e. towards the global model: a viewer with a handful of labels moves little, one
# with none (or unknown) gets exactly the global prediction.
STRENGTH_GRID: tuple[float, ...] = (1.0, 4.0, 16.0)
VIEWER_MIN_ROWS = 3  # fewer training labels than this: no adjustment is stored
VIEWER_KIND = "p_love_viewer"  # the `kind` of a personalised artifact (a plain dict)
_NEWTON_STEPS = 12


def viewer_key(ref: str) -> int:
    """A viewer's reference as a 63-bit integer (the artifact stores these, not the references)."""
    digest = hashlib.blake2b(ref.encode(), digest_size=8, person=b"p-love-viewer").digest()
    return int.from_bytes(digest, "big") >> 1


def viewer_keys(refs: Iterable[str | None]) -> np.ndarray:
    """`viewer_key` of each reference; -1 for none."""
    return np.fromiter((viewer_key(ref) if ref else -1 for ref in refs), dtype=np.int64)


@dataclass
class ViewerAdjustments:
    """Per-viewer offsets and format-feature weights on top of a global model."""

    keys: np.ndarray  # sorted int64 viewer keys
    coefficients: np.ndarray  # (viewers, 1 + format features): offset, then weights
    mean: np.ndarray  # format features are centred and scaled before the weights apply
    scale: np.ndarray
    strength: float

    def _design(self, formats: np.ndarray) -> np.ndarray:
        z = (np.asarray(formats, dtype=np.float64) - self.mean) / self.scale
        return np.hstack([np.ones((z.shape[0], 1)), z])

    def _positions(self, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Each key's row in `coefficients` and whether it has one."""
        keys = np.asarray(keys, dtype=np.int64)
        if self.keys.size == 0:
            return np.zeros(keys.size, dtype=np.int64), np.zeros(keys.size, dtype=bool)
        at = np.minimum(np.searchsorted(self.keys, keys), self.keys.size - 1)
        return at, self.keys[at] == keys

    def known(self, keys: np.ndarray) -> np.ndarray:
        """Whether each viewer key has an adjustment."""
        return self._positions(keys)[1]

    def shift(self, formats: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """What to add to the global log-odds of each row: 0 for a viewer without adjustments."""
        at, known = self._positions(keys)
        out = np.zeros(known.size)
        if known.any():
            design = self._design(np.asarray(formats)[known])
            out[known] = np.einsum("ij,ij->i", design, self.coefficients[at[known]])
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "viewer_keys": self.keys,
            "viewer_coefficients": self.coefficients,
            "format_mean": self.mean,
            "format_scale": self.scale,
            "strength": float(self.strength),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ViewerAdjustments:
        return cls(
            keys=np.asarray(data["viewer_keys"], dtype=np.int64),
            coefficients=np.asarray(data["viewer_coefficients"], dtype=np.float64),
            mean=np.asarray(data["format_mean"], dtype=np.float64),
            scale=np.asarray(data["format_scale"], dtype=np.float64),
            strength=float(data["strength"]),
        )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -35.0, 35.0)))


def fit_viewer_adjustments(
    logits: np.ndarray,
    formats: np.ndarray,
    labels: np.ndarray,
    keys: np.ndarray,
    *,
    strength: float,
    min_rows: int = VIEWER_MIN_ROWS,
) -> ViewerAdjustments:
    """Per viewer, the L2-penalised logistic regression of the labels on the standardised format
    features with the global model's log-odds as a fixed offset (Newton's method, all viewers at
    once). Rows without a viewer (key -1) only shape the standardisation."""
    if strength <= 0:
        raise ValueError("strength must be > 0")
    g = np.asarray(logits, dtype=np.float64)
    x = np.asarray(formats, dtype=np.float64)
    y = np.asarray(labels).astype(np.float64)
    k = np.asarray(keys, dtype=np.int64)
    if not g.size == x.shape[0] == y.size == k.size:
        raise ValueError("logits, formats, labels and keys must have the same rows")
    width = 1 + (x.shape[1] if x.ndim == 2 else 0)
    mean = x.mean(axis=0) if g.size else np.zeros(width - 1)
    scale = x.std(axis=0) if g.size else np.ones(width - 1)
    scale = np.where(scale > 1e-9, scale, 1.0)
    unique, inverse, counts = np.unique(k, return_inverse=True, return_counts=True)
    enough = (counts >= min_rows) & (unique >= 0)
    empty = ViewerAdjustments(
        np.zeros(0, dtype=np.int64), np.zeros((0, width)), mean, scale, strength
    )
    if not enough.any():
        return empty
    rows = enough[inverse]
    index = np.cumsum(enough) - 1  # position of each kept viewer among the kept ones
    owner = index[inverse[rows]]
    viewers = int(enough.sum())
    design = np.hstack([np.ones((int(rows.sum()), 1)), (x[rows] - mean) / scale])
    offset, target = g[rows], y[rows]
    theta = np.zeros((viewers, width))
    ridge = strength * np.eye(width)
    for _ in range(_NEWTON_STEPS):
        p = _sigmoid(offset + np.einsum("ij,ij->i", design, theta[owner]))
        residual = p - target
        curvature = p * (1 - p)
        gradient = strength * theta
        hessian = np.broadcast_to(ridge, (viewers, width, width)).copy()
        for a in range(width):
            gradient[:, a] += np.bincount(owner, residual * design[:, a], minlength=viewers)
            for b in range(a, width):
                h = np.bincount(owner, curvature * design[:, a] * design[:, b], minlength=viewers)
                hessian[:, a, b] += h
                if a != b:
                    hessian[:, b, a] += h
        step = np.linalg.solve(hessian, gradient[..., None])[..., 0]
        theta -= step
        if np.abs(step).max() < 1e-6:
            break
    return ViewerAdjustments(unique[enough], theta, mean, scale, strength)


def personal_artifact(classifier: PLoveModel, adjustments: ViewerAdjustments) -> dict[str, Any]:
    """A personalised P[Love] as stored: a plain dict (only allowlisted types inside)."""
    return {"kind": VIEWER_KIND, "global": classifier, **adjustments.as_dict()}


def is_personal(artifact: Any) -> bool:
    return isinstance(artifact, dict) and artifact.get("kind") == VIEWER_KIND


def personalise(
    predictions: np.ndarray,
    adjustments: ViewerAdjustments,
    responses: Sequence[str],
    viewers: Sequence[str | None],
) -> tuple[np.ndarray, np.ndarray]:
    """Global P[Love] predictions moved by each row's viewer adjustment, and whether the viewer
    had one (False: the prediction is the global one, unchanged)."""
    if not len(predictions) == len(responses) == len(viewers):
        raise ValueError("predictions, responses and viewers must have the same length")
    keys = viewer_keys(viewers)
    shift = adjustments.shift(format_features(responses), keys)
    known = adjustments.known(keys)
    p = np.clip(np.asarray(predictions, dtype=np.float64), 1e-12, 1 - 1e-12)
    moved = _sigmoid(np.log(p) - np.log1p(-p) + shift)
    return np.where(known, moved, np.asarray(predictions, dtype=np.float64)), known


def predict_p_love_for(
    artifact: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    viewers: Sequence[str | None],
    config: FeatureConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """P[Love] per row from a stored model, for its viewer when the model is personalised and
    knows the viewer, and whether it did (False: the global prediction)."""
    if len(viewers) != len(responses):
        raise ValueError(f"{len(viewers)} viewers but {len(responses)} responses")
    if not is_personal(artifact):
        predictions = predict_p_love(artifact, prompts, responses, config)
        return predictions, np.zeros(len(responses), dtype=bool)
    predictions = predict_p_love(artifact["global"], prompts, responses, config)
    return personalise(predictions, ViewerAdjustments.from_dict(artifact), responses, viewers)


def per_viewer_auc(
    labels: np.ndarray,
    global_predictions: np.ndarray,
    personal_predictions: np.ndarray,
    viewers: Sequence[str],
    *,
    min_rows: int = 10,
) -> dict[str, Any]:
    """Held-out ROC-AUC per viewer with at least `min_rows` rows of both labels, for the global and
    the personalised predictions of the same rows: the mean, quantiles and a histogram of each."""
    y = np.asarray(labels).astype(np.float64)
    g = np.asarray(global_predictions, dtype=np.float64)
    p = np.asarray(personal_predictions, dtype=np.float64)
    names, inverse = np.unique(np.asarray([str(v) for v in viewers]), return_inverse=True)
    order = np.argsort(inverse, kind="stable")
    bounds = np.searchsorted(inverse[order], np.arange(len(names) + 1))
    pairs: list[tuple[float, float]] = []
    rows = 0
    for i in range(len(names)):
        part = order[bounds[i] : bounds[i + 1]]
        ys = y[part]
        if part.size >= min_rows and 0 < ys.sum() < part.size:
            pairs.append((float(roc_auc_score(ys, g[part])), float(roc_auc_score(ys, p[part]))))
            rows += int(part.size)
    edges = [i / 10 for i in range(11)]

    def summary(values: list[float]) -> dict[str, Any]:
        if not values:
            return {"mean": None, "quantiles": {}, "histogram": [0] * 10}
        array = np.asarray(values)
        return {
            "mean": float(array.mean()),
            "quantiles": {f"p{q}": float(np.percentile(array, q)) for q in (10, 25, 50, 75, 90)},
            "histogram": np.histogram(array, bins=edges)[0].tolist(),
        }

    return {
        "min_rows": min_rows,
        "viewers": len(pairs),
        "rows": rows,
        "edges": edges,
        "global": summary([a for a, _ in pairs]),
        "personal": summary([b for _, b in pairs]),
        "improved": sum(1 for a, b in pairs if b > a),
    }


# --- Preference (Bradley-Terry) ---------------------------------------------------------------

Texts = tuple[Sequence[str], Sequence[str]]  # (prompts, responses)


def _pair_count(chosen: Texts, rejected: Texts) -> int:
    lengths = {len(chosen[0]), len(chosen[1]), len(rejected[0]), len(rejected[1])}
    if len(lengths) != 1:
        raise ValueError("chosen and rejected prompts and responses must have the same length")
    return lengths.pop()


def fit_preference(
    chosen: Texts,
    rejected: Texts,
    *,
    config: FeatureConfig,
    C: float = 1.0,
    seed: int = 0,
) -> LogisticRegression:
    """Bradley-Terry: P(chosen > rejected) = sigmoid(w . (x_chosen - x_rejected)).

    Trained on both orientations ([X; -X] with labels [1; 0]) and without an intercept, so the
    model has no side bias and swapping a pair exactly negates its score. Prompt features cancel
    in the difference (the pair shares its prompt), so only response features get weight.
    """
    pairs = _pair_count(chosen, rejected)
    if pairs < 2:
        raise ValueError(f"a preference model needs at least 2 pairs, got {pairs}")
    differences = sp.vstack(
        [
            featurize(chosen[0][part], chosen[1][part], config)
            - featurize(rejected[0][part], rejected[1][part], config)
            for part in _chunks(pairs)
        ],
        format="csr",
    )
    model = LogisticRegression(C=C, fit_intercept=False, max_iter=1000, random_state=seed)
    model.fit(
        sp.vstack([differences, -differences], format="csr"),
        np.concatenate([np.ones(pairs, dtype=np.int64), np.zeros(pairs, dtype=np.int64)]),
    )
    return model


def preference_rewards(
    model: LogisticRegression,
    prompts: Sequence[str],
    responses: Sequence[str],
    config: FeatureConfig,
) -> np.ndarray:
    """Scalar reward per response: features @ coef (only differences are meaningful)."""
    coefficients = np.asarray(model.coef_, dtype=np.float64).ravel()
    return _score_rows(prompts, responses, config, lambda features: features @ coefficients)


def pairwise_accuracy(
    model: LogisticRegression,
    chosen: Texts,
    rejected: Texts,
    config: FeatureConfig,
) -> float | None:
    """Share of pairs where reward(chosen) > reward(rejected); ties count half; None if no pairs."""
    if _pair_count(chosen, rejected) == 0:
        return None
    good = preference_rewards(model, chosen[0], chosen[1], config)
    bad = preference_rewards(model, rejected[0], rejected[1], config)
    return float(np.mean((good > bad) + 0.5 * (good == bad)))


# --- Artifacts --------------------------------------------------------------------------------

# Every type an SGDClassifier or LogisticRegression fitted by this module is made of, found by
# dumping fitted models (float32 and float64 input, averaged SGD, sample weights) and listing the
# types in their skops schema. Loading refuses any file containing another type, even one skops
# itself trusts by default (a Pipeline with a FunctionTransformer can call any function).
ARTIFACT_TYPES: frozenset[str] = frozenset(
    {
        "builtins.bool",
        "builtins.dict",
        "builtins.float",
        "builtins.int",
        "builtins.list",
        "builtins.NoneType",
        "builtins.str",
        "builtins.tuple",
        "numpy.ndarray",
        "numpy.float32",
        "numpy.float64",
        "numpy.int64",
        "sklearn._loss._loss.CyHalfBinomialLoss",
        "sklearn.linear_model._logistic.LogisticRegression",
        "sklearn.linear_model._stochastic_gradient.SGDClassifier",
    }
)


def save_artifact(obj: Any, path: str | Path) -> None:
    """Write a model with skops (never pickle: loading a pickle runs arbitrary code)."""
    sio.dump(obj, path)


def dumps_artifact(obj: Any) -> bytes:
    """Like `save_artifact`, for storages that take bytes rather than a local path."""
    return bytes(sio.dumps(obj))


def load_artifact(path: str | Path) -> Any:
    """Read a model written by `save_artifact`, refusing any type outside `ARTIFACT_TYPES`."""
    data = Path(path).read_bytes()
    return loads_artifact(data)


def loads_artifact(data: bytes) -> Any:
    """Like `load_artifact`, from bytes. Raises ValueError naming every type not allowed."""
    present = _schema_types(data)
    untrusted = list(sio.get_untrusted_types(data=data))
    refused = sorted((present | set(untrusted)) - ARTIFACT_TYPES)
    if refused:
        raise ValueError(f"refusing to load model artifact with types: {', '.join(refused)}")
    return sio.loads(data, trusted=untrusted)


def _schema_types(data: bytes) -> set[str]:
    """Every "module.Class" named in a skops file's schema.json."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read("schema.json"))
    except (zipfile.BadZipFile, KeyError, ValueError) as error:
        raise ValueError(f"not a skops model artifact: {error}") from error
    found: set[str] = set()
    stack: list[Any] = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            module, name = node.get("__module__"), node.get("__class__")
            if isinstance(module, str) and isinstance(name, str):
                found.add(f"{module}.{name}")
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found
