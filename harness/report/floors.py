"""What a verdict stands on: the chance floor of each measure, and whether the runs converged.

A verdict between families means something only if their configs beat what a structureless
sample scores, and only if the runs had stopped improving when their budget ended:

- Chance: each of the dataset's structureless references (Dataset.chance_references: noise
  images and the mean image on MNIST; uniform on the bounding box and a moment-matched Gaussian
  on a mixture) is drawn CHANCE_DRAWS times (fewer at large counts: chance_draws) at the runs'
  sample count and scored by the dataset's own scorer; per reference and measure, the median
  and the maximum over the draws. Each family's share of configs above every reference's maximum on the primary measure
  (Dataset.primary_measure), a diverged config below, with its Wilson 95% interval.
- Convergence: each run's stillImproving (harness.convergence: any of its dataset's convergence
  measures still rising over the last quarter of its scored epochs), computed here from the
  per-epoch columns, so that tables written under an earlier rule read alike. Each family's share still improving; above
  convergence.WARN_SHARE a warning that the budget is short for this grid; with fewer than
  convergence.MIN_EPOCHS scored epochs, a line saying the table cannot tell.

Chance values are cached on disk per dataset, classifier, sample count and draws (as the real
anchor is); without MNIST or the classifier they are None with the reason, never an error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from harness import convergence, datasets
from harness.atomic import write_atomic
from harness.report import stats
from harness.report.analysis import dataset_of, primary_measure, score_sample_counts
from harness.report.tables import by_model
from harness.strict_json import dumps

CHANCE_DRAWS = 20           # draws of each reference: the floor is their maximum
# ... at most this many samples per reference in all: a chance score's spread over draws shrinks
# as 1/sqrt(n), so 5 draws of 10,000 (MNIST's scoreSamples) bound it as 20 of 2,500 do, at the
# cost of scoring 150,000 images through the ConvNet instead of 600,000 (minutes on a CPU).
CHANCE_SAMPLES = 50_000
MIN_CHANCE_DRAWS = 3


def chance_draws(n: int, draws: int = CHANCE_DRAWS) -> int:
    """Draws of each reference at n samples: `draws`, fewer for large n (CHANCE_SAMPLES in all)."""
    return max(MIN_CHANCE_DRAWS, min(draws, CHANCE_SAMPLES // max(n, 1)))


def measures_of(dataset) -> list[str]:
    """The measures a chance row gives: I' and the dataset's own (its report_metrics)."""
    return ["Iprime", *dataset.report_metrics]


# --- chance ------------------------------------------------------------------------------------

def chance_floor(runs: pd.DataFrame, data_dir: str | Path | None = None, classifier: str | Path | None = None,
                 draws: int = CHANCE_DRAWS) -> tuple[pd.DataFrame | None, str]:
    """One row per structureless reference (reference, n, draws, <measure>Median, <measure>Max for
    I' and the dataset's own measures), and a sentence saying what it is or why it is missing."""
    from classifiers.convnet import ClassifierError
    from harness.data import DataError
    dataset, counts = dataset_of(runs), score_sample_counts(runs)
    n = int(counts.index[0]) if len(counts) else None
    if dataset is None or n is None:
        return None, "chance rows not computed: the table names no registered dataset or no scoreSamples"
    draws = chance_draws(n, draws)
    try:
        scorer = dataset.scorer(_data_dir(dataset, data_dir), classifier, "cpu")
        cache = _cache_path(dataset, scorer, n, draws)
        if cache is not None and cache.exists():
            rows = json.loads(cache.read_text())
        else:
            print(f"report: scoring {dataset.title}'s chance references, {draws} draws of {n} samples "
                  "(once: cached)", file=sys.stderr, flush=True)
            rows = _score_references(dataset, scorer, n, draws, data_dir)
            if cache is not None:
                write_atomic(cache, dumps(rows))
    except (DataError, ClassifierError, OSError, ValueError, RuntimeError) as e:   # the page goes on without
        return None, f"chance rows not computed: {str(e).splitlines()[0] if str(e) else type(e).__name__}"
    return pd.DataFrame(rows), (f"{dataset.title}'s structureless references, {draws} draws of {n} samples each, "
                                "scored like the runs")


def _data_dir(dataset, data_dir):
    if dataset.name != datasets.DEFAULT:
        return data_dir
    from harness.data import resolve_data_dir
    return resolve_data_dir(data_dir, download=False)


def _cache_path(dataset, scorer, n: int, draws: int) -> Path | None:
    """Where a learnt scorer's chance rows are kept (MNIST's ConvNet: minutes to score); None for
    an exact one (a mixture's posterior: seconds), which writes nothing to the cache."""
    from harness.data import default_cache_dir
    sha = str(getattr(scorer, "weights_sha", "") or "")
    exact = not sha or sha.startswith("exact")              # harness.datasets' mixtures: "exact-posterior-..."
    return None if exact else default_cache_dir().parent / f"chance_{dataset.name}_{sha[:16]}_{n}_{draws}.json"


def _score_references(dataset, scorer, n: int, draws: int, data_dir) -> list[dict[str, Any]]:
    values: dict[str, dict[str, list[float]]] = {}
    for seed in range(draws):
        for name, x in dataset.chance_references(n, seed, data_dir).items():
            scores = scorer.score(x, fid=False).to_dict()
            for m in measures_of(dataset):
                values.setdefault(name, {}).setdefault(m, []).append(float(scores[m]))
    return [{"reference": name, "n": n, "draws": draws,
             **{f"{m}{what}": float(f(v)) for m, v in by_measure.items()
                for what, f in (("Median", np.median), ("Max", np.max))}}
            for name, by_measure in values.items()]


def above_chance(configs: pd.DataFrame, chance: pd.DataFrame, measure: str) -> pd.DataFrame:
    """Per model: configs scored (ok + diverged), the share above every reference's maximum on
    `measure` (a diverged config is not), with its Wilson 95% interval."""
    floor = float(chance[f"{measure}Max"].max())
    rows = []
    for model, g in by_model(configs).items():
        scored = g[g["status"].isin(("ok", "diverged"))]
        above = int(((scored["status"] == "ok") & (pd.to_numeric(scored[measure], errors="coerce") > floor)).sum())
        low, high = stats.wilson_interval(above, len(scored))
        rows.append({"model": model, "configs": len(scored), "aboveChance": above / len(scored) if len(scored) else
                     np.nan, "aboveChanceLow": low, "aboveChanceHigh": high, "chanceFloor": floor})
    return pd.DataFrame(rows)


# --- convergence ---------------------------------------------------------------------------------

def still_improving(runs: pd.DataFrame) -> pd.Series:
    """Each run's stillImproving (True, False, or None: cannot tell) by today's rule, computed
    from its convergence measures' per-epoch columns (harness.convergence.still_improving_any),
    so that tables written under an older rule read alike; the recorded column where a table
    has no curves."""
    measures = (dataset_of(runs) or datasets.get(datasets.DEFAULT)).convergence_measures
    columns = {m: runs.get(f"{m}PerEpoch", pd.Series([None] * len(runs), index=runs.index)) for m in measures}
    computed = pd.Series([convergence.still_improving_any(
        {m: list(c) for m, col in columns.items() if (c := col.loc[i]) is not None and len(c)}, measures)
        for i in runs.index], index=runs.index, dtype=object)
    if "stillImproving" not in runs:
        return computed
    return computed.where(computed.notna(), runs["stillImproving"].astype(object))


def convergence_table(runs: pd.DataFrame, chance: pd.DataFrame | None = None) -> pd.DataFrame:
    """Per model: ok runs, how many could be told (enough scored epochs), the share of those
    still improving, with its Wilson 95% interval; with `chance` (chance_floor's rows), the same
    among the runs above chance on the primary measure: a family whose runs mostly sit flat at
    chance has "stopped improving" while its few learners may still be learning."""
    ok = runs[runs["status"] == "ok"]
    ok = ok.assign(_still=still_improving(ok))
    primary = primary_measure(runs)   # the verdict's measure, as the page's
    floor = float(chance[f"{primary}Max"].max()) if chance is not None and len(chance) else None
    rows = []
    for model, g in by_model(ok).items():
        row = {"model": model, "runs": len(g), **_share_still(g["_still"].dropna())}
        if floor is not None:
            above = g[pd.to_numeric(g[primary], errors="coerce") > floor]
            row.update({"aboveChanceRuns": len(above), **{f"aboveChance{k[0].upper()}{k[1:]}": v
                                                          for k, v in _share_still(above["_still"].dropna()).items()}})
        rows.append(row)
    return pd.DataFrame(rows)


def _share_still(told: pd.Series) -> dict:
    k = int(told.astype(bool).sum())
    low, high = stats.wilson_interval(k, len(told))
    return {"told": len(told), "stillImproving": k / len(told) if len(told) else np.nan,
            "stillImprovingLow": low, "stillImprovingHigh": high}


# --- the first screen's lines --------------------------------------------------------------------

def basis_lines(runs: pd.DataFrame, configs: pd.DataFrame, chance: pd.DataFrame | None, chance_text: str,
                conv: pd.DataFrame | None = None) -> list[str]:
    """What the verdict stands on, in sentences: the chance floor and each family's share above
    it, then each family's share still improving (or why that cannot be told). conv: the runs'
    convergence_table, where the caller has it already."""
    dataset = dataset_of(runs)
    primary = dataset.primary_measure if dataset is not None else "Iprime"
    out = []
    if chance is not None and len(chance) and primary in configs:
        above = above_chance(configs, chance, primary)
        out.append(_above_sentence(above, f"{primary}, the primary measure here", len(chance)))
        if (above["aboveChance"].fillna(0) < 0.5).all():
            out.append("Most configs of every family do not beat chance: the verdict compares untrained "
                       "generators, not training methods.")
    else:
        out.append(f"Chance floor unknown: {chance_text}.")
    conv = convergence_table(runs, chance) if conv is None else conv
    if conv.empty or (conv["told"] == 0).all():
        out.append(f"Convergence cannot be told: {_why_untold(runs, primary)}.")
        return out
    shares = ", ".join(f"{r.model} {_pct(r.stillImproving)} [{_pct(r.stillImprovingLow)}, "
                       f"{_pct(r.stillImprovingHigh)}]" for r in conv.itertuples() if r.told)
    untold = conv.loc[conv["told"] == 0, "model"].tolist()
    rising = " or ".join(dataset.convergence_measures) if dataset is not None else primary
    out.append(f"Still improving at the end (its {rising} rising over the last quarter of its scored epochs "
               f"beyond their scatter): {shares} of the runs"
               + (f"; cannot be told for {', '.join(untold)}: {_why_untold(runs[runs['model'].isin(untold)], primary)}"
                  if untold else "") + ".")
    learners = conv[conv["aboveChanceTold"] > 0] if "aboveChanceTold" in conv else conv.iloc[:0]
    if len(learners):
        out.append("Of the runs above chance, still improving: " + ", ".join(
            f"{r.model} {round(r.aboveChanceStillImproving * r.aboveChanceTold)} of {r.aboveChanceTold} "
            f"({_pct(r.aboveChanceStillImproving)} [{_pct(r.aboveChanceStillImprovingLow)}, "
            f"{_pct(r.aboveChanceStillImprovingHigh)}])" for r in learners.itertuples()) + ".")
    short = conv[conv["stillImproving"] > convergence.WARN_SHARE]
    if len(short):
        out.append(f"Warning: more than {convergence.WARN_SHARE:.0%} of the runs of {', '.join(short['model'])} "
                   "were still improving: the budget is short for this grid, and the verdict judges where they "
                   "stopped.")
    short = learners[(learners["aboveChanceStillImproving"] > convergence.WARN_SHARE)
                     & (learners["stillImproving"] <= convergence.WARN_SHARE)] if len(learners) else learners
    if len(short):   # the warning above did not name them already
        out.append(f"Warning: more than {convergence.WARN_SHARE:.0%} of the runs above chance of "
                   f"{', '.join(short['model'])} were still improving: those that learn were still learning, "
                   "though most runs had stopped, at chance.")
    return out


def _above_sentence(above: pd.DataFrame, label: str, references: int, extra: str = "") -> str:
    shares = ", ".join(f"{r.model} {_pct(r.aboveChance)} [{_pct(r.aboveChanceLow)}, {_pct(r.aboveChanceHigh)}]"
                       for r in above.itertuples())
    return (f"Above chance ({label}, above the highest of {references} structureless references, "
            f"{above['chanceFloor'].iloc[0]:.3g}{extra}): {shares} of their configs.")


# A secondary measure whose chance floor is at least this share of the best config's score tells
# a trained generator from a structureless cloud too little for its verdict to say which learns.
CEILING_SHARE = 0.9


def measure_chance_lines(configs: pd.DataFrame, chance: pd.DataFrame | None, measure: str) -> list[str]:
    """A secondary measure's chance, beside its verdict: each family's share of configs above
    every reference's maximum, and a warning where structureless samples score nearly what the
    best config does (I' on a mixture: a cloud over every mode is near its ceiling, ln M)."""
    if chance is None or not len(chance) or f"{measure}Max" not in chance or measure not in configs:
        return []
    above = above_chance(configs, chance, measure)
    floor = above["chanceFloor"].iloc[0]
    best = pd.to_numeric(configs.loc[configs["status"] == "ok", measure], errors="coerce").max()
    out = [_above_sentence(above, measure, len(chance), f"; the best config: {best:.3g}")]
    ranks = "its verdict ranks scores near chance, not which family learns the data."
    if not best > floor:
        out.append(f"Warning: no config scores above structureless samples on {measure}: {ranks}")
    elif best > 0 and floor >= CEILING_SHARE * best:
        out.append(f"Warning: structureless samples score {floor / best:.0%} of the best config's {measure}: "
                   f"this measure barely tells a trained generator from chance here, so {ranks}")
    return out


def _why_untold(runs: pd.DataFrame, primary: str) -> str:
    column = f"{primary}PerEpoch"
    if column not in runs:
        return f"the table has no {column} (its rows were written before it was recorded)"
    epochs = runs[column].map(lambda c: len(c) if c is not None else 0)
    return (f"the runs have at most {int(epochs.max()) if len(epochs) else 0} scored epochs, and telling needs "
            f"{convergence.MIN_EPOCHS}")


def _pct(v: Any) -> str:
    return "n/a" if v != v else f"{100 * v:.0f}%"
