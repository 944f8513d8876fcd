"""Importance with aliased settings: settings that always move together in a family's rows
carry one piece of information, so they form one predictor (`alias_groups`), permuted together
(`grouped_permutation_importance`); groups only partly crossed with each other are flagged
(`partial_crossing`), since permuting one of them makes combinations the grid never ran.

Depends on numpy and pandas only.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

# --- importance with aliased settings --------------------------------------------------------

def _partition(col: pd.Series) -> tuple[int, ...]:
    """The partition of the rows a column induces, as codes in order of first appearance (two
    columns induce the same partition iff their codes are equal); nan is a value of its own."""
    codes, _ = pd.factorize(col.astype(object), use_na_sentinel=False)
    return tuple(codes.tolist())


def _codes(rows: pd.DataFrame, columns: Sequence[str]) -> np.ndarray:
    """Each row's combination of values of `columns`, as one integer code in order of first
    appearance (nan a value of its own)."""
    per_column = np.stack([np.asarray(_partition(rows[c])) for c in columns], axis=1)
    _, first, inverse = np.unique(per_column, axis=0, return_index=True, return_inverse=True)
    rank = np.argsort(np.argsort(first))  # renumber combinations by first appearance
    return rank[inverse.reshape(-1)]


def alias_groups(rows: pd.DataFrame, settings: Sequence[str]) -> list[list[str]]:
    """Settings that determine one another across these rows, grouped.

    Two settings are aliased when each one's value fixes the other's (a one-to-one map between
    their values over the rows: both split the rows into the same groups), e.g. lr, adamBeta1
    and adamBeta2 when a grid has two optimizer subgrids that change all three. Their effects
    cannot be told apart from these rows, so they are one predictor. Settings with a single
    value are not predictors at all and are dropped. Groups come in the order of their first
    member in `settings`, members in that order; a group's name is '+'.join(group)
    (group_name).
    """
    by_partition: dict[tuple[int, ...], list[str]] = {}
    for s in settings:
        part = _partition(rows[s])
        if len(set(part)) > 1:
            by_partition.setdefault(part, []).append(s)
    return list(by_partition.values())


def group_name(group: Sequence[str]) -> str:
    """A group of aliased settings by name: its members joined by '+'."""
    return "+".join(group)


def partial_crossing(rows: pd.DataFrame, groups: Sequence[Sequence[str]]) -> dict[str, list[str]]:
    """For each group (from alias_groups), the other groups it is only partly crossed with.

    Two groups are partly crossed when some combinations of their values never occur in the
    rows although they are not aliased, e.g. BEGAN's gamma 0.3 and 0.7 run only at lr 1e-4.
    Permuting one of them alone (permutation importance) then creates combinations the grid
    never ran, so its importance partly measures the model's extrapolation: worth a note on
    the page. Returns {group name: [names of the partly crossed groups, in `groups` order]}.
    """
    parts = {group_name(g): _codes(rows, g) for g in groups}
    out: dict[str, list[str]] = {name: [] for name in parts}
    names = list(parts)
    for i, g in enumerate(names):
        for h in names[i + 1:]:
            if np.array_equal(parts[g], parts[h]):
                continue  # aliased: not crossed at all (alias_groups would have merged them)
            combos = np.unique(np.stack([parts[g], parts[h]]), axis=1).shape[1]
            # fully crossed: every pair of values occurs, combos = levels(g) x levels(h)
            if combos < len(np.unique(parts[g])) * len(np.unique(parts[h])):
                out[g].append(h)
                out[h].append(g)
    return {g: [h for h in names if h in out[g]] for g in names}


def group_columns(settings: Sequence[str], groups: Sequence[Sequence[str]]) -> list[list[int]]:
    """Each group's member columns as indices into `settings` (the columns of X)."""
    return [[list(settings).index(s) for s in g] for g in groups]


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    return 1.0 - np.sum((y - pred) ** 2) / np.sum((y - y.mean()) ** 2)  # R^2 = 1 - SSE/SST


def grouped_permutation_importance(model: Any, X: np.ndarray, y: np.ndarray,
                                   groups: Sequence[Sequence[int]], n_repeats: int = 5,
                                   rng: int | np.random.Generator | None = None
                                   ) -> dict[str, np.ndarray]:
    """Permutation importance by group: the drop in R^2 of a fitted model when the columns of one
    group are shuffled, all with the same row permutation.

    As sklearn.inspection.permutation_importance(scoring="r2") but per group of columns
    (group_columns of alias_groups): shuffling aliased settings together keeps every row on
    a combination the grid ran, and credits the group once, where shuffling them one at a time
    splits (or, for a tree model that used one of them, hides) their shared effect. A group of
    one column is sklearn's permutation of that column. Meant for held-out rows, as
    harness.report.analysis does on each cross-validation fold.
    Returns importances_mean, importances_std (n_groups,) and importances (n_groups,
    n_repeats): baseline R^2 minus R^2 after the shuffle.
    """
    rng = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    X = np.asarray(X)
    y = np.asarray(y, dtype=float)
    base = _r2(y, model.predict(X))
    drops = np.empty((len(groups), n_repeats))
    for g, cols in enumerate(groups):
        cols = list(cols)
        for r in range(n_repeats):
            perm = rng.permutation(X.shape[0])
            Xp = X.copy()
            Xp[:, cols] = X[perm][:, cols]  # one permutation for every member column
            drops[g, r] = base - _r2(y, model.predict(Xp))
    return {"importances_mean": drops.mean(axis=1), "importances_std": drops.std(axis=1),
            "importances": drops}
