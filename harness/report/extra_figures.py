"""What the paper's histograms cannot show, drawn: robustness curves, ECDFs, hyperparameter
importance, best score against budget, sampling against seed noise, I' against FID, and the
margin. The numbers come from harness.report.analysis and harness.report.tables; here only
the drawing."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.image import imread
from matplotlib.ticker import MaxNLocator

from harness.report import analysis, estimates, style
from harness.report.budget import BUDGET_MAX_FRACTION
from harness.report.tables import model_order, ok_values, registered_models, run_scores


def _group_label(g: dict[str, Any], values: np.ndarray) -> str:
    """A group's legend entry: its label, configs and the share that diverged."""
    div = int(np.isneginf(values).sum())
    return f"{g['label']} (n={values.size}, {100 * div / max(values.size, 1):.0f}% diverged)"


def _layout(configs: pd.DataFrame) -> tuple[list[dict], dict[str, list[dict]]]:
    """The families, and per family with several subgrids its subgrid groups."""
    gs = analysis.groups(configs, registered_models())
    families = [g for g in gs if g["subgrid"] == "all"]
    subs: dict[str, list[dict]] = {}
    for g in gs:
        if g["subgrid"] != "all":
            subs.setdefault(g["model"], []).append(g)
    return families, subs


def draw_robustness(configs: pd.DataFrame, anchor: float | None, title: str, metric_shown: str = "Iprime",
                    chance: dict[str, float] | None = None) -> Figure:
    """Fraction of configs with I' >= x (top) and FID <= x (bottom): families, then subgrids.
    metric_shown: another higher-is-better column (a dataset's own measure) in I''s place,
    alone (no FID row). chance: {measure: the highest chance reference's value}, a dotted line."""
    families, subs = _layout(configs)
    colors = style.colors([g["model"] for g in families])
    cols = 1 + len(subs)
    rows = ("Iprime", "fid") if metric_shown == "Iprime" else (metric_shown,)
    fig = style.new_figure((6 * cols + 2.5 * len(subs), 4.5 * len(rows)))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(len(rows), cols, squeeze=False)
    ok_ip = ok_values(configs, metric_shown)
    top = max([*ok_ip, 1e-9]) * 1.04  # the data's range: the anchor never stretches it
    xs = {metric_shown: np.linspace(0, top, 500)}
    fid = pd.to_numeric(configs.get("fid"), errors="coerce") if "fid" in configs else None
    if "fid" in rows and fid is not None and np.isfinite(fid).any():
        f = fid[np.isfinite(fid)]
        xs["fid"] = np.geomspace(max(f.min(), 1e-3) * 0.9, f.max() * 1.1, 500)
    panels = [("families", families)] + [(f"{m} subgrids", g) for m, g in subs.items()]
    label = "I'" if metric_shown == "Iprime" else metric_shown
    for r, metric in enumerate(rows):
        for c, (name, gs) in enumerate(panels):
            ax = axes[r, c]
            if metric not in xs:
                ax.text(0.5, 0.5, "no FID in this table", ha="center", transform=ax.transAxes)
                continue
            x = xs[metric]
            sign = -1 if metric == "fid" else 1
            for g in (families if c else []):
                v = analysis.outcome_values(g["rows"], metric)
                ax.plot(x, analysis.passing_fraction(v, sign * x), color=colors[g["model"]],
                        lw=3, alpha=0.35, label=f"{g['label']} (all)")
            styles = style.subgrid_styles([g["label"] for g in gs])
            for g in gs:
                v = analysis.outcome_values(g["rows"], metric)
                color, ls = (colors[g["model"]], "-") if not c else styles[g["label"]]
                ax.plot(x, analysis.passing_fraction(v, sign * x), color=color, ls=ls,
                        lw=2 if not c else 1.3, label=_group_label(g, v))
            if metric != "fid":
                ax.set_xlim(x[0], x[-1])
                style.chance_line(ax, (chance or {}).get(metric))
                if metric == "Iprime":
                    style.anchor_line(ax, anchor, at=0.85)  # curves fall to the right: its top is free
                ax.set_xlabel(f"x ({label})")
                ax.set_ylabel(f"fraction of configs with {label} ≥ x")
            else:
                ax.set_xscale("log")
                ax.set_xlabel("x (FID, log scale)")
                ax.set_ylabel("fraction of configs with FID ≤ x")
            ax.set_ylim(-0.02, 1.02)
            ax.set_title(f"{name}: {label if metric != 'fid' else 'FID'}")
            if metric != "fid":  # one legend per column: the FID panel below has the same lines
                ax.legend(fontsize="x-small", **({"loc": "lower left"} if not c else
                                                 {"loc": "upper left", "bbox_to_anchor": (1.01, 1)}))
    style.suptitle(fig, f"Robustness: how much of each grid trains well (diverged: below every x) — {title}")
    return fig


def draw_ecdf(configs: pd.DataFrame, anchor: float | None, title: str, metric: str = "Iprime") -> Figure:
    """ECDFs of I' (or another higher-is-better column) of every family (thick) and subgrid (thin)
    on one axis; diverged at the left."""
    families, subs = _layout(configs)
    colors = style.colors([g["model"] for g in families])
    label = "I'" if metric == "Iprime" else metric
    ok_ip = ok_values(configs, metric)
    lo, hi = (0.0, max([*ok_ip, 1e-9]))  # the data's range: the anchor never stretches it
    span = hi - lo
    slot = lo - 0.08 * span
    fig = style.new_figure((13, 6.5))
    with sns.axes_style("whitegrid"):
        ax = fig.subplots()
    sub_groups = [g for gs in subs.values() for g in gs]
    styles = style.subgrid_styles([g["label"] for g in sub_groups])
    for g in families + sub_groups:
        v = analysis.outcome_values(g["rows"], metric)
        if not v.size:
            continue
        color, ls = (colors[g["model"]], "-") if g["subgrid"] == "all" else styles[g["label"]]
        sns.ecdfplot(x=np.where(np.isneginf(v), slot, v), ax=ax, color=color, ls=ls,
                     lw=3 if g["subgrid"] == "all" else 1.2, label=_group_label(g, v))
    ax.axvline(lo - 0.04 * span, color="0.6", ls=":", lw=1)
    whole = bool(ok_ip.size) and np.all(ok_ip == np.round(ok_ip))   # a count (modes captured): whole ticks
    ticks = [t for t in MaxNLocator(6, integer=whole).tick_values(lo, hi) if lo <= t <= hi]
    ax.set_xticks([slot, *ticks], ["diverged", *(f"{t:g}" for t in ticks)])
    ax.set_xlim(slot - 0.04 * span, hi + 0.02 * span)
    if metric == "Iprime":
        style.anchor_line(ax, anchor, at=0.12)  # curves rise to the right: its bottom is free
    ax.set_xlabel(f"{label} (final)")
    ax.set_ylabel(f"fraction of configs with {label} ≤ x")
    ax.legend(fontsize="x-small", loc="center left", bbox_to_anchor=(1.01, 0.5))
    style.suptitle(fig, f"ECDF of {label} per family and subgrid — {title}")
    return fig


def draw_importance(table: pd.DataFrame, fits: list, title: str) -> Figure | None:
    """Per fitted family: permutation importance of each feature (a setting, or aliased settings
    together) with its interval, then partial dependence of I' on the top features, drawn only
    where the model predicts I' at all (FamilyFit.predicts: its R² interval lies above 0)."""
    fitted = [f for f in fits if f.skipped is None]
    if not fitted:
        return None
    colors = style.colors([f.family for f in fits])
    # partial dependence only for families whose model predicts I': else one column for the words
    cols = 1 + (estimates.TOP_SETTINGS if any(f.predicts for f in fitted) else 1)
    fig = style.new_figure((4.4 * max(cols, 3), 3.6 * len(fitted) + 0.6))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(len(fitted), cols, squeeze=False)
    for r, fit in enumerate(fitted):
        t = table[table["family"] == fit.family]
        _importance_bars(axes[r, 0], t, fit, colors[fit.family])
        top = list(t["setting"][: estimates.TOP_SETTINGS]) if fit.predicts else []
        if not fit.predicts:  # the words run over the row's empty panels, outside the layout
            words = estimates.NO_PREDICTION.replace(" (", "\n(")
            axes[r, 1].text(0.02, 0.5, f"{fit.family}: {words};\nno partial dependence drawn",
                            transform=axes[r, 1].transAxes, va="center",
                            fontsize="medium").set_in_layout(False)
            axes[r, 1].set_axis_off()
        curves = estimates.partial_dependence_curves(fit, top)
        lims = [v for _, avg in curves.values() for v in avg]
        for c in range(1, cols):
            ax = axes[r, c]
            if c > len(top):
                ax.set_visible(c == 1 and not fit.predicts)
                continue
            labels, avg = curves[top[c - 1]]
            pos = np.arange(len(labels))
            ax.plot(pos, avg, "o-", color=colors[fit.family])
            ax.set_xticks(pos, [f"{v:g}" if isinstance(v, float) else str(v) for v in labels],
                          rotation=20 if "+" in top[c - 1] else 0, ha="right" if "+" in top[c - 1] else "center")
            pad = 0.05 * (max(lims) - min(lims) + 1e-9)
            ax.set_ylim(min(lims) - pad, max(lims) + pad)
            ax.set_xlabel(top[c - 1])
            ax.set_ylabel("predicted I' (partial dependence)")
            ax.set_title(f"{fit.family}: #{c} {top[c - 1]}", fontsize="medium")
    style.suptitle(fig, f"Which settings decide I' (gradient boosting per family, {estimates.CV_FOLDS}-fold "
                        f"CV; diverged configs at I' = {analysis.DIVERGED_IPRIME:g}; aliased settings "
                        f"as one feature) — {title}")
    return fig


def _importance_bars(ax, t: pd.DataFrame, fit: Any, color: Any) -> None:
    """One family's importance bars with their intervals; faded where the model predicts nothing."""
    y = np.arange(len(t))
    err = np.vstack([t["importance"] - t["ciLow"], t["ciHigh"] - t["importance"]]).clip(0)
    ax.barh(y, t["importance"], xerr=err, color=color, alpha=0.75 if fit.predicts else 0.25, capsize=3)
    ax.set_yticks(y, [s + (" *" if a else "") for s, a in zip(t["setting"], t["aliasing"])])
    ax.invert_yaxis()
    ax.axvline(0, color="k", lw=0.8)
    ax.set_xlabel("permutation importance (drop in held-out R²)"
                  + ("\n* aliasing: see importance.csv" if t["aliasing"].any() else ""))
    ax.set_title(f"{fit.family}: CV R² = {fit.r2:.2f} [{fit.r2Low:.2f}, {fit.r2High:.2f}], "
                 f"n = {fit.n}", fontsize="medium")


def draw_budget(budget: pd.DataFrame, configs: pd.DataFrame, anchor: float | None,
                title: str) -> Figure | None:
    """Expected best I' (top) and best FID (bottom) of n random configs against n."""
    if budget.empty:
        return None
    families, subs = _layout(configs)
    colors = style.colors([g["model"] for g in families])
    metrics = list(dict.fromkeys(budget["metric"]))     # I', FID, then a dataset's own measures
    cols = 1 + len(subs)
    fig = style.new_figure((6 * cols + 2.5 * len(subs), 4.5 * len(metrics) + 0.8))
    with sns.axes_style("whitegrid"):
        axes = fig.subplots(len(metrics), cols, squeeze=False)
    panels = [("families", families)] + [(f"{m} subgrids", g) for m, g in subs.items()]
    for r, metric in enumerate(metrics):
        b = budget[budget["metric"] == metric]
        for c, (name, gs) in enumerate(panels):
            ax = axes[r, c]
            styles = style.subgrid_styles([g["label"] for g in gs])
            for g in gs:
                d = b[(b["family"] == g["model"]) & (b["subgrid"] == g["subgrid"])]
                if d.empty:
                    continue
                color, ls = (colors[g["model"]], "-") if not c else styles[g["label"]]
                ax.plot(d["n"], d["expected"], color=color, ls=ls, lw=2 if not c else 1.3,
                        label=f"{g['label']} (N={int(d['configs'].iloc[0])})")
                if not c:  # bands for the families only: twelve overlapping bands read as fog
                    # the interval is drawn for n <= N/4 only (NaN beyond): the dark band stops there
                    ax.fill_between(d["n"], d["ciLow"], d["ciHigh"], color=color, alpha=0.3, lw=0)
                    ax.fill_between(d["n"], d["lo"], d["hi"], color=color, alpha=0.1, lw=0)
            ax.set_xscale("log")
            ax.set_xlabel("budget n (configs drawn at random from the grid)")
            label = {"Iprime": "I'", "fid": "FID"}.get(metric, metric)
            if metric == "fid":
                if (b["lo"] > 0).all():
                    ax.set_yscale("log")
                ax.set_ylabel("expected best (lowest) FID")
            else:
                if metric == "Iprime":
                    style.anchor_line(ax, anchor, vertical=False, at=0.03)  # lines rise to the right
                ax.set_ylabel(f"expected best {label}")
            ax.set_title(f"{name}: {label}")
            ax.legend(fontsize="x-small", **({} if not c else
                                             {"loc": "upper left", "bbox_to_anchor": (1.01, 1)}))
    band = round(100 * (estimates.BUDGET_BAND[1] - estimates.BUDGET_BAND[0]))
    style.suptitle(fig, f"Best score against budget — {title}\nexpected best of n random configs (Tang et "
                        f"al. 2020's unbiased estimator); families: light band {band}% of draws, dark band "
                        f"95% bootstrap-t interval of the expectation, drawn for n ≤ "
                        f"{BUDGET_MAX_FRACTION:g} N only (N/16 for a heavy right tail): beyond it N configs "
                        "cannot bound the best of n")
    return fig


def draw_noise(table: pd.DataFrame, configs: pd.DataFrame, title: str) -> Figure | None:
    """The two spreads per summary row (left), and each ok config's sampling sd (right)."""
    cols = ["samplingStd", "seedStdPooled", "trainingStd"]
    long = table.melt(id_vars=["name"], value_vars=[c for c in cols if c in table],
                      var_name="spread", value_name="sd")
    long["sd"] = pd.to_numeric(long["sd"], errors="coerce")
    long = long.dropna(subset=["sd"])
    if long.empty:
        return None
    fig = style.new_figure((14, 0.32 * table["name"].nunique() + 2.8))
    with sns.axes_style("whitegrid"):
        ax, ax2 = fig.subplots(1, 2, width_ratios=(1.3, 1))
    sns.stripplot(data=long, y="name", x="sd", hue="spread", order=list(table["name"]), ax=ax,
                  size=8, jitter=False, dodge=True, palette="Set1")
    ax.set_xlabel("standard deviation of one run's I'")
    ax.set_ylabel("")
    ax.set_title("sampling (sample set) vs seed (training + sample set)", fontsize="medium")
    if "samplingVar" in configs:
        ok = configs[(configs["status"] == "ok") & np.isfinite(configs["samplingVar"])]
        ok = ok.assign(samplingSd=np.sqrt(ok["samplingVar"]))
        if len(ok):
            sns.histplot(data=ok, x="samplingSd", hue="model", element="step", stat="percent",
                         common_norm=False, palette=style.colors(ok["model"].unique()), ax=ax2,
                         hue_order=model_order(ok["model"]))
    ax2.set_xlabel("per config: sqrt(mean over seeds of (I'_A - I'_B)² / 4)")
    ax2.set_title("each config's own sampling sd (one pair per seed: noisy)", fontsize="medium")
    style.suptitle(fig, f"Two sources of noise in I' — {title}")
    return fig


def draw_iprime_vs_fid(fooled: pd.DataFrame, thr: dict[str, float], anchor: float | None,
                       title: str) -> Figure | None:
    """I' against FID per family (FacetGrid), the runs with a high I' and a bad FID crossed
    (analysis.fooled_runs defines both); the other families' runs in gray behind, so that a
    family whose high-I' runs sit at a worse FID than another's stands out."""
    if fooled.empty:
        return None
    import matplotlib.pyplot as plt
    models = model_order(fooled["model"])
    colors = style.colors(models)

    def panel(data: pd.DataFrame, **_: Any) -> None:
        ax = plt.gca()
        m = data["model"].iloc[0]
        others = fooled[fooled["model"] != m]
        ax.scatter(others["fid"], others["Iprime"], s=6, color="0.8", label="other families")
        rest, bad = data[~data["fooled"]], data[data["fooled"]]
        ax.scatter(rest["fid"], rest["Iprime"], s=10, alpha=0.6, color=colors[m], label="runs")
        ax.scatter(bad["fid"], bad["Iprime"], s=40, marker="x", color="crimson",
                   label="high I', bad FID")
        ax.set_title(f"{m}: {len(bad)} of {len(data)} runs high I', bad FID")

    with sns.axes_style("whitegrid"):
        grid = sns.FacetGrid(fooled, col="model", col_order=models, height=4.2, aspect=1.15,
                             sharex=True, sharey=True)
    try:
        grid.map_dataframe(panel)
        top = 100 * (1 - analysis.HIGH_IPRIME_QUANTILE)
        for ax in grid.axes.flat:
            ax.set_xscale("log")
            ax.axhline(thr["highIprime"], color="crimson", lw=0.8, ls=":",
                       label=f"high I': ≥ {thr['highIprime']:.3g} (the grid's top {top:.0f}%)")
            ax.axvline(thr["badFid"], color="crimson", lw=0.8, ls="-.",
                       label=f"bad FID: > {thr['badFid']:.3g} (worse than the grid's median)")
            style.anchor_line(ax, anchor, vertical=False)
        grid.set_axis_labels("FID (log scale)", "I'")
        handles, labels = grid.axes.flat[0].get_legend_handles_labels()
        grid.figure.legend(handles, labels, loc="outside lower center", ncol=3, fontsize="small")
        style.suptitle(grid.figure, f"I' against FID: where I' is fooled — {title}")
        grid.figure.set_layout_engine("constrained")
        return grid.figure
    except Exception:
        plt.close(grid.figure)
        raise


def draw_margin(mruns: pd.DataFrame, folder: Path, anchor: float | None,
                title: str) -> Figure | None:
    """I' against margin (runs, mean +- sd over seeds, diverged), and the best samples per margin."""
    if mruns.empty:
        return None
    margins = sorted(mruns["margin"].astype(float).unique())
    order = [f"{m:g}" for m in margins]
    d = mruns.assign(m=mruns["margin"].astype(float).map(lambda v: f"{v:g}"))
    ok = d[np.isfinite(run_scores(d))]
    models = model_order(d["model"])
    colors = style.colors(models)
    fig = style.new_figure((max(9.0, 1.8 * len(margins)), 8))
    grid = fig.add_gridspec(2, len(margins), height_ratios=(2.2, 1))
    with sns.axes_style("whitegrid"):
        ax = fig.add_subplot(grid[0, :])
    if len(ok):
        sns.stripplot(data=ok, x="m", y="Iprime", hue="model", order=order, hue_order=models,
                      palette=colors, ax=ax, alpha=0.6, legend=False)
        sns.pointplot(data=ok, x="m", y="Iprime", hue="model", order=order, hue_order=models,
                      palette=colors, ax=ax, errorbar="sd", markers="D", linestyles="-")
    diverged = d[~np.isfinite(run_scores(d))].groupby("m").size()
    for i, m in enumerate(order):
        if diverged.get(m, 0):
            ax.annotate(f"{diverged[m]} diverged", (i, 0), xytext=(0, 12), textcoords="offset points",
                        ha="center", fontsize="small", color="crimson",
                        arrowprops={"arrowstyle": "->", "color": "crimson"})
    style.anchor_line(ax, anchor, vertical=False)
    ax.set_xlabel("margin m")
    ax.set_ylabel("I' (final)")
    ax.legend(fontsize="small")
    for i, m in enumerate(order):
        sub = fig.add_subplot(grid[1, i])
        sub.set_xticks([])
        sub.set_yticks([])
        rows = ok[ok["m"] == m]
        if rows.empty:
            sub.set_title(f"m={m}: none ok", fontsize="small")
            continue
        best = rows.loc[rows["Iprime"].idxmax()]
        path = folder / str(best["samplesPath"])
        if best["samplesPath"] and path.exists():
            img = imread(path)
            sub.imshow(img, **({"cmap": "gray", "vmin": 0, "vmax": 1} if img.ndim == 2 else {}))
        sub.set_title(f"m={m}: {best['model']}, I' = {best['Iprime']:.3g}", fontsize="small")
    style.suptitle(fig, f"The margin: I' against m, best samples per m — {title}")
    return fig
