"""Inter-annotator agreement for annotation queues in debug mode.

Annotators (coders) label each unit, an (answer, document) pair, with a relevance such as
"relevant", "partial" or "irrelevant". Raw percent agreement overstates reliability because
coders agree by chance too, so this module computes chance-corrected coefficients:

- Krippendorff's alpha over all coders, which tolerates missing labels and any number of coders
  per unit (coincidence-matrix formulation of Krippendorff 2011, "Computing Krippendorff's
  Alpha-Reliability"), with the nominal or the ordinal distance metric;
- Cohen's kappa for two coders over the same items, and for every pair of coders over the units
  they both labelled, to spot a single annotator who disagrees with everyone.

Plain functions over plain mappings: no Django, no ORM.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from itertools import combinations
from typing import Literal, TypeVar

import numpy as np

__all__ = ["PairAgreement", "cohen_kappa", "krippendorff_alpha", "pairwise_kappa"]

# Any hashable unit key, e.g. (answer_id, document_id). A TypeVar rather than plain Hashable
# because Mapping is invariant in its key type: dict[str, ...] is no Mapping[Hashable, ...].
UnitKey = TypeVar("UnitKey", bound=Hashable)
Units = Mapping[UnitKey, Mapping[str, str]]


def _categories(units: Units[UnitKey], metric: str, order: Sequence[str] | None) -> list[str]:
    """The categories, ranked by `order` when given, validated against the values used."""
    if metric not in ("nominal", "ordinal"):
        raise ValueError(f"unknown metric {metric!r}; expected 'nominal' or 'ordinal'")
    used = {value for labels in units.values() for value in labels.values()}
    if order is None:
        if metric == "ordinal":
            raise ValueError("the ordinal metric needs `order`, the categories from low to high")
        return sorted(used)
    categories = list(order)
    if len(set(categories)) != len(categories):
        raise ValueError(f"`order` lists a category twice: {categories!r}")
    unknown = used.difference(categories)
    if unknown:
        raise ValueError(f"values not in `order`: {sorted(unknown)!r}")
    return categories


def _coincidences(units: Units[UnitKey], index: Mapping[str, int]) -> np.ndarray:
    """The coincidence matrix o[c, k]: every ordered pair of values from different coders within
    a unit, each weighted 1 / (m_u - 1) where m_u is the unit's number of values. Units with fewer
    than two values are not pairable and add nothing."""
    o = np.zeros((len(index), len(index)), dtype=np.float64)
    for labels in units.values():
        m_u = len(labels)
        if m_u < 2:
            continue
        counts = Counter(labels.values())
        for c, n_uc in counts.items():
            for k, n_uk in counts.items():
                pairs = n_uc * (n_uk - 1) if c == k else n_uc * n_uk
                o[index[c], index[k]] += pairs / (m_u - 1)
    return o


def _ordinal_distances(n: np.ndarray) -> np.ndarray:
    """delta[c, k] = (sum_{g=c..k} n_g - (n_c + n_k) / 2) ** 2, with categories in rank order."""
    ranks = np.arange(len(n))
    low = np.minimum.outer(ranks, ranks)
    high = np.maximum.outer(ranks, ranks)
    cumulative = np.cumsum(n)
    between = cumulative[high] - cumulative[low] + n[low]
    result: np.ndarray = (between - np.add.outer(n, n) / 2) ** 2
    return result


def krippendorff_alpha(
    units: Units[UnitKey],
    *,
    metric: Literal["nominal", "ordinal"] = "nominal",
    order: Sequence[str] | None = None,
) -> float | None:
    """Krippendorff's alpha for `units` (unit key -> {coder: value}).

    alpha = 1 - (n - 1) * sum(o_ck * delta_ck) / sum(n_c * n_k * delta_ck), where o is the
    coincidence matrix, n_c its marginals and n the number of pairable values. Units with a single
    value are ignored. `order` ranks the categories from low to high; it is required for the
    ordinal metric and, when given, every value must appear in it.

    Returns None when alpha is undefined: no pairable values, or no expected disagreement (every
    pairable value in the same category).
    """
    categories = _categories(units, metric, order)
    index = {category: i for i, category in enumerate(categories)}
    o = _coincidences(units, index)
    n_c = o.sum(axis=1)
    n = float(n_c.sum())
    delta = 1.0 - np.eye(len(categories)) if metric == "nominal" else _ordinal_distances(n_c)
    observed = float((o * delta).sum())
    expected = float((np.outer(n_c, n_c) * delta).sum())
    if expected <= 0:  # also when nothing is pairable: n_c is all zeros
        return None
    return 1.0 - (n - 1) * observed / expected


def cohen_kappa(pairs: Sequence[tuple[str, str]]) -> float | None:
    """Cohen's kappa for two raters: (p_o - p_e) / (1 - p_e), with p_o the share of items they
    label alike and p_e = sum_c p_a(c) * p_b(c) the agreement expected from their marginals.

    Returns None when there are no pairs, or when p_e is 1 (both raters used one same category).
    """
    total = len(pairs)
    if total == 0:
        return None
    agreed = sum(1 for a, b in pairs if a == b)
    marginals_a = Counter(a for a, _ in pairs)
    marginals_b = Counter(b for _, b in pairs)
    # Scaled by total**2 to stay in integers: p_o -> total * agreed, p_e -> chance.
    chance = sum(count * marginals_b[category] for category, count in marginals_a.items())
    if chance == total * total:
        return None
    return (total * agreed - chance) / (total * total - chance)


@dataclass(frozen=True, slots=True)
class PairAgreement:
    """Cohen's kappa between two coders (coder_a < coder_b) over the `items` units both labelled."""

    coder_a: str
    coder_b: str
    items: int
    kappa: float | None


def pairwise_kappa(units: Units[UnitKey]) -> list[PairAgreement]:
    """Cohen's kappa for every pair of coders sharing at least one unit, sorted by the pair."""
    shared: defaultdict[tuple[str, str], list[tuple[str, str]]] = defaultdict(list)
    for labels in units.values():
        for coder_a, coder_b in combinations(sorted(labels), 2):
            shared[coder_a, coder_b].append((labels[coder_a], labels[coder_b]))
    return [
        PairAgreement(coder_a=a, coder_b=b, items=len(pairs), kappa=cohen_kappa(pairs))
        for (a, b), pairs in sorted(shared.items())
    ]
