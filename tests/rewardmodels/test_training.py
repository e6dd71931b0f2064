"""Reward-model computation: features, P[Love] (SGD), evaluation, Bradley-Terry, artifacts.

Pure functions over plain data, no database. Expected numbers are worked out by hand in comments.
"""

from __future__ import annotations

import json
import math
import random
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import skops.io as sio
from sklearn.feature_extraction.text import HashingVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from rewardmodels import training
from rewardmodels.training import (
    FORMAT_FEATURE_NAMES,
    BaselineRows,
    Batch,
    FeatureConfig,
    FeatureNamer,
    Sample,
    ViewerStats,
    baseline_predictions,
    compare_to_baselines,
    dumps_artifact,
    evaluate_p_love,
    feature_count,
    featurize,
    fit_p_love,
    fit_preference,
    load_artifact,
    loads_artifact,
    longer_wins_accuracy,
    pairwise_accuracy,
    predict_p_love,
    preference_rewards,
    save_artifact,
    select_p_love,
    temporal_split_index,
    top_features,
    viewer_weight,
)

# Small hashed spaces keep the tests fast; the layout is the same as with the defaults.
SMALL = FeatureConfig(n_features=2**14)
TINY = FeatureConfig(n_features=16, word_ngrams=(1, 1), use_char=False)

FILLER = [
    *("the", "model", "answer", "explains", "each", "step", "clearly", "and", "code", "runs"),
    *("fast", "with", "small", "data", "we", "can", "check", "results", "first", "then"),
    *("compare", "options", "before", "choosing", "one", "approach", "for", "your", "project"),
]
PROMPT_WORDS = [
    *("how", "do", "why", "what", "can", "should", "explain", "write", "fix", "plan"),
    *("garden", "cook", "travel"),
]


def texts_with(rng: random.Random, marker: str | None, *, words: int = 25) -> str:
    tokens = rng.choices(FILLER, k=words)
    if marker:
        tokens.insert(rng.randrange(len(tokens) + 1), marker)
    return " ".join(tokens)


def planted_rows(
    n: int,
    *,
    seed: int,
    marker: str = "sunflower",
    suffix: str = "",
    share: float = 0.4,
    p_marked: float = 0.9,
    p_other: float = 0.05,
) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """Rows where a share of responses carry `marker` (and `suffix`) and are loved more often."""
    rng = random.Random(seed)
    prompts, responses, labels, marked = [], [], [], []
    for _ in range(n):
        is_marked = rng.random() < share
        prompts.append(" ".join(rng.choices(PROMPT_WORDS, k=6)))
        text = texts_with(rng, marker if is_marked else None)
        responses.append(text + (suffix if is_marked else ""))
        labels.append(rng.random() < (p_marked if is_marked else p_other))
        marked.append(is_marked)
    return prompts, responses, np.array(labels), np.array(marked)


def batches_of(
    prompts: list[str],
    responses: list[str],
    labels: np.ndarray,
    *,
    size: int,
    weights: np.ndarray | None = None,
) -> Iterator[Batch]:
    for start in range(0, len(responses), size):
        end = min(start + size, len(responses))
        yield Batch(
            prompts[start:end],
            responses[start:end],
            labels[start:end],
            np.ones(end - start) if weights is None else weights[start:end],
        )


def nonzero_columns(matrix: Any) -> set[int]:
    return set(matrix.nonzero()[1].tolist())


def column_of(word: str, config: FeatureConfig) -> int:
    """The hashed column of a single response word, found through `featurize` itself."""
    columns = nonzero_columns(featurize([""], [word], config)[:, : config.n_features])
    assert len(columns) == 1
    return columns.pop()


# --- FeatureConfig ----------------------------------------------------------------------------


def test_feature_config_round_trips_through_json() -> None:
    # Given a non-default config
    config = FeatureConfig(n_features=2**12, word_ngrams=(1, 3), char_ngrams=(2, 4), use_char=False)
    # When it goes through JSON (tuples become lists) and back
    restored = FeatureConfig.from_dict(json.loads(json.dumps(config.as_dict())))
    # Then it is equal
    assert restored == config
    assert FeatureConfig.from_dict({}) == FeatureConfig()


@pytest.mark.parametrize(
    "data",
    [
        {"n_features": 0},
        {"n_features": "big"},
        {"n_features": True},
        {"n_features": 2**30},
        {"word_ngrams": [2, 1]},
        {"word_ngrams": [1]},
        {"word_ngrams": "12"},
        {"char_ngrams": [0, 3]},
        {"char_ngrams": [3.0, 5]},
        {"use_char": "yes"},
        {"stop_words": "english"},
    ],
)
def test_feature_config_from_dict_rejects_bad_values(data: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=r"n_features|ngrams|use_char|unknown"):
        FeatureConfig.from_dict(data)


# --- featurize --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "expected"),
    [
        (FeatureConfig(), 3 * 2**18 + len(FORMAT_FEATURE_NAMES)),
        (FeatureConfig(n_features=2**10, use_char=False), 2 * 2**10 + len(FORMAT_FEATURE_NAMES)),
    ],
)
def test_featurize_shape_is_feature_count(config: FeatureConfig, expected: int) -> None:
    matrix = featurize(["a prompt", "another"], ["an answer", ""], config)
    assert feature_count(config) == expected
    assert matrix.shape == (2, expected)
    assert matrix.dtype == np.float32
    assert matrix.format == "csr"


def test_featurize_accepts_no_rows() -> None:
    assert featurize([], [], SMALL).shape == (0, feature_count(SMALL))


def test_featurize_rejects_mismatched_lengths() -> None:
    with pytest.raises(ValueError, match="prompts"):
        featurize(["one"], ["one", "two"], SMALL)


def test_format_features_are_the_last_columns_with_hand_computed_values() -> None:
    # Given a response that opens with flattery and closes with a sign-off
    response = (
        "Great question! 😊\n"
        "- water daily\n"
        "- full sun\n"
        "See https://example.com/sunflowers\n"
        "```\nplant()\n```\n"
        "Hope this helps!"
    )
    # When it is featurized
    dense = featurize(["how do I grow sunflowers?"], [response], SMALL).toarray()[0, -10:]
    # Then, column by column:
    expected = {
        "log_length": math.log1p(len(response)) / math.log1p(10_000),
        "newlines": 7 / 20,  # seven "\n"
        "bullets": 2 / 10,  # two "- " lines
        "emojis": 1 / 5,  # one 😊
        "exclamations": 2 / 5,  # "question!" and "helps!"
        "questions": 0.0,  # the "?" is in the prompt, not the response
        "urls": 1 / 3,
        "code_blocks": 1 / 2,  # one fenced block = two ```
        "sign_off": 1.0,  # "Hope this helps" at the end
        "flattery": 1.0,  # "Great question" at the start
    }
    assert tuple(expected) == FORMAT_FEATURE_NAMES
    assert dense == pytest.approx(list(expected.values()), abs=1e-6)


def test_format_features_are_clipped_and_need_the_right_place() -> None:
    # Given many exclamations, a sign-off far from the end and flattery far from the start
    response = "Hope this helps! " + "!" * 12 + " word" * 100 + " great question"
    dense = featurize([""], [response], SMALL).toarray()[0, -10:]
    named = dict(zip(FORMAT_FEATURE_NAMES, dense.tolist(), strict=True))
    # Then the count is clipped to 1 and neither phrase counts where it was written
    assert named["exclamations"] == 1.0
    assert named["sign_off"] == 0.0
    assert named["flattery"] == 0.0
    # And a phrase inside a longer word is not a phrase
    unhappy = featurize([""], ["That was unhappy coding"], SMALL).toarray()[0, -10:]
    assert dict(zip(FORMAT_FEATURE_NAMES, unhappy.tolist(), strict=True))["sign_off"] == 0.0


def test_prompt_words_and_response_words_land_in_different_columns() -> None:
    # Given the same word once as a prompt and once as a response
    as_prompt = featurize(["sunflower"], [""], SMALL)
    as_response = featurize([""], ["sunflower"], SMALL)
    n = SMALL.n_features
    hashed_prompt = {c for c in nonzero_columns(as_prompt) if c < 3 * n}
    hashed_response = {c for c in nonzero_columns(as_response) if c < 3 * n}
    # Then the prompt word is in the prompt block only, the response word in the response blocks
    assert hashed_prompt
    assert all(2 * n <= c < 3 * n for c in hashed_prompt)
    assert hashed_response
    assert all(c < 2 * n for c in hashed_response)
    assert not hashed_prompt & hashed_response


def test_text_blocks_equal_plain_hashing_vectorizers() -> None:
    # Given texts with capitals, punctuation, emojis, short words and odd whitespace
    responses = [
        "Hello, World! I'm OK 😊 -- see x.y/z?\n\tTabs  and\u00a0NBSP",
        "",
        "a",
        "Sunflowers sunflowers SUNFLOWERS",
    ]
    prompts = ["Q?", "", "how are you", "Plant 🌻 tips"]
    n = SMALL.n_features
    matrix = featurize(prompts, responses, SMALL).toarray()

    def reference(analyzer: str, ngrams: tuple[int, int], texts: list[str]) -> Any:
        vectorizer = HashingVectorizer(
            n_features=n,
            analyzer=analyzer,
            ngram_range=ngrams,
            token_pattern=training.TOKEN_PATTERN,
            alternate_sign=False,
            norm="l2",
        )
        return vectorizer.transform(texts).toarray()

    # Then each block is what sklearn's HashingVectorizer computes directly (the char block is
    # computed word by word for speed; this pins it to the straightforward definition)
    assert matrix[:, :n] == pytest.approx(reference("word", (1, 2), responses), abs=1e-6)
    assert matrix[:, n : 2 * n] == pytest.approx(reference("char_wb", (3, 5), responses), abs=1e-6)
    assert matrix[:, 2 * n : 3 * n] == pytest.approx(reference("word", (1, 1), prompts), abs=1e-6)


def test_a_row_is_featurized_the_same_whatever_it_is_batched_with() -> None:
    # Given rows featurized together and one by one
    prompts, responses, _, _ = planted_rows(30, seed=14)
    together = featurize(prompts, responses, SMALL)
    for row in (0, 17, 29):
        alone = featurize(prompts[row : row + 1], responses[row : row + 1], SMALL)
        # Then the stored row is identical, column order included (float32 sums follow it)
        start, end = together.indptr[row], together.indptr[row + 1]
        assert alone.indices.tolist() == together.indices[start:end].tolist()
        assert alone.data.tolist() == together.data[start:end].tolist()


def test_exposures_of_one_answer_get_that_answers_row() -> None:
    # Given a batch where answers repeat (the same answer shown to several viewers), in an
    # order where a repeat comes before and after other rows
    prompts, responses, _, _ = planted_rows(6, seed=15)
    order = [3, 0, 3, 5, 0, 1, 3, 5]
    batch = featurize([prompts[i] for i in order], [responses[i] for i in order], SMALL)
    # Then each row is exactly the row its answer has alone, in the batch's order
    for row, answer in enumerate(order):
        alone = featurize(prompts[answer : answer + 1], responses[answer : answer + 1], SMALL)
        start, end = batch.indptr[row], batch.indptr[row + 1]
        assert alone.indices.tolist() == batch.indices[start:end].tolist()
        assert alone.data.tolist() == batch.data[start:end].tolist()
    assert batch.shape == (len(order), alone.shape[1])


def test_emojis_are_word_tokens() -> None:
    # Given a response that is a single emoji (sklearn's default pattern would find no token)
    config = FeatureConfig(n_features=2**14, word_ngrams=(1, 1), use_char=False)
    namer = FeatureNamer(config)
    namer.observe([""], ["so nice 😊"])
    # Then it has a word column of its own, which the namer can name
    assert namer.name(column_of("😊", config)) == "w:😊"


# --- FeatureNamer -----------------------------------------------------------------------------


def test_namer_names_a_column_by_its_token() -> None:
    # Given a namer that has seen a response and a prompt
    config = FeatureConfig(n_features=2**14, word_ngrams=(1, 1), use_char=False)
    namer = FeatureNamer(config)
    namer.observe(["garden tips"], ["hope it grows"])
    # Then the column `featurize` uses for a word has that word's name
    assert namer.name(column_of("hope", config)) == "w:hope"
    # And a prompt word is named in the prompt block
    prompt_columns = nonzero_columns(
        featurize(["garden"], [""], config)[:, : 2 * config.n_features]
    )
    assert [namer.name(c) for c in prompt_columns] == ["p:garden"]
    # And dense columns carry the format feature names; an unseen column is "?"
    total = feature_count(config)
    assert [namer.name(c) for c in range(total - 10, total)] == list(FORMAT_FEATURE_NAMES)
    assert namer.name(column_of("never", config)) == "?"
    with pytest.raises(IndexError):
        namer.name(total)


def test_namer_names_bigrams_and_char_ngrams() -> None:
    config = FeatureConfig(n_features=2**14)
    namer = FeatureNamer(config)
    namer.observe(["garden"], ["hope this"])
    bigram = featurize([""], ["hope this"], config)[:, : config.n_features]
    names = {namer.name(c) for c in nonzero_columns(bigram)}
    assert names == {"w:hope", "w:this", "w:hope this"}
    chars = featurize([""], ["hope"], config)[:, config.n_features : 2 * config.n_features]
    char_names = {namer.name(config.n_features + c) for c in nonzero_columns(chars)}
    prompt = featurize(["garden"], [""], config)[:, : 3 * config.n_features]
    assert [namer.name(c) for c in nonzero_columns(prompt)] == ["p:garden"]
    # " hope " -> 3-grams " ho", "hop", "ope", "pe "; 4-grams " hop", "hope", "ope "; 5-grams
    # " hope", "hope "
    assert char_names == {
        f'c:"{gram}"'
        for gram in (" ho", "hop", "ope", "pe ", " hop", "hope", "ope ", " hope", "hope ")
    }


def test_namer_joins_colliding_tokens() -> None:
    # Given 40 words hashed into 16 columns: some columns must hold several words
    words = [f"word{i}" for i in range(40)]
    namer = FeatureNamer(TINY)
    namer.observe([""], [" ".join(words)])
    by_column: dict[int, list[str]] = {}
    for word in words:
        by_column.setdefault(column_of(word, TINY), []).append(word)
    column, sharing = next((c, ws) for c, ws in by_column.items() if 2 <= len(ws) <= 4)
    # Then that column's name lists every word that landed in it
    assert set(namer.name(column).split(" / ")) == {f"w:{w}" for w in sharing}


def test_namer_is_bounded_and_keeps_frequent_tokens() -> None:
    # Given a budget of 10 tokens over 2 views (5 each) and 30 distinct response words
    config = FeatureConfig(n_features=2**14, word_ngrams=(1, 1), use_char=False)
    namer = FeatureNamer(config, max_tokens=10)
    rare = " ".join(f"rare{i}" for i in range(30))
    namer.observe(["p1", "p2"], [rare + " common " * 5, "common"])
    # Then no more than the budget is remembered, and the most frequent word is among them
    assert len(namer) <= 10
    assert namer.name(column_of("common", config)) != "?"
    # And a full namer ignores further rows
    for _ in range(3):
        namer.observe(["x"], [" ".join(f"more{i}" for i in range(30))])
    assert len(namer) <= 10


# --- viewer_weight ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("stats", "expected"),
    [
        (ViewerStats(exposures=10, loves=3), 1.0),  # normal viewer
        (ViewerStats(exposures=400, loves=100), 0.5),  # 200 / 400: total weight is the cap
        (ViewerStats(exposures=200, loves=50), 1.0),  # exactly at the cap
        (ViewerStats(exposures=10, loves=0), 0.25),  # never loves anything
        (ViewerStats(exposures=10, loves=10), 0.25),  # loves everything
        (ViewerStats(exposures=4, loves=4), 1.0),  # too few exposures to call uniform
        (ViewerStats(exposures=1000, loves=0), 0.05),  # capped (0.2) and uniform (x 0.25)
        (ViewerStats(exposures=0, loves=0), 1.0),
    ],
)
def test_viewer_weight(stats: ViewerStats, expected: float) -> None:
    assert viewer_weight(stats) == pytest.approx(expected)


def test_viewer_weight_parameters() -> None:
    stats = ViewerStats(exposures=50, loves=50)
    assert viewer_weight(stats, cap=25, uniform_factor=0.5) == pytest.approx(25 / 50 * 0.5)
    assert viewer_weight(stats, min_for_uniform=51) == 1.0


# --- fit_p_love / predict_p_love --------------------------------------------------------------


def test_planted_signal_is_recovered_and_named() -> None:
    # Given exposures where answers mentioning "sunflower" (40%) are loved with p=0.9, others 0.05.
    # Oracle ROC-AUC: positives are marked with P=.36/.39=.923, negatives with P=.04/.61=.066;
    # AUC = .923*.934 + (.923*.066 + .077*.934)/2 = .93, so a good model lands near 0.93.
    prompts, responses, labels, _ = planted_rows(5000, seed=1)
    split = temporal_split_index(len(responses))
    namer = FeatureNamer(SMALL)

    # When P[Love] is trained on the older 80% (several epochs: the data is small)
    classifier = fit_p_love(
        lambda: batches_of(prompts[:split], responses[:split], labels[:split], size=500),
        config=SMALL,
        epochs=3,
        namer=namer,
    )
    predictions = predict_p_love(classifier, prompts[split:], responses[split:], SMALL)
    metrics = evaluate_p_love(labels[split:], predictions)

    # Then the held-out ranking is good, the probabilities are calibrated (the oracle's log loss
    # is 0.22; sklearn's default "optimal" step schedule gets about 2 here) and the marker is
    # among the heaviest positive features
    assert metrics["roc_auc"] > 0.85
    assert metrics["ece"] < 0.1
    assert metrics["log_loss"] < 0.3
    positive = [item["feature"] for item in top_features(classifier.coef_, namer)["positive"]]
    assert "w:sunflower" in positive


def test_reward_hacking_features_are_visible() -> None:
    # Given answers ending with a sign-off and emojis that are loved far more often
    prompts, responses, labels, _ = planted_rows(
        4000, seed=2, marker="", suffix=" Hope this helps! 😊😊"
    )
    namer = FeatureNamer(SMALL)
    classifier = fit_p_love(
        lambda: batches_of(prompts, responses, labels, size=500),
        config=SMALL,
        epochs=3,
        namer=namer,
    )
    # Then the format features "sign_off" and an emoji feature are among the heaviest positives
    positive = [item["feature"] for item in top_features(classifier.coef_, namer)["positive"]]
    assert "sign_off" in positive
    assert "emojis" in positive or "w:😊" in positive


@pytest.mark.parametrize(
    ("rows", "expected"), [(0, 1), (100, 20), (4_000, 5), (20_000, 1), (1_000_000, 1)]
)
def test_suggested_epochs(rows: int, expected: int) -> None:
    assert training.suggested_epochs(rows) == expected


def test_fit_p_love_runs_epochs_and_reports_batches() -> None:
    # Given 1,050 rows in batches of 500 (500, 500, 50) and a spy on batches() and observe()
    prompts, responses, labels, _ = planted_rows(1050, seed=3)
    calls: list[int] = []
    rows_seen: list[int] = []

    def batches() -> Iterator[Batch]:
        calls.append(1)
        return batches_of(prompts, responses, labels, size=500)

    class SpyNamer(FeatureNamer):
        observed = 0

        def observe(self, prompts: Any, responses: Any) -> None:
            self.observed += len(responses)
            super().observe(prompts, responses)

    namer = SpyNamer(SMALL)
    # When trained for 3 epochs
    classifier = fit_p_love(batches, config=SMALL, epochs=3, on_batch=rows_seen.append, namer=namer)
    # Then batches() ran once per epoch, on_batch got each batch's rows, the namer saw epoch one
    assert len(calls) == 3
    assert rows_seen == [500, 500, 50] * 3
    assert namer.observed == 1050
    assert list(classifier.classes_) == [0, 1]
    assert classifier.coef_.shape == (1, feature_count(SMALL))


def test_fit_p_love_propagates_on_batch_errors() -> None:
    prompts, responses, labels, _ = planted_rows(1000, seed=4)
    rows_seen: list[int] = []

    class Cancelled(Exception):
        pass

    def on_batch(rows: int) -> None:
        rows_seen.append(rows)
        if len(rows_seen) == 2:
            raise Cancelled

    with pytest.raises(Cancelled):
        fit_p_love(
            lambda: batches_of(prompts, responses, labels, size=100),
            config=SMALL,
            epochs=2,
            on_batch=on_batch,
        )
    assert rows_seen == [100, 100]


@pytest.mark.parametrize("label", [True, False])
def test_fit_p_love_needs_both_classes(label: bool) -> None:
    prompts, responses, _, _ = planted_rows(200, seed=5)
    labels = np.full(200, label)
    with pytest.raises(ValueError, match="only label"):
        fit_p_love(lambda: batches_of(prompts, responses, labels, size=50), config=SMALL)


def test_fit_p_love_skips_zero_weight_batches_but_needs_some_weight() -> None:
    # Given a batch whose viewers all got weight 0 (uniform_factor=0) and a normal batch
    prompts, responses, labels, _ = planted_rows(400, seed=15)
    weights = np.r_[np.zeros(200), np.ones(200)]
    rows_seen: list[int] = []
    classifier = fit_p_love(
        lambda: batches_of(prompts, responses, labels, size=200, weights=weights),
        config=SMALL,
        on_batch=rows_seen.append,
    )
    # Then training uses the other batch, and both are reported
    assert rows_seen == [200, 200]
    assert classifier.coef_.any()
    # And with no weight anywhere there is nothing to learn
    with pytest.raises(ValueError, match="weight 0"):
        fit_p_love(
            lambda: batches_of(prompts, responses, labels, size=200, weights=np.zeros(400)),
            config=SMALL,
        )


def test_fit_p_love_needs_rows() -> None:
    with pytest.raises(ValueError, match="no rows"):
        fit_p_love(lambda: iter([]), config=SMALL)


def test_sample_weights_decide_between_disagreeing_viewers() -> None:
    # Given two viewers judging the same kind of answers oppositely: Ann loves "sunflower" answers
    # and nothing else, Bob loves everything except them
    prompts, responses, _, marked = planted_rows(2000, seed=6, share=0.5)
    ann = np.arange(2000) % 2 == 0
    labels = np.where(ann, marked, ~marked)
    config = FeatureConfig(n_features=2**14, word_ngrams=(1, 1), use_char=False)
    namer = FeatureNamer(config)
    namer.observe(prompts, responses)
    column = column_of("sunflower", config)

    def marker_weight(ann_weight: float, bob_weight: float) -> float:
        weights = np.where(ann, ann_weight, bob_weight)
        classifier = fit_p_love(
            lambda: batches_of(prompts, responses, labels, size=500, weights=weights),
            config=config,
            epochs=3,
        )
        return float(classifier.coef_[0, column])

    # Then whoever carries the weight decides the sign of the marker's coefficient
    assert marker_weight(1.0, 0.05) > 0
    assert marker_weight(0.05, 1.0) < 0


def test_batch_rejects_columns_of_different_lengths() -> None:
    with pytest.raises(ValueError, match="differ"):
        Batch(["p"], ["r", "s"], np.array([True, False]), np.ones(2))
    assert Batch(["p"], ["r"], np.array([True])).weights.tolist() == [1.0]


def test_predict_p_love_in_chunks_equals_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    prompts, responses, labels, _ = planted_rows(600, seed=7)
    classifier = fit_p_love(lambda: batches_of(prompts, responses, labels, size=300), config=SMALL)
    at_once = predict_p_love(classifier, prompts, responses, SMALL)
    monkeypatch.setattr(training, "CHUNK_ROWS", 7)
    chunked = predict_p_love(classifier, prompts, responses, SMALL)
    assert chunked == pytest.approx(at_once)
    assert ((at_once >= 0) & (at_once <= 1)).all()
    assert at_once.shape == (600,)


# --- evaluate_p_love --------------------------------------------------------------------------

LABELS = np.array([1, 0, 1, 0, 1])
PREDICTIONS = np.array([0.9, 0.7, 0.6, 0.2, 0.3])


def assert_plain_json(value: Any) -> None:
    """Only the types json.dumps writes without help (no numpy scalars)."""
    if isinstance(value, dict):
        for key, item in value.items():
            assert type(key) is str
            assert_plain_json(item)
    elif isinstance(value, list):
        for item in value:
            assert_plain_json(item)
    else:
        assert value is None or type(value) in (int, float, str, bool), (value, type(value))


def test_evaluate_p_love_hand_made_case() -> None:
    metrics = evaluate_p_love(LABELS, PREDICTIONS, versions=["b", "a", "b", "a", "a"], bins=2)
    assert_plain_json(metrics)
    json.dumps(metrics)
    assert metrics["rows"] == 5
    assert metrics["base_rate"] == pytest.approx(3 / 5)
    # ROC-AUC: 6 (positive, negative) pairs; 0.9>0.7, 0.9>0.2, 0.6>0.2, 0.3>0.2 are ordered right,
    # 0.6<0.7 and 0.3<0.7 are not -> 4/6
    assert metrics["roc_auc"] == pytest.approx(4 / 6)
    # Average precision: ranked 0.9(+) 0.7(-) 0.6(+) 0.3(+) 0.2(-); precision at each positive is
    # 1/1, 2/3, 3/4 -> (1 + 2/3 + 3/4) / 3
    assert metrics["pr_auc"] == pytest.approx((1 + 2 / 3 + 3 / 4) / 3)
    # Log loss: -(ln .9 + ln .3 + ln .6 + ln .8 + ln .3) / 5
    #         = (0.105361 + 1.203973 + 0.510826 + 0.223144 + 1.203973) / 5 = 0.649455
    assert metrics["log_loss"] == pytest.approx(0.649455, abs=1e-6)
    # Brier: (0.1² + 0.7² + 0.4² + 0.2² + 0.7²) / 5 = (.01 + .49 + .16 + .04 + .49) / 5 = 0.238
    assert metrics["brier"] == pytest.approx(0.238)
    # Bins [0, .5): 0.2(-), 0.3(+) -> mean .25, observed .5
    #      [.5, 1]: 0.9(+), 0.7(-), 0.6(+) -> mean 2.2/3, observed 2/3
    assert metrics["reliability"] == [
        {
            "bin_low": 0.0,
            "bin_high": 0.5,
            "mean_predicted": pytest.approx(0.25),
            "observed": pytest.approx(0.5),
            "count": 2,
        },
        {
            "bin_low": 0.5,
            "bin_high": 1.0,
            "mean_predicted": pytest.approx(2.2 / 3),
            "observed": pytest.approx(2 / 3),
            "count": 3,
        },
    ]
    # ECE = 2/5 * |.5 - .25| + 3/5 * |2/3 - 2.2/3| = 0.1 + 0.04 = 0.14
    assert metrics["ece"] == pytest.approx(0.14)
    # Version a: rows 1, 3, 4 -> predicted (.7 + .2 + .3)/3 = .4, observed 1/3
    # Version b: rows 0, 2 -> predicted (.9 + .6)/2 = .75, observed 1
    assert metrics["by_version"] == [
        {"version": "a", "rows": 3, "mean_predicted": pytest.approx(0.4), "observed": 1 / 3},
        {"version": "b", "rows": 2, "mean_predicted": pytest.approx(0.75), "observed": 1.0},
    ]
    # Histogram: positives 0.3 | 0.9, 0.6; negatives 0.2 | 0.7
    assert metrics["histogram"] == {
        "edges": [0.0, 0.5, 1.0],
        "positive": [1, 2],
        "negative": [1, 1],
    }


def test_evaluate_p_love_skips_empty_bins_and_puts_one_in_the_last_bin() -> None:
    metrics = evaluate_p_love(np.array([True, False, True]), np.array([1.0, 0.05, 0.95]))
    assert [(b["bin_low"], b["count"]) for b in metrics["reliability"]] == [(0.0, 1), (0.9, 2)]
    assert metrics["histogram"]["positive"] == [0] * 9 + [2]
    assert metrics["by_version"] == []


def test_evaluate_p_love_with_one_class_has_no_auc() -> None:
    metrics = evaluate_p_love(np.array([0, 0, 0]), np.array([0.1, 0.2, 0.3]))
    assert metrics["roc_auc"] is None
    assert metrics["pr_auc"] is None
    assert metrics["base_rate"] == 0.0
    # -(ln .9 + ln .8 + ln .7) / 3 = (0.105361 + 0.223144 + 0.356675) / 3 = 0.228393
    assert metrics["log_loss"] == pytest.approx(0.228393, abs=1e-6)


def test_evaluate_p_love_with_no_rows() -> None:
    metrics = evaluate_p_love(np.array([]), np.array([]), versions=[])
    assert_plain_json(metrics)
    assert metrics["rows"] == 0
    assert metrics["roc_auc"] is None
    assert metrics["reliability"] == []
    assert sum(metrics["histogram"]["positive"]) == 0


@pytest.mark.parametrize(
    ("labels", "predictions", "versions"),
    [
        ([1, 0], [0.5], None),
        ([1, 0], [0.5, 1.5], None),
        ([1, 2], [0.5, 0.5], None),
        ([1, 0], [0.5, float("nan")], None),
        ([1, 0], [0.5, 0.5], ["a"]),
    ],
)
def test_evaluate_p_love_rejects_bad_input(
    labels: list[int], predictions: list[float], versions: list[str] | None
) -> None:
    with pytest.raises(ValueError, match=r"labels|predictions|versions"):
        evaluate_p_love(np.array(labels), np.array(predictions), versions=versions)


# --- top_features -----------------------------------------------------------------------------


def test_top_features_prefers_named_columns() -> None:
    # Given a namer that knows "hope" and "sunny", and coefficients where the largest one is unnamed
    config = FeatureConfig(n_features=2**10, word_ngrams=(1, 1), use_char=False)
    namer = FeatureNamer(config)
    namer.observe([""], ["hope sunny"])
    hope, sunny = column_of("hope", config), column_of("sunny", config)
    assert hope != sunny
    unknown = next(c for c in range(config.n_features) if namer.name(c) == "?")
    log_length = feature_count(config) - len(FORMAT_FEATURE_NAMES)
    coefficients = np.zeros((1, feature_count(config)))
    coefficients[0, [unknown, hope, log_length, sunny]] = [5.0, 2.0, 1.0, -3.0]

    # Then with k=2 the named columns win over the heavier unknown one
    top = top_features(coefficients, namer, k=2)
    assert top == {
        "positive": [
            {"feature": "w:hope", "weight": 2.0},
            {"feature": "log_length", "weight": 1.0},
        ],
        "negative": [{"feature": "w:sunny", "weight": -3.0}],
    }
    # And when there are not enough named ones, unknown columns fill the list in weight order
    assert [item["feature"] for item in top_features(coefficients[0], namer, k=5)["positive"]] == [
        "?",
        "w:hope",
        "log_length",
    ]


# --- temporal_split_index ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rows", "fraction", "expected"),
    [
        (10, 0.2, 8),
        (5, 0.5, 3),  # 2.5 test rows: the split point rounds half up
        (2, 0.9, 1),  # both sides keep a row
        (2, 0.01, 1),
        (1000, 0.25, 750),
        (1, 0.2, 1),
        (0, 0.2, 0),
    ],
)
def test_temporal_split_index(rows: int, fraction: float, expected: int) -> None:
    assert temporal_split_index(rows, fraction) == expected


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.1, 1.5])
def test_temporal_split_index_rejects_fraction(fraction: float) -> None:
    with pytest.raises(ValueError, match="test_fraction"):
        temporal_split_index(10, fraction)


# --- preference -------------------------------------------------------------------------------


def preference_pairs(
    n: int, *, seed: int
) -> tuple[tuple[list[str], list[str]], tuple[list[str], list[str]]]:
    """Pairs sharing a prompt: chosen answers are longer and mention "sunflower"."""
    rng = random.Random(seed)
    prompts = [" ".join(rng.choices(PROMPT_WORDS, k=6)) for _ in range(n)]
    chosen = [texts_with(rng, "sunflower", words=rng.randint(25, 40)) for _ in range(n)]
    rejected = [texts_with(rng, None, words=rng.randint(10, 25)) for _ in range(n)]
    return (prompts, chosen), (prompts, rejected)


def test_preference_model_ranks_held_out_pairs() -> None:
    chosen, rejected = preference_pairs(400, seed=8)
    train = slice(0, 300)
    test = slice(300, 400)
    model = fit_preference(
        (chosen[0][train], chosen[1][train]), (rejected[0][train], rejected[1][train]), config=SMALL
    )
    accuracy = pairwise_accuracy(
        model, (chosen[0][test], chosen[1][test]), (rejected[0][test], rejected[1][test]), SMALL
    )
    assert accuracy is not None
    assert accuracy > 0.9
    assert isinstance(model, LogisticRegression)
    assert not model.fit_intercept


def test_preference_model_is_symmetric() -> None:
    # Given the same pairs with chosen and rejected swapped
    chosen, rejected = preference_pairs(60, seed=9)
    forward = fit_preference(chosen, rejected, config=SMALL)
    backward = fit_preference(rejected, chosen, config=SMALL)
    # Then the models are mirror images: every reward difference flips sign
    difference = preference_rewards(forward, *chosen, SMALL) - preference_rewards(
        forward, *rejected, SMALL
    )
    mirrored = preference_rewards(backward, *chosen, SMALL) - preference_rewards(
        backward, *rejected, SMALL
    )
    assert (difference > 0).all()
    assert mirrored == pytest.approx(-difference, rel=1e-3, abs=1e-6)


def test_preference_needs_two_pairs() -> None:
    chosen, rejected = preference_pairs(1, seed=10)
    with pytest.raises(ValueError, match="at least 2 pairs"):
        fit_preference(chosen, rejected, config=SMALL)
    with pytest.raises(ValueError, match="same length"):
        fit_preference(chosen, (rejected[0], rejected[1] * 2), config=SMALL)


def test_pairwise_accuracy_counts_ties_half_and_none_without_pairs() -> None:
    chosen, rejected = preference_pairs(20, seed=11)
    model = fit_preference(chosen, rejected, config=SMALL)
    assert pairwise_accuracy(model, ([], []), ([], []), SMALL) is None
    # Identical chosen and rejected answers always tie
    assert pairwise_accuracy(model, chosen, chosen, SMALL) == 0.5


# --- artifacts --------------------------------------------------------------------------------


class Tally(OrderedDict[str, int]):
    """A type the artifact allowlist does not know."""


def test_p_love_artifact_round_trip(tmp_path: Path) -> None:
    prompts, responses, labels, _ = planted_rows(400, seed=12)
    classifier = fit_p_love(lambda: batches_of(prompts, responses, labels, size=200), config=SMALL)
    path = tmp_path / "p_love.skops"
    save_artifact(classifier, path)
    restored = load_artifact(str(path))
    assert predict_p_love(restored, prompts, responses, SMALL) == pytest.approx(
        predict_p_love(classifier, prompts, responses, SMALL)
    )


def test_preference_artifact_round_trip_through_bytes() -> None:
    chosen, rejected = preference_pairs(30, seed=13)
    model = fit_preference(chosen, rejected, config=SMALL)
    restored = loads_artifact(dumps_artifact(model))
    assert preference_rewards(restored, *chosen, SMALL) == pytest.approx(
        preference_rewards(model, *chosen, SMALL)
    )


@pytest.mark.parametrize(
    ("make", "named"),
    [
        (lambda: {"counts": Tally(a=1)}, "Tally"),
        (
            lambda: make_pipeline(FunctionTransformer(np.log1p), LogisticRegression()),
            "FunctionTransformer",
        ),
    ],
)
def test_load_artifact_refuses_other_types(tmp_path: Path, make: Any, named: str) -> None:
    path = tmp_path / "other.skops"
    sio.dump(make(), path)
    with pytest.raises(ValueError, match=named):
        load_artifact(path)


def test_load_artifact_refuses_a_file_that_is_not_skops(tmp_path: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(b"\x80\x04not a zip")
    with pytest.raises(ValueError, match="not a skops"):
        load_artifact(path)


# --- Honest baselines -------------------------------------------------------------------------


def test_baseline_predictions_by_hand() -> None:
    # Given four training rows: versions a, a, a, b; loved, not, loved, not (base rate 1/2)
    train = BaselineRows(
        lengths=np.array([10.0, 100.0, 1000.0, 50.0]),
        versions=["a", "a", "a", "b"],
        labels=np.array([True, False, True, False]),
    )
    test = BaselineRows(lengths=np.array([20.0, 20.0, 20.0]), versions=["a", "b", "c"])
    # When the baselines predict three rows of versions a, b and one never seen
    predicted = baseline_predictions(train, test)
    # Then the base rate is 1/2 everywhere; a version's rate is pulled towards it by one row:
    # a = (2 + 0.5) / (3 + 1), b = (0 + 0.5) / (1 + 1), an unseen version gets the base rate
    assert predicted["base_rate"].tolist() == [0.5, 0.5, 0.5]
    assert predicted["model_version_rate"] == pytest.approx([0.625, 0.25, 0.5])
    assert set(predicted) == set(training.BASELINE_NAMES)


def test_the_length_baseline_follows_the_length() -> None:
    # Given long answers loved and short ones not
    lengths = np.array([20.0, 30.0, 40.0, 400.0, 500.0, 600.0, 35.0, 450.0])
    labels = lengths > 100
    labels[[2, 5]] = ~labels[[2, 5]]  # not perfectly separable
    train = BaselineRows(lengths, ["v"] * 8, labels)
    test = BaselineRows(np.array([10.0, 100.0, 1000.0]), ["v"] * 3)
    # Then its P[Love] rises with the length
    p = baseline_predictions(train, test)["length"]
    assert p[0] < p[1] < p[2]


def test_compare_to_baselines_by_hand() -> None:
    # Given four held-out rows, a model that ranks them perfectly and two baselines
    labels = np.array([1, 0, 1, 0])
    model = np.array([0.9, 0.1, 0.8, 0.3])
    baselines = {
        "base_rate": np.full(4, 0.5),
        "length": np.array([0.6, 0.4, 0.3, 0.7]),
    }
    # When they are compared
    table = compare_to_baselines(labels, model, baselines)
    # Then the model: AUC 1, log loss -(ln .9 + ln .9 + ln .8 + ln .7) / 4
    model_loss = -(2 * math.log(0.9) + math.log(0.8) + math.log(0.7)) / 4
    assert table["model"] == {"roc_auc": 1.0, "log_loss": pytest.approx(model_loss)}
    # The base rate: AUC 1/2, log loss ln 2
    base = table["by_baseline"]["base_rate"]
    assert base["roc_auc"] == 0.5
    assert base["log_loss"] == pytest.approx(math.log(2))
    assert base["roc_auc_lift"] == pytest.approx(0.5)
    assert base["log_loss_lift"] == pytest.approx(math.log(2) - model_loss)
    # Length: of the four (loved, not) pairs only 0.6 > 0.4 is ordered right, AUC 1/4
    length = table["by_baseline"]["length"]
    assert length["roc_auc"] == 0.25
    assert length["log_loss"] == pytest.approx(-(2 * math.log(0.6) + 2 * math.log(0.3)) / 4)
    # And the best baseline is the base rate, which the model beats
    assert table["best_baseline"] == "base_rate"
    assert table["behind"] == []
    assert table["beats_baselines"] is True
    assert_plain_json(table)


def test_a_model_no_better_than_a_baseline_is_behind_it() -> None:
    # Given an overconfident model that ranks no better than chance (AUC 1/2, log loss ~2.3)
    labels = np.array([1, 0, 1, 0])
    model = np.array([0.99, 0.01, 0.01, 0.99])
    table = compare_to_baselines(labels, model, {"base_rate": np.full(4, 0.5)})
    # Then it is behind the base rate
    assert table["model"]["roc_auc"] == 0.5
    assert table["by_baseline"]["base_rate"]["roc_auc_lift"] == 0.0
    assert table["by_baseline"]["base_rate"]["log_loss_lift"] < 0
    assert table["behind"] == ["base_rate"]
    assert table["beats_baselines"] is False


def test_longer_wins_accuracy_counts_ties_half() -> None:
    # chosen longer, chosen shorter, a tie: (1 + 0 + 0.5) / 3
    assert longer_wins_accuracy(["aaa", "b", "cc"], ["a", "bbb", "dd"]) == pytest.approx(0.5)
    assert longer_wins_accuracy([], []) is None
    with pytest.raises(ValueError, match="rejected"):
        longer_wins_accuracy(["a"], [])


# --- Choosing on a validation slice -----------------------------------------------------------


def length_rows(
    n: int, *, seed: int, slope: float = 2.5
) -> tuple[list[str], list[str], np.ndarray]:
    """Responses of 3 to 80 filler words, loved with a probability rising with their length."""
    rng = random.Random(seed)
    prompts, responses, labels = [], [], []
    for _ in range(n):
        text = texts_with(rng, None, words=rng.randint(3, 80))
        x = math.log1p(len(text)) - math.log1p(150)
        prompts.append(" ".join(rng.choices(PROMPT_WORDS, k=4)))
        responses.append(text)
        labels.append(rng.random() < 1 / (1 + math.exp(-slope * x)))
    return prompts, responses, np.array(labels)


def test_the_length_model_is_an_exact_logistic_regression_on_the_length() -> None:
    # Given rows whose Love follows the length
    prompts, responses, labels = length_rows(300, seed=4)
    formats = training.format_features(responses)
    # When the length-only group is fitted with (almost) no penalty
    model = training.fit_format_model(
        formats, labels, np.ones(300), config=SMALL, group="length", alpha=1e-9
    )
    # Then its only weight is the length's, and it predicts as a plain logistic regression on
    # the log-length column does
    weights = model.coef_.ravel()
    assert weights.size == feature_count(SMALL)
    assert np.flatnonzero(weights).tolist() == [feature_count(SMALL) - len(FORMAT_FEATURE_NAMES)]
    column = formats[:, :1].astype(np.float64)
    plain = LogisticRegression(C=1e6, max_iter=1000).fit(column, labels)
    assert predict_p_love(model, prompts, responses, SMALL) == pytest.approx(
        plain.predict_proba(column)[:, 1], abs=1e-3
    )


@pytest.mark.parametrize("seed", [5, 6, 7])
def test_on_length_data_the_chosen_model_is_as_good_as_the_length_baseline(seed: int) -> None:
    # Given a few hundred rows where length is all there is, split by time, the newest fifth
    # of the training part kept for validation
    prompts, responses, labels = length_rows(400, seed=seed)
    split = temporal_split_index(400)
    at = temporal_split_index(split)
    features = featurize(prompts[:split], responses[:split], SMALL)
    fit = Sample(features[:at], labels[:at], np.ones(at))
    validation = Sample(features[at:], labels[at:split], np.ones(split - at))
    # When the grid is searched and the chosen setting fitted on the whole training part
    selection = select_p_love(fit, validation, config=SMALL, alphas=training.ALPHA_GRID, epochs=20)
    assert len(selection.grid) == len(training.ALPHA_GRID) * len(training.FEATURE_GROUPS)
    model = fit_p_love(
        lambda: [Batch(prompts[:split], responses[:split], labels[:split])],
        config=SMALL,
        epochs=20,
        alpha=selection.alpha,
        group=selection.group,
    )
    predicted = predict_p_love(model, prompts[split:], responses[split:], SMALL)
    # Then on the held-out rows it is within noise of the length-only baseline
    lengths = np.array([len(r) for r in responses], dtype=np.float64)
    baselines = baseline_predictions(
        BaselineRows(lengths[:split], ["v"] * split, labels[:split]),
        BaselineRows(lengths[split:], ["v"] * (400 - split)),
    )
    table = compare_to_baselines(labels[split:], predicted, baselines)
    length = table["by_baseline"]["length"]
    assert length["roc_auc_lift"] >= -0.02, table
    assert length["log_loss_lift"] >= -0.02, table


def test_fit_p_love_refuses_an_unknown_group() -> None:
    with pytest.raises(ValueError, match="feature group"):
        fit_p_love(lambda: [], config=SMALL, group="words")


# --- Personalised P[Love] ---------------------------------------------------------------------


def viewer_rows(
    viewers: int, per_viewer: int, *, seed: int
) -> tuple[list[str], list[str], np.ndarray, list[str]]:
    """Even viewers love long answers, odd ones short answers."""
    rng = random.Random(seed)
    prompts, responses, labels, who = [], [], [], []
    for v in range(viewers):
        for _ in range(per_viewer):
            text = texts_with(rng, None, words=rng.randint(3, 80))
            x = 3.0 * (math.log1p(len(text)) - math.log1p(150))
            p = 1 / (1 + math.exp(-x if v % 2 == 0 else x))
            prompts.append("how do I cook")
            responses.append(text)
            labels.append(rng.random() < p)
            who.append(f"viewer-{v}")
    order = rng.sample(range(len(who)), len(who))  # interleaved in time
    return (
        [prompts[i] for i in order],
        [responses[i] for i in order],
        np.array(labels)[order],
        [who[i] for i in order],
    )


def personalised(
    prompts: list[str], responses: list[str], labels: np.ndarray, viewers: list[str], **kw: Any
) -> tuple[Any, training.ViewerAdjustments]:
    model = fit_p_love(
        lambda: [Batch(prompts, responses, labels)], config=SMALL, epochs=5, group="format"
    )
    features = featurize(prompts, responses, SMALL)
    adjustments = training.fit_viewer_adjustments(
        model.decision_function(features),
        training.format_features(responses),
        labels,
        training.viewer_keys(viewers),
        **{"strength": 1.0, **kw},
    )
    return model, adjustments


def test_per_viewer_adjustments_recover_opposite_tastes() -> None:
    # Given half the viewers loving long answers and half short ones
    prompts, responses, labels, viewers = viewer_rows(20, 50, seed=8)
    split = temporal_split_index(len(labels))
    model, adjustments = personalised(
        prompts[:split], responses[:split], labels[:split], viewers[:split]
    )
    # When the newest rows are scored without and with the viewers
    artifact = training.personal_artifact(model, adjustments)
    test = slice(split, None)
    plain = predict_p_love(model, prompts[test], responses[test], SMALL)
    mine, known = training.predict_p_love_for(
        artifact, prompts[test], responses[test], viewers[test], SMALL
    )
    figures = training.per_viewer_auc(labels[test], plain, mine, viewers[test], min_rows=5)
    # Then the global model is near chance and the personalised one far better, overall and
    # per viewer (figures: global ~0.5, personalised ~0.85)
    assert known.all()
    assert abs(roc_auc(labels[test], plain) - 0.5) < 0.1
    assert roc_auc(labels[test], mine) > roc_auc(labels[test], plain) + 0.25
    assert figures["viewers"] >= 15
    assert figures["personal"]["mean"] > figures["global"]["mean"] + 0.2


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float:
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(labels, scores))


def test_a_viewer_without_history_gets_the_global_prediction() -> None:
    prompts, responses, labels, viewers = viewer_rows(4, 30, seed=9)
    # Given viewer-3 seen only twice (fewer rows than an adjustment needs)
    few = [i for i, v in enumerate(viewers) if v == "viewer-3"][2:]
    keep = [i for i in range(len(viewers)) if i not in set(few)]
    model, adjustments = personalised(
        [prompts[i] for i in keep],
        [responses[i] for i in keep],
        labels[keep],
        [viewers[i] for i in keep],
    )
    artifact = training.personal_artifact(model, adjustments)
    texts = ["short answer", " ".join(["a much longer answer"] * 30)]
    plain = predict_p_love(model, ["q", "q"], texts, SMALL)
    # Then an unknown viewer, no viewer and a viewer with too little history get it exactly
    for who in ("stranger", None, "viewer-3"):
        p, known = training.predict_p_love_for(artifact, ["q", "q"], texts, [who, who], SMALL)
        assert p.tolist() == plain.tolist()
        assert not known.any()
    # And a viewer with history gets their own
    p, known = training.predict_p_love_for(
        artifact, ["q", "q"], texts, ["viewer-0", "viewer-0"], SMALL
    )
    assert known.all()
    assert p.tolist() != plain.tolist()


def test_adjustments_shrink_with_fewer_labels_and_a_stronger_penalty() -> None:
    prompts, responses, labels, viewers = viewer_rows(2, 200, seed=10)
    # Given viewer-0 with all 200 rows and viewer-2, the same taste, with 6 of them
    zero = [i for i, v in enumerate(viewers) if v == "viewer-0"]
    names = [v if i not in zero[:6] else "viewer-2" for i, v in enumerate(viewers)]
    _, weak = personalised(prompts, responses, labels, names, strength=1.0)
    _, strong = personalised(prompts, responses, labels, names, strength=16.0)
    keys = training.viewer_keys(["viewer-0", "viewer-2"])

    def size(adjustments: training.ViewerAdjustments, key: int) -> float:
        row = int(np.searchsorted(adjustments.keys, key))
        return float(np.abs(adjustments.coefficients[row]).sum())

    # Then the viewer with few labels moves less, and a stronger penalty moves everyone less
    assert size(weak, keys[1]) < size(weak, keys[0])
    assert size(strong, keys[0]) < size(weak, keys[0])
    assert size(strong, keys[1]) < size(weak, keys[1])


def test_a_personalised_artifact_round_trips_within_the_allowlist() -> None:
    prompts, responses, labels, viewers = viewer_rows(4, 30, seed=12)
    model, adjustments = personalised(prompts, responses, labels, viewers)
    artifact = training.personal_artifact(model, adjustments)
    restored = loads_artifact(dumps_artifact(artifact))
    assert training.is_personal(restored)
    before = training.predict_p_love_for(artifact, prompts, responses, viewers, SMALL)
    after = training.predict_p_love_for(restored, prompts, responses, viewers, SMALL)
    assert before[0].tolist() == after[0].tolist()
    assert before[1].tolist() == after[1].tolist()


def test_per_viewer_auc_by_hand() -> None:
    # Given viewer a with 4 rows of both labels, b with 4 rows of one label, c with 2 rows
    labels = np.array([1, 0, 1, 0, 1, 1, 1, 1, 1, 0])
    global_p = np.array([0.9, 0.8, 0.1, 0.2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    personal_p = np.array([0.9, 0.1, 0.8, 0.2, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5])
    viewers = ["a"] * 4 + ["b"] * 4 + ["c"] * 2
    figures = training.per_viewer_auc(labels, global_p, personal_p, viewers, min_rows=3)
    # Then only a counts: global AUC (0.9>0.8, 0.9>0.2, 0.1<0.8, 0.1<0.2) = 2/4, personal 1
    assert figures["viewers"] == 1
    assert figures["rows"] == 4
    assert figures["global"]["mean"] == 0.5
    assert figures["personal"]["mean"] == 1.0
    assert figures["improved"] == 1
    assert figures["personal"]["histogram"][-1] == 1
    assert_plain_json(figures)


def test_batch_rejects_viewers_of_another_length() -> None:
    with pytest.raises(ValueError, match="viewers"):
        Batch(["p"], ["r"], np.array([True]), viewers=["a", "b"])
