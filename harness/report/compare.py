"""EBGAN against each other row of the summary: the tests, their Holm correction and the verdict.

The claim under test is about robustness, so a diverged config is a result, not a gap: every
test here puts configs on stats.with_divergence's scale, where a diverged config ranks below
every finished one (ties among the diverged) and an error config (the run failed: no
information) is dropped. Per row (`against_reference`):

- Unpaired, divergence inside: Mann-Whitney U (mwuU, mwuP) and the probability of
  superiority P(EBGAN > row) + P(=)/2 (probSuperiority).
- Survivors only, named ...Ok: the same test on finished configs (mwuUOk, mwuPOk,
  probSuperiorityOk) and median(EBGAN) - median(row) with a percentile-bootstrap interval
  (medianDiffOk, medianDiffOkLow, medianDiffOkHigh): whether the configs that finished differ,
  whatever the divergence rates.
- Paired, where the grid is paired (`pairing_keys`): EBGAN and the row ran the same grid points
  (the settings outside the optimizer subgrid and the families' own settings), one config per
  point on each side, every such setting they hold constant equal too (2 epochs do not pair
  with 25). The share of points EBGAN wins, ties and loses (a diverged config loses
  to any finished one), pairedScore = (wins + ties/2) / pairs with its Wilson interval
  (pairedScoreLow, pairedScoreHigh: they bound the score, not the win share) and the exact
  sign test (pairedP). Empty (NaN) where the two sides share no grid points one to one.

Then over the whole table (`adjust`): Holm's step-down over every p-value on the page (HOLM_OF:
mwuP, mwuPOk and pairedP of every row; mwuPOk not again where it is mwuP, nothing having
diverged), as ...Holm columns, and the verdict (VERDICT_RULE).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats as sps

from harness.config import COMMON_SETTINGS
from harness.report import stats
from harness.settings import ADDED_SETTINGS

# The optimizer subgrid's settings (Fig. 3's optimD/optimG/lr and the optimizers' own
# constants): what a comparison varies, never a grid point. A family's own settings (margin,
# gamma, ...) are left out of the grid point too: they are not common to both sides.
OPTIMIZER_SETTINGS = ("optimD", "optimG", "lr", "adamBeta1", "adamBeta2", "sgdMomentum")
# What the training budget counts is a family's protocol, not a point either: WGAN-GP counts G
# updates so that its G takes as many as every other family's (grids/table1_families.yaml), and
# a family of one D step per G step trains the same either way; each row states its G updates.
BUDGET_PROTOCOL = ("budgetCounts",)
POINT_CANDIDATES = tuple(c for c in COMMON_SETTINGS
                         if c != "seed" and c not in OPTIMIZER_SETTINGS and c not in BUDGET_PROTOCOL)
BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
ALPHA = 0.05
HOLM_OF = ("mwuP", "mwuPOk", "pairedP")  # the p-values on the page, corrected together
BETTER, WORSE, NO_EVIDENCE = "EBGAN better", "EBGAN worse", "no evidence"
VERDICT_RULE = (f"The verdict's test is the paired sign test where the row is paired with EBGAN's "
                f"grid (pairedP), else the Mann-Whitney U with divergence inside (mwuP). "
                f"'{BETTER}': its Holm-corrected p-value is below {ALPHA:g} and EBGAN wins more than "
                f"it loses (paired: more points won than lost; unpaired: probSuperiority > 0.5); "
                f"'{WORSE}': below {ALPHA:g} and EBGAN loses more; otherwise '{NO_EVIDENCE}' "
                f"(not evidence of no difference).")
PAIRED_COLUMNS = ("pairedN", "pairedWins", "pairedLosses", "pairedTies", "pairedWinFrac",
                  "pairedLossFrac", "pairedTieFrac", "pairedScore", "pairedScoreLow",
                  "pairedScoreHigh", "pairedP")
COLUMNS = ("mwuU", "mwuP", "probSuperiority", "mwuUOk", "mwuPOk", "probSuperiorityOk",
           "medianDiffOk", "medianDiffOkLow", "medianDiffOkHigh", "pairingKeys", *PAIRED_COLUMNS)


def scores(configs: pd.DataFrame) -> np.ndarray:
    """Configs on one higher-is-better scale: I' if ok, -inf if diverged, NaN if error."""
    return stats.with_divergence(configs["Iprime"], configs["status"])


# --- survivors only --------------------------------------------------------------------------

def _median_diff(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.median(x, axis=axis) - np.median(y, axis=axis)


def median_difference(ebgan: Any, other: Any, n_resamples: int = BOOTSTRAP_RESAMPLES,
                      seed: int = BOOTSTRAP_SEED, confidence: float = 0.95) -> dict[str, float]:
    """median(EBGAN) - median(row) over finished configs (finite values), with a seeded
    percentile-bootstrap interval: medianDiffOk, medianDiffOkLow, medianDiffOkHigh."""
    x, y = (np.asarray(v, dtype=float) for v in (ebgan, other))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    out = dict.fromkeys(("medianDiffOk", "medianDiffOkLow", "medianDiffOkHigh"), math.nan)
    if x.size == 0 or y.size == 0:
        return out
    out["medianDiffOk"] = float(_median_diff(x, y))
    if x.size > 1 and y.size > 1:
        ci = sps.bootstrap((x, y), _median_diff, vectorized=True, paired=False,
                           n_resamples=n_resamples, batch=200, method="percentile",
                           confidence_level=confidence,
                           random_state=np.random.default_rng(seed)).confidence_interval
        out.update(medianDiffOkLow=float(ci.low), medianDiffOkHigh=float(ci.high))
    return out


# --- pairing ---------------------------------------------------------------------------------

def point_settings(rows: pd.DataFrame) -> pd.DataFrame:
    """The POINT_CANDIDATES columns that rows have; a setting added after some rows were
    written (ADDED_SETTINGS, null in those rows) at the value every earlier run had, so that
    old and new rows of one grid name the same points."""
    out = rows[[c for c in POINT_CANDIDATES if c in rows]]
    fill = {c: v for c, v in ADDED_SETTINGS.items() if c in out}
    return out.fillna(fill) if fill else out


def _values(points: pd.DataFrame, column: str) -> frozenset:
    """A setting's distinct values on one side, numbers as floats (25 and 25.0 are one value)."""
    if column not in points:
        return frozenset()
    return frozenset(float(v) if isinstance(v, (int, float, np.number)) and not isinstance(v, (bool, np.bool_))
                     else str(v) for v in points[column].dropna().unique())


def pairing_keys(a: pd.DataFrame, b: pd.DataFrame) -> list[str]:
    """The settings that name a grid point both sides ran, from the data: the common settings
    outside the optimizer subgrid (OPTIMIZER_SETTINGS; the families' own settings are not
    common, and what the budget counts, BUDGET_PROTOCOL, is a family's protocol) that both sides
    vary over the same values. [] when the design is not paired: no such setting; one of these
    settings that differs between the sides, whether it varies on one side only or over other
    values (different grids), is held constant at different values (2 epochs against 25: other
    training, not the same points) or is present on one side only; or a point that repeats on
    a side (several subgrids, or a family setting varied: no one partner per point)."""
    keys = []
    pa, pb = point_settings(a), point_settings(b)
    for c in POINT_CANDIDATES:
        va, vb = _values(pa, c), _values(pb, c)
        if va != vb:
            return []
        if len(va) > 1:
            keys.append(c)
    if not keys or a.duplicated(subset=keys).any() or b.duplicated(subset=keys).any():
        return []
    return keys


def paired(ebgan: pd.DataFrame, other: pd.DataFrame, confidence: float = 0.95) -> dict[str, Any]:
    """The paired comparison of two groups of configs (seeds aggregated) on the grid points they
    share (`pairing_keys`); pairingKeys '' and NaN statistics where they share none."""
    keys = pairing_keys(ebgan, other)
    out: dict[str, Any] = {"pairingKeys": "+".join(keys), **dict.fromkeys(PAIRED_COLUMNS, math.nan)}
    if not keys:
        return out
    x, y, _ = stats.pair_configs(ebgan.assign(score=scores(ebgan)), other.assign(score=scores(other)), keys)
    res = stats.paired_comparison(x, y, confidence)
    if not res["pairedN"]:
        return out | {"pairingKeys": ""}
    res["pairedScoreLow"], res["pairedScoreHigh"] = res.pop("pairedWinLow"), res.pop("pairedWinHigh")
    return out | {k: res[k] for k in PAIRED_COLUMNS}


def against_reference(ebgan: pd.DataFrame, other: pd.DataFrame,
                      n_resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED
                      ) -> dict[str, Any]:
    """Every EBGAN-vs-row statistic (COLUMNS) of two groups of configs (seeds aggregated)."""
    a, b = scores(ebgan), scores(other)
    unpaired = stats.unpaired_tests(a, b)
    out = {k: unpaired[k] for k in ("mwuU", "mwuP", "probSuperiority", "mwuUOk", "mwuPOk",
                                    "probSuperiorityOk")}
    out.update(median_difference(a, b, n_resamples, seed))
    out.update(paired(ebgan, other))
    return out


# --- the whole table -------------------------------------------------------------------------

def _verdict(row: pd.Series) -> tuple[str, str, float]:
    """(verdict, its test, the test's Holm-corrected p) of one compared row."""
    if pd.notna(row.get("pairedP")):
        test, p, edge = "paired sign test", row["pairedPHolm"], row["pairedWins"] - row["pairedLosses"]
    elif pd.notna(row.get("mwuP")):
        test, p, edge = "Mann-Whitney U", row["mwuPHolm"], row["probSuperiority"] - 0.5
    else:
        return "", "", math.nan
    if p < ALPHA and edge != 0:
        return (BETTER if edge > 0 else WORSE), test, float(p)
    return NO_EVIDENCE, test, float(p)


def adjust(table: pd.DataFrame) -> pd.DataFrame:
    """The table with Holm-corrected p-values (HOLM_OF, each as <name>Holm, all of them one
    family) and each compared row's verdict, verdictTest and verdictPHolm; .attrs["holmM"]:
    how many p-values were corrected together."""
    table = table.copy()
    present = [c for c in HOLM_OF if c in table]
    if present:
        p = table[present].to_numpy(dtype=float, copy=True)
        # where nothing diverged the survivors-only test is the test itself: one p-value, counted once
        same = ((table["mwuPOk"] == table["mwuP"]) & (table["mwuUOk"] == table["mwuU"])).to_numpy() \
            if {"mwuP", "mwuPOk", "mwuU", "mwuUOk"} <= set(table) else np.zeros(len(table), bool)
        ok = present.index("mwuPOk") if "mwuPOk" in present else None
        if ok is not None:
            p[same, ok] = np.nan
        holm = stats.holm(p)
        if ok is not None:
            holm[same, ok] = holm[same, present.index("mwuP")]
        table[[f"{c}Holm" for c in present]] = holm
        table.attrs["holmM"] = int(np.isfinite(p).sum())
    else:
        table.attrs["holmM"] = 0
    verdicts = [_verdict(r) if present else ("", "", math.nan) for _, r in table.iterrows()]
    table["verdict"] = [v[0] for v in verdicts]
    table["verdictTest"] = [v[1] for v in verdicts]
    table["verdictPHolm"] = [v[2] for v in verdicts]
    return table
