"""A grid's report as files: every figure as PNG (the paper's also as PDF), importance.csv,
budget.csv, measures.csv and summary_<measure>.csv (a dataset's own measures and the verdict on
each, when it has any), summary.csv, summary.md,
and index.html, the one page that shows them all: each
figure with a guide to reading it, the summary table with its notes, the most common errors,
provenance, and the grid's progress against grid.json. `write_report` writes them all."""
from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import Any

import pandas as pd
from matplotlib.figure import Figure

from harness.atomic import write_atomic
from harness.config import TABLE1_SETTINGS
from harness.report import analysis, estimates, floors, style
from harness.report.anchor import real_anchor
from harness.report.budget import BUDGET_INTERVAL, BUDGET_MAX_FRACTION
from harness.report.extra_figures import (
    draw_budget,
    draw_ecdf,
    draw_importance,
    draw_iprime_vs_fid,
    draw_margin,
    draw_noise,
    draw_robustness,
)
from harness.report.paper_figures import (
    draw_curves,
    draw_family_fig2,
    draw_fig2,
    draw_fig3,
    draw_fig4,
    measure_name,
)
from harness.report.seeds import common_seeds
from harness.report.tables import (
    BASELINE,
    NOT_RECORDED,
    REFERENCE,
    aggregate_seeds,
    check_classifiers,
    common_bins,
    load_results,
    measures_table,
    other_families,
    progress_table,
    progress_text,
    provenance_table,
    registered_models,
    run_scores,
    speed_note,
    summary_table,
)
from harness.report.verdict import measures_html, notes, shown_measure, summary_markdown, verdict_html

# "How to read it", above each figure beyond the paper's.

GUIDES = {
    "robustness": "Read a curve at any score x: the share of that family's (or subgrid's) grid "
                  "reaching at least x, diverged configs never do; the higher and further right a "
                  "curve stays, the more of its grid trains well, and the dashed line is where real "
                  "MNIST scores.",
    "ecdf": "Every family and subgrid on one axis: a curve further right is better throughout, a "
            "step at the left edge is the share that diverged, and where two curves cross neither "
            "family dominates.",
    "importance": "Long bars are the settings (or settings that move together, joined by '+') "
                  "whose shuffling costs the model most held-out R² (an interval across 0: the "
                  "setting does not matter), and the curves beside them show which of their values "
                  "the model predicts to train well; a family whose cross-validated R² interval does "
                  "not lie above 0 gets no curves, since no setting predicts its I'.",
    "budget": "Follow a family's line to your budget n: it is the best score you can expect from n "
              "configs drawn at random from its grid, the light band is where 90% of such draws "
              "land and the dark band the uncertainty of the expectation, which stops at a quarter "
              "of the grid; where lines cross, the ranking of families depends on the budget.",
    "noise": "Read a difference between two families against both numbers: samplingStd is how "
             "much one run's I' moves with a fresh sample set, seedStdPooled how much it moves with "
             "a fresh training seed (sample set included).",
    "iprime_vs_fid": "Good runs sit top left (high I', low FID); the crosses are runs the "
                     "classifier scores high although their feature statistics are far from real "
                     "MNIST, where I' is fooled.",
    "margin": "The margin's effect on I' (dots: runs, diamonds: mean and sd over seeds, arrows: "
              "diverged runs), with the best run's samples at each margin below.",
}

def _img(png: bytes, alt: str) -> str:
    """A PNG embedded in the page (the page is one self-contained file)."""
    return (f'<img alt="{html.escape(alt)}" style="max-width:100%" '
            f'src="data:image/png;base64,{base64.b64encode(png).decode()}">')

def folded(caption: str, body: str) -> str:
    """A section below the verdict: folded under its heading, opened by a click."""
    return f"<details><summary><h2>{html.escape(caption)}</h2></summary>{body}</details>"


def _section(key: str, caption: str, progress: str, png: bytes | None, extra: str = "",
             missing: str = "") -> str:
    """A figure's section of the page: caption, guide, progress, the figure (or why it is
    missing) and `extra` (its tables), folded."""
    esc = html.escape
    body = _img(png, caption) if png is not None else f"<p><i>{esc(missing)}</i></p>"
    guide = GUIDES[key.split("_", 1)[0] if key not in GUIDES else key]   # robustness_<metric>: robustness's
    return folded(caption, f"<p class='guide'><b>How to read it:</b> {esc(guide)}</p>"
                           f"<p>{esc(progress)}</p>{body}{extra}")


def write_analysis(runs: pd.DataFrame, configs: pd.DataFrame, table: pd.DataFrame, folder: Path,
                   out: Path, title: str, progress: str, data_dir: str | Path | None = None,
                   classifier: str | Path | None = None, chance: pd.DataFrame | None = None
                   ) -> tuple[list[str], list[Path]]:
    """robustness.png (with each measure's highest `chance` reference: floors.chance_floor),
    ecdf.png, importance.csv/.png, budget.csv/.png, noise.png, iprime_vs_fid.png and margin.png
    (each when there is something to draw), and the page's sections for them. `configs` must
    carry `fid` (analysis.fid_by_config)."""
    esc = html.escape
    written: list[Path] = []
    sections: list[str] = []
    score = run_scores(runs)
    anchor, anchor_text = real_anchor(runs, data_dir, classifier)

    def png(fig: Figure | None, stem: str) -> bytes | None:
        return style.write_figure(fig, out, stem, written)

    def csv(frame: pd.DataFrame, name: str) -> None:
        write_atomic(out / name, frame.to_csv(index=False))
        written.append(out / name)

    floor = {m: float(chance[f"{m}Max"].max()) for m in ("Iprime", *analysis.report_metrics(runs))
             if chance is not None and f"{m}Max" in chance}
    iprime = iprime_sections(configs, anchor, f"<p>Anchor of the I' scale: {esc(anchor_text)}.</p>", title,
                             progress, png, csv, floor)
    own = analysis.report_metrics(runs)          # a dataset's own measures (a mixture's modesCaptured)
    mine = [x for metric in own for x in own_metric_sections(configs, metric, title, progress, png, csv,
                                                              floor.get(metric))]
    # the verdict's measure first: on a mixture I' is secondary (and near its chance ceiling)
    sections += iprime + mine if analysis.primary_measure(runs) == "Iprime" else mine + iprime

    budget = estimates.budget_table(configs, registered_models(), metrics=("Iprime", "fid", *own))
    csv(budget, "budget.csv")
    note = (f"<p>The interval of the expectation (ciLow, ciHigh in budget.csv; the dark band): "
            f"{esc(BUDGET_INTERVAL.replace('BUDGET_MAX_FRACTION', f'{BUDGET_MAX_FRACTION:g}'))}. "
            f"Beyond it it is left out (empty): the best of n leans on the top N/n of the N "
            "configs, too few to bound it with the coverage it claims (python -m "
            "harness.report.budget simulates the coverage).</p>")
    sections.append(_section("budget", "Best score against budget", progress,
                             png(draw_budget(budget, configs, anchor, title), "budget"), note,
                             missing="not drawn: no ok or diverged configs"))

    spread_cols = ["group", "name", "samplingStd", "seedStdPooled", "trainingStd", "seedsPerConfig"]
    spread = table[[c for c in spread_cols if c in table]]
    note = ("<p>samplingStd: each run's I' on two disjoint halves A, B of its scored samples; "
            "(A - B)² / 4 estimates the variance of I' at the full sample count (halves iid; "
            "variance ~ 1/N), pooled over ok configs. seedStdPooled: root mean variance over seeds "
            "(configs with 2+ seeds; empty with one seed). trainingStd = sqrt(seedStdPooled² - "
            "samplingStd²). 'not recorded': the table predates the IprimeSetA/IprimeSetB columns."
            "</p>")
    sections.append(_section("noise", "Two sources of noise: sample set and seed", progress,
                             png(draw_noise(table, configs, title), "noise"),
                             note + spread.to_html(index=False, float_format=lambda v: f"{v:.3g}",
                                                   na_rep=""),
                             "not drawn: neither the sampling spread nor a seed spread is recorded"))

    fooled, thr = analysis.fooled_runs(runs, score)
    top = fooled[fooled["fooled"]].sort_values("Iprime", ascending=False).head(10) if len(fooled) else fooled
    cols = [c for c in ("model", "subgrid", *TABLE1_SETTINGS, "seed", "Iprime", "fid", "configId")
            if c in top]
    extra = ("<p>Highest-I' runs among those with a high I' and a bad FID:</p>"
             + top[cols].to_html(index=False, float_format=lambda v: f"{v:.4g}") if len(top) else "")
    sections.append(_section("iprime_vs_fid", "I' against FID", progress,
                             png(draw_iprime_vs_fid(fooled, thr, anchor, title), "iprime_vs_fid"),
                             extra, "not drawn: no ok run with a finite FID"))

    mruns = analysis.margin_runs(runs, score)
    sections.append(_section("margin", "The margin", progress,
                             png(draw_margin(mruns, folder, anchor, title), "margin"),
                             missing="not drawn: no family varies margin in this grid "
                                     "(see grids/margin_sweep.yaml)"))
    return sections, written


def iprime_sections(configs: pd.DataFrame, anchor, anchor_html: str, title: str, progress: str, png, csv,
                    floor: dict[str, float]) -> list[str]:
    """I' drawn per family and subgrid: robustness (with each measure's highest chance reference
    and the real anchor), ECDF, importance (robustness.png, ecdf.png, importance.csv/.png)."""
    imp, fits = estimates.importance(configs, registered_models())
    csv(imp, "importance.csv")
    return [_section("robustness", "Robustness curves", progress,
                     png(draw_robustness(configs, anchor, title, chance=floor), "robustness"), anchor_html),
            _section("ecdf", "ECDF of I' per family and subgrid", progress,
                     png(draw_ecdf(configs, anchor, title), "ecdf")),
            _section("importance", "Hyperparameter importance", progress,
                     png(draw_importance(imp, fits, title), "importance"), importance_html(imp, fits),
                     "not drawn: no family has enough configs with varying settings")]


def own_metric_sections(configs: pd.DataFrame, metric: str, title: str, progress: str, png, csv,
                        chance: float | None = None) -> list[str]:
    """A dataset's own measure (higher is better) drawn as I' is: robustness (with its highest
    chance reference), ECDF, importance (robustness_<metric>.png, ecdf_<metric>.png,
    importance_<metric>.csv/.png)."""
    esc = html.escape
    imp, fits = estimates.importance(configs.assign(Iprime=configs[metric]), registered_models())
    csv(imp, f"importance_{metric}.csv")
    return [_section(f"robustness_{metric}", f"Robustness: {metric}", progress,
                     png(draw_robustness(configs, None, title, metric, None if chance is None else {metric: chance}),
                         f"robustness_{metric}"),
                     f"<p>{esc(metric)}, the dataset's own measure, drawn as I' is in its own section.</p>"),
            _section(f"ecdf_{metric}", f"ECDF of {metric} per family and subgrid", progress,
                     png(draw_ecdf(configs, None, title, metric), f"ecdf_{metric}")),
            _section(f"importance_{metric}", f"Hyperparameter importance for {metric}", progress,
                     png(draw_importance(imp, fits, f"{metric} — {title}"), f"importance_{metric}"),
                     importance_html(imp, fits), "not drawn: too few configs")]


# --- the page ------------------------------------------------------------------------------

def importance_html(imp: pd.DataFrame, fits: list) -> str:
    """The importance section's tables: the model per family (its R² and what it can say), and
    importance.csv with what its `aliasing` column means."""
    fmt = {"float_format": lambda v: f"{v:.3g}", "na_rep": "", "index": False}
    fit_table = pd.DataFrame([{"family": f.family, "configs": f.n, "settings": ", ".join(f.settings),
                               "cvR2": f.r2, "cvR2Low": f.r2Low, "cvR2High": f.r2High,
                               "reading": f.skipped or ("" if f.predicts else estimates.NO_PREDICTION)}
                              for f in fits])
    unread = [f.family for f in fits if f.skipped is None and not f.predicts]
    words = (f"<p><b>{html.escape(', '.join(unread))}: {html.escape(estimates.NO_PREDICTION)}</b>; "
             "its importances are left faded and no partial dependence is drawn.</p>" if unread else "")
    aliasing = ("<p>Settings that move together in a family's rows (each one's value fixes the "
                "others', e.g. a subgrid that changes lr, adamBeta1 and adamBeta2 at once) cannot be "
                "told apart: they are one feature, named by its members joined by '+', and shuffled "
                "together. 'partly crossed with X' (the aliasing column): some combinations of the "
                "two never ran (e.g. a gamma run at one lr only), so shuffling one alone makes "
                "configs the grid never trained, and part of its importance is the model's guess "
                "about them.</p>")
    return ("<p>Importance model per family (cross-validated R² with its interval):</p>" + words
            + fit_table.to_html(**fmt) + aliasing + (imp.to_html(**fmt) if len(imp) else ""))


def provenance_html(runs: pd.DataFrame, classifier_note: str) -> str:
    """The page's Provenance section: the classifier sentence and the table of distinct values."""
    return folded("Provenance", f"<p>{html.escape(classifier_note)} {html.escape(speed_note(runs))}</p>"
                  + "<p>Distinct values of each provenance column, with their runs. "
                  + f"{html.escape(NOT_RECORDED)}: error runs (nothing was scored) and runs written "
                  + "before provenance was recorded.</p>" + provenance_table(runs).to_html(index=False))


STYLE = ("<style>body{font-family:sans-serif;max-width:1400px;margin:auto}"
         "table{border-collapse:collapse;font-size:12px}td,th{border:1px solid #ccc;padding:2px 5px}"
         "pre{background:#f6f6f6;padding:8px}summary{cursor:pointer}"
         "summary h2{display:inline-block;margin:8px 0;font-size:1.2em}"
         "h1{font-size:1.5em;margin:8px 0}.status{margin:4px 0;font-size:13px}"
         ".answer{margin:4px 0;font-size:14px}.rule{font-size:11px;color:#444;margin:4px 0 12px}"
         "table.verdict td,table.verdict th{padding:1px 6px;white-space:nowrap}"
         "table.verdict th{white-space:normal}</style>")   # long headers wrap: the table fits a laptop's width


def index_html(meta: dict[str, Any], runs: pd.DataFrame, progress: str, table: pd.DataFrame,
               figures: dict[str, bytes], seed_agg: str, sections: list[str] = (),
               provenance: str = "", lead: str = "") -> str:
    """index.html: the verdict first (verdict.verdict_html) and `lead` (the dataset's own
    measures), then, folded, the figures, the
    analysis `sections`, the summary with its notes, the most common errors, `provenance`, and
    the grid's progress against grid.json with grid.yaml."""
    esc = html.escape
    name = esc(str(meta["name"]))
    head = f"<!doctype html><html><head><meta charset='utf-8'><title>{name}</title>{STYLE}</head><body>"
    status = (f"<p class='status'><b>{esc(progress)}</b>. "
              f"Runs by status: {esc(runs['status'].value_counts().to_dict().__str__())}.</p>")
    parts = [head, f"<h1>EBGAN grid study: {name}</h1>", status, verdict_html(table), lead]
    for caption, png in figures.items():
        parts.append(folded(caption, f"<p>{esc(progress)}</p>{_img(png, caption)}"))
    parts.extend(sections)
    parts.append(folded("Summary", f"<p>{esc(progress)}</p>"
                        '<div style="overflow-x:auto">'  # many columns: it scrolls, the page does not
                        + table.to_html(index=False, float_format=lambda v: f"{v:.4g}", na_rep="")
                        + "</div><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes(
                            table.attrs["thresholds"], seed_agg, table.attrs.get("holmM", 0),
                            shown_measure(table))) + "</ul>"))
    errors = runs.loc[runs["status"] == "error"]
    if len(errors) and "error" in runs.columns:
        counts = errors["error"].fillna("(no message)").value_counts().head(10)
        parts.append(folded("Errors (most common)", counts.rename("runs").to_frame().to_html()))
    parts.append(provenance)
    yaml_text = meta.get("grid_yaml") or "(grid.yaml missing)"
    parts.append(folded("Grid: done against expected (grid.json)",
                        progress_table(runs, meta).to_html(index=False, na_rep="?")
                        + f"<h3>grid.yaml</h3><pre>{esc(yaml_text)}</pre>"))
    parts.append("</body></html>")
    return "\n".join(parts)


def write_report(folder: Path, out: Path, seed_agg: str = "mean", data_dir: str | Path | None = None,
                 classifier: str | Path | None = None, allow_mixed_classifiers: bool = False) -> list[Path]:
    """Every output of one grid's report into `out`; returns the paths written.

    data_dir, classifier: for the real MNIST anchor of the I' scale (real_anchor)."""
    runs, meta = load_results(folder)
    classifier_note, mixed = check_classifiers(runs, Path(folder) / "trials.parquet", allow_mixed_classifiers)
    compared, seeds_note = common_seeds(runs)   # at each grid point, the seeds every side ran
    configs = aggregate_seeds(compared, seed_agg)
    if "fid" in runs:
        configs["fid"] = analysis.fid_by_config(compared, run_scores(compared), seed_agg).reindex(
            configs["settingsId"]).to_numpy()
    progress = progress_text(runs, meta)
    title = f"{meta['name']}: {progress}; seeds: {seed_agg}"
    if mixed:
        title += "; MIXED classifiers"
    primary = analysis.primary_measure(runs)   # the paper's histograms and the curves: the verdict's measure
    bins = common_bins(configs[primary].to_numpy())
    written: list[Path] = []
    pngs: dict[str, bytes] = {}

    def save(fig: Figure | None, stem: str, caption: str, pdf: bool) -> None:
        data = style.write_figure(fig, out, stem, written, pdf)
        if data is not None:
            pngs[caption] = data

    save(draw_fig2(configs, bins, title, measure=primary), "fig2_histograms",
         f"Fig. 2: {measure_name(primary)} histograms", pdf=True)
    for family, models in other_families(configs).items():
        save(draw_family_fig2(configs, bins, title, models, primary), f"fig2_{family}",
             f"Fig. 2-style: {', '.join(models)} against {REFERENCE} and {BASELINE}", pdf=True)
    save(draw_fig3(configs, bins, title, primary), "fig3_optimizer_subgrids",
         "Fig. 3: GAN optimizer subgrids", pdf=True)
    own = analysis.report_metrics(runs)  # a dataset's own measures (a mixture's modesCaptured), or none
    # Fig. 4 by those first: I' alone can be fooled
    save(draw_fig4(runs, Path(folder), title, (*own, "Iprime")), "fig4_best_samples", "Fig. 4: best samples",
         pdf=False)
    save(draw_curves(runs, title, (primary, *own, "Iprime")), "curves",
         f"{measure_name(primary)} over training", pdf=False)
    iprime_table = summary_table(configs)
    chance, chance_text = floors.chance_floor(runs, data_dir, classifier)
    sections, extra = write_analysis(runs, configs, iprime_table, Path(folder), out, title, progress,
                                     data_dir, classifier, chance)
    written += extra
    measures = measures_table(configs, own, analysis.report_targets(runs))
    # the first screen's verdict on the primary measure; a verdict on each secondary one, each its own Holm family
    tables = {m: iprime_table if m == "Iprime" else summary_table(configs.assign(Iprime=configs[m]))
              for m in ("Iprime", *own)}
    table, verdicts = tables.pop(primary), tables
    table.attrs["measure"] = primary
    for m, t in verdicts.items():       # each secondary measure's chance, beside its verdict
        t.attrs["chanceLines"] = floors.measure_chance_lines(configs, chance, m)
    conv = floors.convergence_table(runs, chance)
    basis = [*floors.basis_lines(runs, configs, chance, chance_text, conv), *([seeds_note] if seeds_note else []),
             *analysis.norm_notes(runs)]
    for name, frame in {"chance.csv": chance, "convergence.csv": conv}.items():
        if frame is not None and len(frame):
            write_atomic(out / name, frame.to_csv(index=False))
            written.append(out / name)
    lead = "<h2>What the verdict stands on</h2><ul>" + "".join(f"<li>{html.escape(b)}</li>" for b in basis) + "</ul>"
    if len(measures):
        for name, frame in {"measures.csv": measures,
                            **{f"summary_{m}.csv": t for m, t in verdicts.items()}}.items():
            write_atomic(out / name, frame.to_csv(index=False))
            written.append(out / name)
        lead += f"<h2>The dataset's own measures</h2>{measures_html(measures, own, verdicts)}"
    write_atomic(out / "summary.csv", table.to_csv(index=False))
    write_atomic(out / "summary.md", summary_markdown(table, title, seed_agg, measures, verdicts, basis, chance))
    write_atomic(out / "index.html", index_html(meta, runs, progress, table, pngs, seed_agg, sections,
                                                provenance_html(runs, classifier_note), lead))
    return written + [out / "summary.csv", out / "summary.md", out / "index.html"]
