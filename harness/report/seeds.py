"""The same seeds on both sides of every comparison: a config's score is taken over its seeds
(harness.report.tables.aggregate_seeds), so a side that ran more seeds at a grid point would win
or lose for its seed count, not its training (`common_seeds`)."""
from __future__ import annotations

import pandas as pd

from harness.report import compare
from harness.report.tables import run_scores


def common_seeds(runs: pd.DataFrame) -> tuple[pd.DataFrame, str]:
    """The runs with equal seeds at each grid point, and a one-line note naming what was left
    out ('' and `runs` itself when nothing was).

    Why: a config's I' is taken over its seeds (`aggregate_seeds`), a diverged seed scoring
    -inf, so with the mean a config of more seeds is more often diverged (with the max less
    often): a side that ran more seeds at a point would lose or win for its seed count, not its
    training. A grid point is compare.point_settings (the common settings outside the
    optimizer subgrid, the seed left out); a row is a model's optimizer subgrid, as the summary
    names them. At a point that several rows ran, a config that scored (an ok or diverged
    run) keeps the runs of the seeds that every such config there scored, its error runs of
    the other seeds left out too; error configs (no seed scored, in no test) are kept as they
    are. A point that one row ran alone (a design with no shared points, an unpaired one) is
    left as it is: it has no partner whose seeds could differ.
    """
    points = compare.point_settings(runs)
    point = (points.groupby(list(points.columns), dropna=False, sort=False).ngroup() if len(points.columns)
             else pd.Series(0, index=runs.index))
    row = runs.groupby(["model", "subgrid"], dropna=False, sort=False).ngroup()
    at = pd.DataFrame({"point": point, "row": row, "config": runs["settingsId"], "seed": runs["seed"]})
    scored = at[run_scores(runs).notna()].drop_duplicates(["config", "seed"])
    by_point = scored.groupby("point")
    shared = (by_point["row"].nunique() > 1).reindex(at["point"], fill_value=False).to_numpy()
    configs_there = by_point["config"].nunique().reindex(at["point"]).to_numpy()
    ran_seed = scored.groupby(["point", "seed"])["config"].nunique()   # configs there that scored it
    ran = ran_seed.reindex(pd.MultiIndex.from_frame(at[["point", "seed"]]), fill_value=0).to_numpy()
    drop = shared & at["config"].isin(scored["config"]).to_numpy() & (ran < configs_there)
    if not drop.any():
        return runs, ""
    kept = runs[~drop]
    gone = runs["settingsId"].nunique() - kept["settingsId"].nunique()
    note = (f"Seeds alike at every grid point: at {at.loc[drop, 'point'].nunique()} points the configs "
            f"compared ran different seeds, so each counts only the seeds all of them scored there; "
            f"{int(drop.sum())} of {len(runs)} runs left out"
            + (f", and {gone} configs with no seed in common" if gone else "") + ".")
    return kept, note
