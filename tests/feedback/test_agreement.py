"""Inter-annotator agreement: Krippendorff's alpha, Cohen's kappa and pairwise kappa.

Expected values are worked out by hand in the comments. No database needed.
"""

from __future__ import annotations

import random
from collections.abc import Hashable

import pytest
from sklearn.metrics import cohen_kappa_score

from feedback.agreement import PairAgreement, cohen_kappa, krippendorff_alpha, pairwise_kappa

REL, PART, IRR = "relevant", "partial", "irrelevant"
ORDER = [IRR, PART, REL]

# Two coders, four units; units are (answer, document) pairs.
TWO_CODERS = {
    (1, 10): {"ann": REL, "bob": REL},
    (1, 11): {"ann": REL, "bob": PART},
    (2, 10): {"ann": IRR, "bob": IRR},
    (2, 12): {"ann": PART, "bob": PART},
}

# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", reliability data with
# missing values: observers A-D, units 1-12, values 1-5 (None = missing). Unit 12 has one value.
PAPER_DATA = {
    "A": [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    "B": [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    "C": [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    "D": [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
}
PAPER_LABELS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five"}
PAPER_ORDER = ["one", "two", "three", "four", "five"]


def paper_units() -> dict[int, dict[str, str]]:
    units: dict[int, dict[str, str]] = {unit: {} for unit in range(1, 13)}
    for coder, values in PAPER_DATA.items():
        for unit, value in enumerate(values, start=1):
            if value is not None:
                units[unit][coder] = PAPER_LABELS[value]
    return units


# --- Krippendorff's alpha ---------------------------------------------------------------------


@pytest.mark.parametrize("metric", ["nominal", "ordinal"])
def test_alpha_is_one_for_perfect_agreement(metric: str) -> None:
    # Given three coders agreeing on every unit, with more than one category in use
    units = {
        "u1": {"ann": REL, "bob": REL, "cy": REL},
        "u2": {"ann": IRR, "bob": IRR},
        "u3": {"bob": PART, "cy": PART},
    }
    # When / Then: no observed disagreement, some expected disagreement -> alpha = 1 - 0 = 1
    assert krippendorff_alpha(units, metric=metric, order=ORDER) == pytest.approx(1.0)  # type: ignore[arg-type]


def test_alpha_nominal_two_coders_by_hand() -> None:
    # Given TWO_CODERS: each unit has m_u = 2 values, so every ordered pair weighs 1/(2-1) = 1.
    # Coincidences: o_RR = 2 (unit 1, both orders), o_RP = o_PR = 1 (unit 2), o_II = 2, o_PP = 2.
    # Marginals: n_R = 2+1 = 3, n_P = 1+2 = 3, n_I = 2; n = 8.
    # Observed disagreement: o_RP + o_PR = 2.
    # Expected: sum_{c!=k} n_c n_k = n^2 - sum n_c^2 = 64 - (9 + 9 + 4) = 42.
    # alpha = 1 - (n-1) * 2 / 42 = 1 - 7 * 2 / 42 = 2/3
    assert krippendorff_alpha(TWO_CODERS) == pytest.approx(2 / 3)


def test_alpha_nominal_weights_pairs_by_values_in_unit() -> None:
    # Given a unit with three values (pairs weigh 1/(3-1) = 1/2) and one with three alike
    units = {
        "u1": {"ann": REL, "bob": REL, "cy": PART},
        "u2": {"ann": IRR, "bob": IRR, "cy": IRR},
    }
    # Unit 1 ordered pairs: (R,R) x2 -> o_RR = 1; (R,P) x2 -> o_RP = 1; (P,R) x2 -> o_PR = 1.
    # Unit 2: 6 ordered (I,I) pairs -> o_II = 3.
    # n_R = 2, n_P = 1, n_I = 3, n = 6. Observed: o_RP + o_PR = 2.
    # Expected: 36 - (4 + 1 + 9) = 22. alpha = 1 - 5 * 2 / 22 = 12/22 = 6/11
    assert krippendorff_alpha(units) == pytest.approx(6 / 11)


def test_alpha_is_negative_for_systematic_disagreement() -> None:
    # Given two coders who always pick opposite labels
    units = {"u1": {"ann": REL, "bob": IRR}, "u2": {"ann": IRR, "bob": REL}}
    # o_RI = o_IR = 2, n_R = n_I = 2, n = 4. Observed: 4. Expected: 16 - (4 + 4) = 8.
    # alpha = 1 - 3 * 4 / 8 = -0.5
    assert krippendorff_alpha(units) == pytest.approx(-0.5)


def test_alpha_ignores_units_with_a_single_value() -> None:
    # Given TWO_CODERS plus units only one coder labelled (all "irrelevant"); were they counted,
    # n_I and n would grow and alpha would move away from 2/3
    units: dict[Hashable, dict[str, str]] = {key: labels for key, labels in TWO_CODERS.items()}
    units.update({("solo", i): {"ann": IRR} for i in range(3)})
    units[("nobody", 0)] = {}
    # When / Then: unchanged from the hand-computed 2/3
    assert krippendorff_alpha(units) == pytest.approx(2 / 3)
    assert krippendorff_alpha(units, metric="ordinal", order=ORDER) == pytest.approx(0.79)


def test_alpha_nominal_matches_krippendorff_2011_example() -> None:
    # Given the paper's data (unit 12 has a single value, so 40 pairable values):
    # n_1 = 9, n_2 = 13, n_3 = 10, n_4 = 5, n_5 = 3; n = 40.
    # Off-diagonal coincidences sum to 8 (units 2, 6 and 8 disagree):
    #   unit 2 (2,2,3,2): 6 ordered (2,3)/(3,2) pairs / 3 = 2;
    #   unit 6 (1,2,3,4): 12 pairs / 3 = 4;  unit 8 (1,1,2,1): 6 pairs / 3 = 2.
    # Expected: 1600 - (81 + 169 + 100 + 25 + 9) = 1216.
    # alpha = 1 - 39 * 8 / 1216 = 904 / 1216 = 0.7434 (published: 0.743)
    alpha = krippendorff_alpha(paper_units())
    assert alpha == pytest.approx(904 / 1216)
    assert alpha == pytest.approx(0.743, abs=5e-4)


def test_alpha_ordinal_matches_krippendorff_2011_example() -> None:
    # Given the same data, ranked 1 < 2 < 3 < 4 < 5; the paper publishes ordinal alpha = 0.815
    alpha = krippendorff_alpha(paper_units(), metric="ordinal", order=PAPER_ORDER)
    assert alpha == pytest.approx(0.815, abs=5e-4)


def test_alpha_ordinal_two_coders_by_hand() -> None:
    # Given TWO_CODERS ranked irrelevant < partial < relevant; n_I = 2, n_P = 3, n_R = 3.
    # delta(c,k) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2:
    #   delta(I,P) = (2 + 3 - 2.5)^2 = 6.25
    #   delta(P,R) = (3 + 3 - 3)^2 = 9
    #   delta(I,R) = (2 + 3 + 3 - 2.5)^2 = 30.25
    # Observed: (o_PR + o_RP) * delta(P,R) = 2 * 9 = 18.
    # Expected: 2 * (n_I n_P 6.25 + n_P n_R 9 + n_I n_R 30.25) = 2 * (37.5 + 81 + 181.5) = 600.
    # alpha = 1 - 7 * 18 / 600 = 0.79 (higher than nominal 2/3: the only disagreement is adjacent)
    assert krippendorff_alpha(TWO_CODERS, metric="ordinal", order=ORDER) == pytest.approx(0.79)


def test_alpha_ordinal_depends_on_order() -> None:
    # Given the same data with "partial" ranked at an extreme: P < I < R; n_P = 3, n_I = 2, n_R = 3
    #   delta(P,I) = (3 + 2 - 2.5)^2 = 6.25
    #   delta(I,R) = (2 + 3 - 2.5)^2 = 6.25
    #   delta(P,R) = (3 + 2 + 3 - 3)^2 = 25
    # Observed: 2 * 25 = 50. Expected: 2 * (6 * 6.25 + 6 * 6.25 + 9 * 25) = 2 * 300 = 600.
    # alpha = 1 - 7 * 50 / 600 = 5/12
    alpha = krippendorff_alpha(TWO_CODERS, metric="ordinal", order=[PART, IRR, REL])
    assert alpha == pytest.approx(5 / 12)


def test_alpha_ordinal_ignores_categories_nobody_used() -> None:
    # Given data using only "irrelevant" and "relevant": an unused "partial" between them has
    # n_P = 0, so it adds nothing to any distance
    units = {
        "u1": {"ann": REL, "bob": REL},
        "u2": {"ann": IRR, "bob": REL},
        "u3": {"ann": IRR, "bob": IRR},
    }
    # n_I = 3, n_R = 3, n = 6; delta(I,R) = (3 + 3 - 3)^2 = 9.
    # Observed: 2 * 9 = 18. Expected: 2 * 9 * 9 = 162. alpha = 1 - 5 * 18 / 162 = 4/9
    with_unused = krippendorff_alpha(units, metric="ordinal", order=[IRR, PART, REL])
    without = krippendorff_alpha(units, metric="ordinal", order=[IRR, REL])
    assert with_unused == pytest.approx(4 / 9)
    assert without == pytest.approx(4 / 9)


@pytest.mark.parametrize(
    "units",
    [
        pytest.param({}, id="no units"),
        pytest.param({"u1": {"ann": REL}, "u2": {"bob": IRR}}, id="only single values"),
        pytest.param(
            {"u1": {"ann": REL, "bob": REL}, "u2": {"ann": REL, "cy": REL}, "u3": {"bob": IRR}},
            id="every pairable value identical",
        ),
    ],
)
@pytest.mark.parametrize("metric", ["nominal", "ordinal"])
def test_alpha_is_none_when_undefined(units: dict[str, dict[str, str]], metric: str) -> None:
    # Given no pairable values, or no expected disagreement (a single category): 0/0
    assert krippendorff_alpha(units, metric=metric, order=ORDER) is None  # type: ignore[arg-type]


def test_alpha_ordinal_requires_order() -> None:
    with pytest.raises(ValueError, match="order"):
        krippendorff_alpha(TWO_CODERS, metric="ordinal")


def test_alpha_rejects_values_outside_order() -> None:
    with pytest.raises(ValueError, match="partial"):
        krippendorff_alpha(TWO_CODERS, metric="ordinal", order=[IRR, REL])


def test_alpha_rejects_order_listing_a_category_twice() -> None:
    with pytest.raises(ValueError, match="twice"):
        krippendorff_alpha(TWO_CODERS, metric="ordinal", order=[IRR, PART, REL, PART])


def test_alpha_rejects_unknown_metric() -> None:
    with pytest.raises(ValueError, match="metric"):
        krippendorff_alpha(TWO_CODERS, metric="interval")  # type: ignore[arg-type]


# --- Cohen's kappa ----------------------------------------------------------------------------


def test_kappa_two_by_two_by_hand() -> None:
    # Given 50 items: both relevant 20, A relevant / B irrelevant 5, A irrelevant / B relevant 10,
    # both irrelevant 15.
    pairs = [(REL, REL)] * 20 + [(REL, IRR)] * 5 + [(IRR, REL)] * 10 + [(IRR, IRR)] * 15
    # p_o = (20 + 15) / 50 = 0.7
    # A relevant 25/50 = 0.5, B relevant 30/50 = 0.6
    # p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5
    # kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
    assert cohen_kappa(pairs) == pytest.approx(0.4)


def test_kappa_three_categories_by_hand() -> None:
    # Given TWO_CODERS as pairs: (R,R), (R,P), (I,I), (P,P)
    pairs = [(labels["ann"], labels["bob"]) for labels in TWO_CODERS.values()]
    # p_o = 3/4. ann: R 2, P 1, I 1; bob: R 1, P 2, I 1.
    # p_e = (2*1 + 1*2 + 1*1) / 16 = 5/16. kappa = (12/16 - 5/16) / (11/16) = 7/11
    assert cohen_kappa(pairs) == pytest.approx(7 / 11)


def test_kappa_is_one_for_perfect_agreement() -> None:
    assert cohen_kappa([(REL, REL), (PART, PART), (IRR, IRR), (REL, REL)]) == pytest.approx(1.0)


def test_kappa_is_zero_when_raters_never_overlap_in_categories() -> None:
    # Given A always says relevant, B always irrelevant: p_o = 0, p_e = 1 * 0 = 0 -> kappa = 0,
    # defined even though each rater used a single category
    assert cohen_kappa([(REL, IRR), (REL, IRR), (REL, IRR)]) == pytest.approx(0.0)


@pytest.mark.parametrize(
    "pairs",
    [
        pytest.param([], id="no pairs"),
        pytest.param([(REL, REL), (REL, REL)], id="both raters one same category: p_e = 1"),
    ],
)
def test_kappa_is_none_when_undefined(pairs: list[tuple[str, str]]) -> None:
    assert cohen_kappa(pairs) is None


def test_kappa_matches_sklearn_on_random_labels() -> None:
    # Given 200 random pairs where B copies A 60% of the time
    rng = random.Random(20110101)
    pairs = []
    for _ in range(200):
        a = rng.choice([REL, PART, IRR])
        b = a if rng.random() < 0.6 else rng.choice([REL, PART, IRR])
        pairs.append((a, b))
    # When / Then: same as scikit-learn's unweighted kappa
    expected = cohen_kappa_score([a for a, _ in pairs], [b for _, b in pairs])
    assert 0.2 < expected < 0.9
    assert cohen_kappa(pairs) == pytest.approx(expected)


# --- pairwise kappa ---------------------------------------------------------------------------


def test_pairwise_kappa_pairs_counts_and_order() -> None:
    # Given coders listed out of alphabetical order, within units and across them
    units = {
        "u7": {"fay": REL, "eve": REL},
        "u4": {"cy": IRR, "bob": IRR},
        "u1": {"cy": PART, "bob": REL, "ann": REL},
        "u2": {"bob": REL, "ann": PART},
        "u3": {"cy": IRR, "ann": IRR},
        "u5": {"cy": PART, "bob": PART},
        "u6": {"dee": REL},  # dee shares no unit: no pair with dee
    }
    # ann-bob: u1 (R,R), u2 (P,R). p_o = 1/2; ann R1 P1, bob R2: p_e = (1*2)/4 = 1/2 -> kappa 0
    # ann-cy: u1 (R,P), u3 (I,I). p_o = 1/2; ann R1 I1, cy P1 I1: p_e = 1/4
    #   kappa = (1/2 - 1/4) / (3/4) = 1/3
    # bob-cy: u1 (R,P), u4 (I,I), u5 (P,P). p_o = 2/3; bob R1 I1 P1, cy P2 I1: p_e = (1+2)/9 = 1/3
    #   kappa = (2/3 - 1/3) / (2/3) = 1/2
    # eve-fay: u7 (R,R) only: p_e = 1 -> None
    result = pairwise_kappa(units)
    assert result == [
        PairAgreement("ann", "bob", items=2, kappa=pytest.approx(0.0)),  # type: ignore[arg-type]
        PairAgreement("ann", "cy", items=2, kappa=pytest.approx(1 / 3)),  # type: ignore[arg-type]
        PairAgreement("bob", "cy", items=3, kappa=pytest.approx(1 / 2)),  # type: ignore[arg-type]
        PairAgreement("eve", "fay", items=1, kappa=None),
    ]


def test_pairwise_kappa_is_empty_without_shared_units() -> None:
    assert pairwise_kappa({}) == []
    assert pairwise_kappa({"u1": {"ann": REL}, "u2": {"bob": REL}}) == []
