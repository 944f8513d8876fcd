"""harness.report.aliasing: settings that move together grouped, partly crossed ones flagged, and
permutation importance by group. Pure numbers: no data, no GPU."""
from __future__ import annotations

import itertools

import numpy as np
import pandas as pd

from harness.report import aliasing

# --- aliasing and importance -----------------------------------------------------------------

def _wgan_like() -> pd.DataFrame:
    sub = [(1e-4, 0.0, 0.9), (1e-3, 0.5, 0.999)]
    rows = [{"lr": lr, "adamBeta1": b1, "adamBeta2": b2, "nLayerG": nl, "sizeG": sg,
             "lambdaGP": 10.0}
            for (lr, b1, b2), nl, sg in itertools.product(sub, [2, 3, 4, 5], [400, 800, 1600, 3200])]
    return pd.DataFrame(rows)


def _began_like() -> pd.DataFrame:
    sub = [(1e-3, 0.5)] + [(1e-4, g) for g in (0.3, 0.5, 0.7)]
    rows = [{"lr": lr, "gamma": g, "adamBeta1": 0.5, "nLayerG": nl, "dropoutD": d}
            for (lr, g), nl, d in itertools.product(sub, [2, 3, 4, 5], [True, False])]
    return pd.DataFrame(rows)


def test_alias_groups_wgan_like():
    rows = _wgan_like()
    groups = aliasing.alias_groups(rows, ["lr", "adamBeta1", "adamBeta2", "nLayerG", "sizeG", "lambdaGP"])
    assert groups == [["lr", "adamBeta1", "adamBeta2"], ["nLayerG"], ["sizeG"]]  # lambdaGP constant
    assert aliasing.group_name(groups[0]) == "lr+adamBeta1+adamBeta2"
    assert aliasing.partial_crossing(rows, groups) == {"lr+adamBeta1+adamBeta2": [], "nLayerG": [],
                                                    "sizeG": []}


def test_alias_groups_began_like():
    rows = _began_like()
    groups = aliasing.alias_groups(rows, ["lr", "gamma", "adamBeta1", "nLayerG", "dropoutD"])
    assert groups == [["lr"], ["gamma"], ["nLayerG"], ["dropoutD"]]
    crossing = aliasing.partial_crossing(rows, groups)
    assert crossing == {"lr": ["gamma"], "gamma": ["lr"], "nLayerG": [], "dropoutD": []}


def test_partial_crossing_with_missing_values():
    rows = _began_like()
    rows.loc[rows["lr"] == 1e-3, "gamma"] = np.nan  # a setting absent from one subgrid
    groups = aliasing.alias_groups(rows, ["lr", "gamma", "nLayerG"])
    assert groups == [["lr"], ["gamma"], ["nLayerG"]]
    assert aliasing.partial_crossing(rows, groups) == {"lr": ["gamma"], "gamma": ["lr"], "nLayerG": []}
    only = rows[rows["lr"] == 1e-4]
    assert aliasing.alias_groups(only, ["lr", "gamma", "nLayerG"]) == [["gamma"], ["nLayerG"]]


def test_alias_groups_values_not_equal_but_one_to_one():
    rows = pd.DataFrame({"a": [1, 1, 2, 2, 3], "b": ["x", "x", "y", "y", "z"],
                         "c": [1, 2, 1, 2, 1], "d": [np.nan, np.nan, 1.0, 1.0, 2.0]})
    assert aliasing.alias_groups(rows, ["a", "b", "c", "d"]) == [["a", "b", "d"], ["c"]]


def test_grouped_permutation_importance_credits_the_aliased_group():
    from sklearn.ensemble import HistGradientBoostingRegressor

    rows = pd.concat([_wgan_like()] * 3, ignore_index=True)
    rng = np.random.default_rng(5)
    y = np.where(rows["lr"] == 1e-4, 2.0, 0.5) + rng.normal(0, 0.1, len(rows))  # subgrid only
    settings = ["lr", "adamBeta1", "adamBeta2", "nLayerG", "sizeG"]
    groups = aliasing.alias_groups(rows, settings)
    X = rows[settings].to_numpy(dtype=float)
    model = HistGradientBoostingRegressor(max_iter=50, random_state=0).fit(X, y)
    out = aliasing.grouped_permutation_importance(model, X, y, aliasing.group_columns(settings, groups),
                                               n_repeats=5, rng=0)
    assert out["importances"].shape == (3, 5) and out["importances_mean"].shape == (3,)
    assert out["importances_mean"][0] > 0.8  # the subgrid explains nearly all of y
    assert np.abs(out["importances_mean"][1:]).max() < 0.05
    again = aliasing.grouped_permutation_importance(model, X, y, aliasing.group_columns(settings, groups),
                                                 n_repeats=5, rng=0)
    np.testing.assert_array_equal(out["importances"], again["importances"])
