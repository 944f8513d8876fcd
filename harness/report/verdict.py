"""The summary in words: the page's first screen (the verdict of every family and GAN subgrid
against EBGAN, generated from summary.csv's rows, and a sentence on the paper's question) and
the notes that say what each summary.csv column means (summary.md and the page).

The verdict's rule is compare.VERDICT_RULE; its tests are named by stats.UNPAIRED_TEST and
stats.PAIRED_TEST, the score's interval by stats.PAIRED_INTERVAL, the correction by
stats.ADJUSTMENT."""
from __future__ import annotations

import html
import math
from typing import Any

import numpy as np
import pandas as pd

from harness.report import compare, stats
from harness.report.tables import BASELINE, NOT_RECORDED_VALUE, REFERENCE

DASH = "—"


# --- the verdict table -----------------------------------------------------------------------

def _pct(v: Any, digits: int = 0) -> str:
    return DASH if not _finite(v) else f"{100 * float(v):.{digits}f}%"


def _finite(v: Any) -> bool:
    try:
        return math.isfinite(float(v))
    except (TypeError, ValueError):
        return False


def _p(v: Any) -> str:
    """A p-value for reading: two significant digits, '< 0.001' below that."""
    if not _finite(v):
        return DASH
    return "< 0.001" if v < 0.001 else f"{v:.2g}"


def _p_is(v: Any) -> str:
    """'= 0.094' or '< 0.001', to follow a 'p'."""
    text = _p(v)
    return text if text.startswith("<") else f"= {text}"


def _label(row: pd.Series) -> str:
    """A row as the verdict table names it: GAN's subgrids carry the model's name too."""
    return f"{BASELINE} {row['name']}" if row["group"] == "subgrid" and row["model"] == BASELINE else row["name"]


def _g_updates(row: pd.Series) -> str:
    g, counts = row.get("gStepsMedian"), row.get("budgetCounts", NOT_RECORDED_VALUE)
    if g is None or isinstance(g, str):
        return NOT_RECORDED_VALUE
    return (f"{float(g):,.0f}" if _finite(g) else DASH) + (
        "" if counts == NOT_RECORDED_VALUE else f" ({counts})")


def _cells(row: pd.Series) -> dict[str, str]:
    """One summary row as the verdict table's cells."""
    scored = int(row["ok"] + row["diverged"])
    paired = _finite(row.get("pairedN")) and row["pairedN"] > 0
    return {
        "against EBGAN": _label(row),
        "configs": str(scored),
        "diverged [95% CI]": (f"{_pct(row['divergedFrac'])} [{_pct(row['divergedLow'])}, "
                              f"{_pct(row['divergedHigh'])}]" if scored else DASH),
        "above pooled median": _pct(row.get("pctAbove_p50", np.nan) / 100),
        "EBGAN wins / ties / losses": (f"{_pct(row['pairedWinFrac'])} / {_pct(row['pairedTieFrac'])} / "
                                       f"{_pct(row['pairedLossFrac'])} of {int(row['pairedN'])} points"
                                       if paired else "unpaired" if _finite(row.get("mwuP")) else DASH),
        "paired score [95% CI]": (f"{row['pairedScore']:.2f} [{row['pairedScoreLow']:.2f}, "
                                  f"{row['pairedScoreHigh']:.2f}]" if paired else DASH),
        "P(EBGAN > row)": f"{row['probSuperiority']:.2f}" if _finite(row.get("probSuperiority")) else DASH,
        "test": row.get("verdictTest") or DASH,
        "Holm p": _p(row.get("verdictPHolm")),
        "verdict": row.get("verdict") or ("reference" if row["name"] == REFERENCE else DASH),
        "G updates per run": _g_updates(row),
    }


def verdict_table(table: pd.DataFrame) -> pd.DataFrame:
    """The first screen's table, from the summary (summary.csv's rows): EBGAN's own row first,
    then every row compared with it (the families, GAN's subgrids, other families' subgrids)."""
    ref = table[(table["group"] == "model") & (table["name"] == REFERENCE)]
    compared = table[table["mwuP"].notna()] if "mwuP" in table else table.iloc[:0]
    if compared.empty:  # nothing compared with EBGAN: every model's divergence rate
        ref, compared = table[table["group"] == "model"], table.iloc[:0]
    return pd.DataFrame([_cells(r) for _, r in pd.concat([ref, compared]).iterrows()])


def headline(table: pd.DataFrame) -> list[str]:
    """The paper's question answered in words: EBGAN against GAN (all subgrids), then a count
    of the verdicts against every other compared row; then, on a secondary measure, its chance
    (the table's `chanceLines` attribute, floors.measure_chance_lines)."""
    rows = table.set_index("name", drop=False)
    if REFERENCE not in rows.index or "verdict" not in table or not (table["verdict"] != "").any():
        return [f"No {REFERENCE} configs (ok or diverged) and another family's to compare in this "
                "grid: the table below gives each model's divergence rate only."]
    ref = rows.loc[REFERENCE]
    out = []
    gan = table[(table["group"] == "model") & (table["name"] == BASELINE)]
    if len(gan) and gan["verdict"].iloc[0]:
        g = gan.iloc[0]
        answer = {compare.BETTER: f"Yes: {REFERENCE} beats {BASELINE}",
                  compare.WORSE: f"No: {BASELINE} beats {REFERENCE}",
                  compare.NO_EVIDENCE: "Not shown at this n: no evidence either way"}[g["verdict"]]
        out.append(f"Does {REFERENCE} train more reliably than {BASELINE} across the grid (diverged "
                   f"configs counted as losses)? {answer} ({g['verdictTest']}, Holm-corrected "
                   f"p {_p_is(g['verdictPHolm'])}). Diverged: {REFERENCE} {_pct(ref['divergedFrac'])} "
                   f"[{_pct(ref['divergedLow'])}, {_pct(ref['divergedHigh'])}] of its configs, "
                   f"{BASELINE} {_pct(g['divergedFrac'])} [{_pct(g['divergedLow'])}, "
                   f"{_pct(g['divergedHigh'])}].")
    others = table[(table["verdict"] != "") & ~((table["group"] == "model") & (table["name"] == BASELINE))]
    if len(others):
        counts = others["verdict"].value_counts()
        out.append(f"Against the other {len(others)} rows: {REFERENCE} better than "
                   f"{counts.get(compare.BETTER, 0)}, worse than {counts.get(compare.WORSE, 0)}, no "
                   f"evidence either way for {counts.get(compare.NO_EVIDENCE, 0)}.")
    return out + list(table.attrs.get("chanceLines", ()))


def shown_measure(table: pd.DataFrame) -> str:
    """The score a summary table compares, as the text names it: its `measure` attribute (the
    primary measure's table), else I'."""
    measure = table.attrs.get("measure", "Iprime")
    return "I'" if measure == "Iprime" else measure


def rule_text(holm_m: int, measure: str = "I'") -> str:
    """How the verdict is reached, with the tests named (the page, under the verdict table);
    `measure`: the score the table compares, as the text names it."""
    return (f"{compare.VERDICT_RULE} Paired: {stats.PAIRED_TEST}, on the grid points both sides ran "
            f"(pairingKeys in summary.csv); wins / ties / losses are shares of those points, a "
            f"diverged config losing to any finished one. The paired score is (wins + ties/2) / "
            f"points (0.5: neither better), and its bracket is the {stats.PAIRED_INTERVAL}: it "
            f"bounds the score, not the share of wins. Unpaired: {stats.UNPAIRED_TEST}; P(EBGAN > "
            f"row) is its probability of superiority (ties half). Correction: {stats.ADJUSTMENT} "
            f"over all {holm_m} p-values of this table ({', '.join(compare.HOLM_OF)} of every row, "
            f"one family: the primary measure's; a verdict on a secondary measure corrects its "
            f"own). Diverged: share of ok + diverged configs, Wilson 95% interval; above "
            f"pooled median: share of ok + diverged configs above the median {measure} of all ok configs "
            f"of the grid; G updates per run: median over finished configs (the budget it counted "
            f"in brackets).")


def verdict_html(table: pd.DataFrame, heading: str = f"Verdict: every family and GAN subgrid against {REFERENCE}",
                 rule: str | None = None, tag: str = "h2") -> str:
    """The page's first screen: the headline, the verdict table, and the rule (`rule_text`'s unless given)."""
    esc = html.escape
    if "measure" in table.attrs and rule is None:        # the first screen's: on the primary measure
        heading += f", on {table.attrs['measure']} (the primary measure)"
    cells = verdict_table(table)
    colors = {compare.BETTER: "#1a7f37", compare.WORSE: "#b42318"}
    body = "".join(
        "<tr>" + "".join(f"<td style='color:{colors[v]};font-weight:bold'>{esc(v)}</td>"
                         if k == "verdict" and v in colors else f"<td>{esc(v)}</td>"
                         for k, v in r.items()) + "</tr>" for r in cells.to_dict("records"))
    head = "".join(f"<th>{esc(c)}</th>" for c in cells.columns)
    sentences = "".join(f"<p class='answer'>{esc(s)}</p>" for s in headline(table))
    rule = rule_text(table.attrs.get("holmM", 0), shown_measure(table)) if rule is None else rule
    return (f"<{tag}>{esc(heading)}</{tag}>{sentences}"
            f"<table class='verdict'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f"<p class='rule'>{esc(rule)}</p>")


# --- the dataset's own measures --------------------------------------------------------------

MEASURES_NOTE = ("A dataset's own measures, per model (measures.csv): median [quartiles] over finished "
                 "configs, and the share of scored configs that reach the value at which a run counts as "
                 "trained (a diverged config does not), with its Wilson 95% interval. Descriptive: no test "
                 "on this table, so no Holm correction; compare intervals.")


def measures_cells(measures: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    """measures.csv as text cells for reading (summary.md and the page)."""
    out = []
    for r in measures.to_dict("records"):
        cells = {"model": r["model"], "configs": str(r["configs"]), "diverged": str(r["diverged"])}
        for m in metrics:
            cells[f"{m} median [q25, q75]"] = (DASH if not _finite(r[f"{m}Median"]) else
                                              f"{r[f'{m}Median']:.3g} [{r[f'{m}Q25']:.3g}, {r[f'{m}Q75']:.3g}]")
            if f"{m}Reached" in r:
                cells[f"{m} >= {r[f'{m}Target']:g} [95% CI]"] = (
                    f"{_pct(r[f'{m}Reached'], 1)} [{_pct(r[f'{m}ReachedLow'])}, {_pct(r[f'{m}ReachedHigh'])}]")
        out.append(cells)
    return pd.DataFrame(out)


def measure_rule(metric: str, holm_m: int) -> str:
    """How a verdict on a dataset's own measure is reached: the I' verdict's rule on `metric`."""
    return (f"A secondary measure: the same tests, verdict rule and columns as the first screen's verdict, "
            f"on {metric} (summary_{metric}.csv); Holm-Bonferroni over this table's {holm_m} p-values, a family "
            f"of its own, apart from the primary measure's.")


def measures_html(measures: pd.DataFrame, metrics: list[str], verdicts: dict[str, pd.DataFrame]) -> str:
    """The page's table of the dataset's own measures with its note, then the verdict on each."""
    parts = [measures_cells(measures, metrics).to_html(index=False), f"<p>{html.escape(MEASURES_NOTE)}</p>"]
    parts += [verdict_html(t, f"Verdict on {m} (secondary)", measure_rule(m, t.attrs.get("holmM", 0)), "h3")
              for m, t in verdicts.items()]
    return "".join(parts)


# --- what summary.csv's columns mean ---------------------------------------------------------

def notes(thresholds: dict[str, float], seed_agg: str, holm_m: int, measure: str = "I'") -> list[str]:
    """What the summary's columns mean and how they are counted (summary.md and the page);
    `measure`: the score the table compares (its `median` and `pctAbove` columns)."""
    return [
        (f"Seeds: each config counted once, its I' the {seed_agg} over seeds (a diverged seed "
         "scores -inf, error seeds left out). seedStdMedian: median over configs of the std of "
         "I' over ok seeds."),
        ("n: configs; ok + diverged + errors = n. Diverged configs are a bar of their own in the "
         "histograms and count in the percentages and in every test; error configs (the run "
         "failed) do not. divergedFrac = diverged / (ok + diverged), with its Wilson 95% interval "
         "(divergedLow, divergedHigh)."),
        "median, q25, q75, iqr: over ok configs.",
        f"pctAbove_pXX: % of ok + diverged configs with {measure} above the XXth percentile of the pooled "
        f"ok {measure} of the grid: " + ", ".join(f"{k} = {v:.4g}" for k, v in thresholds.items()) + ".",
        (f"EBGAN against each row of another family: mwuU, mwuP: {stats.UNPAIRED_TEST}; "
         "probSuperiority: P(EBGAN > row) + P(tie)/2 for a config drawn from each (0.5: no "
         "difference). Survivors only (finished configs; the divergence rates left aside): mwuUOk, "
         "mwuPOk, probSuperiorityOk, and medianDiffOk = median(EBGAN) - median(row) with a 95% "
         f"percentile bootstrap interval (medianDiffOkLow, medianDiffOkHigh; "
         f"{compare.BOOTSTRAP_RESAMPLES} resamples, seed {compare.BOOTSTRAP_SEED})."),
        ("Paired, where the row ran EBGAN's grid points one to one (pairingKeys: the settings "
         "outside the optimizer subgrid both vary over the same values, every other such setting "
         "equal on both sides, budgetCounts aside; empty for unpaired rows): "
         "pairedN points, pairedWins/Ties/Losses and their shares pairedWinFrac, pairedTieFrac, "
         "pairedLossFrac (a diverged config loses to any finished one; both diverged: a tie); "
         "pairedScore = (wins + ties/2) / pairedN with pairedScoreLow, pairedScoreHigh, the "
         f"{stats.PAIRED_INTERVAL} (it bounds the score, not pairedWinFrac); pairedP: "
         f"{stats.PAIRED_TEST}."),
        (f"...Holm columns: {stats.ADJUSTMENT} over all {holm_m} p-values of the table "
         f"({', '.join(compare.HOLM_OF)} of every row together). verdict, verdictTest, "
         f"verdictPHolm: {compare.VERDICT_RULE}"),
        ("gStepsMedian: G updates per run, the median over ok configs (each the median over its "
         "ok seeds of the run's gSteps); budgetCounts: what the training budget counted (dSteps: "
         f"D updates, gSteps: G updates); '{NOT_RECORDED_VALUE}' for tables without the column."),
        ("samplingStd: how much one run's I' moves with its sample set alone, from I' on two "
         "disjoint halves A, B of each run's samples: sqrt(mean over ok configs of (A - B)^2 / 4) "
         "(halves iid, variance ~ 1/N); 'not recorded' for tables without IprimeSetA/B. "
         "seedStdPooled: sqrt(mean over configs with 2+ seeds of the variance of I' over seeds), "
         "which contains the sampling spread; trainingStd = sqrt(seedStdPooled^2 - samplingStd^2)."),
    ]


def _fmt(v: Any) -> str:
    """A cell of summary.md: floats to 4 significant digits, NaN empty."""
    if isinstance(v, (float, np.floating)):
        return "" if np.isnan(v) else f"{v:.4g}"
    return str(v)


def markdown_table(table: pd.DataFrame) -> str:
    """A table as markdown."""
    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines)


def summary_markdown(table: pd.DataFrame, title: str, seed_agg: str, measures: pd.DataFrame | None = None,
                     verdicts: dict[str, pd.DataFrame] | None = None, basis: list[str] = (),
                     chance: pd.DataFrame | None = None) -> str:
    """summary.md: the title, the verdict in words and as a table, what it stands on (`basis`:
    harness.report.floors' lines on chance and convergence) with the chance rows, the dataset's
    own measures and the verdict on each (when it has any), the summary table and its notes."""
    words = "\n\n".join(headline(table))
    if basis:
        words += "\n\n### What the verdict stands on\n\n" + "\n".join(f"- {b}" for b in basis)
    if chance is not None and len(chance):
        words += ("\n\nWhat structureless samples score (the median and the maximum over the draws of each "
                  f"reference):\n\n{markdown_table(chance)}")
    measure, holm_m = shown_measure(table), table.attrs.get("holmM", 0)
    listed = "\n".join(f"- {n}" for n in notes(table.attrs["thresholds"], seed_agg, holm_m, measure))
    verdicts = verdicts or {}
    own = ""
    if measures is not None and len(measures):
        shown = [c.removesuffix("Median") for c in measures if c.endswith("Median")]   # its measures, in order
        own = (f"## The dataset's own measures\n\n{markdown_table(measures_cells(measures, shown))}"
               f"\n\n{MEASURES_NOTE}\n\n")
        for metric, t in verdicts.items():
            own += (f"### Verdict on {metric} (secondary)\n\n" + "\n\n".join(headline(t))
                    + f"\n\n{markdown_table(verdict_table(t))}\n\n{measure_rule(metric, t.attrs.get('holmM', 0))}\n\n")
    on = f" on {table.attrs['measure']} (the primary measure)" if "measure" in table.attrs else ""
    return (f"# Summary — {title}\n\n## Verdict against {REFERENCE}{on}\n\n{words}\n\n"
            f"{markdown_table(verdict_table(table))}\n\n{rule_text(holm_m, measure)}\n\n"
            f"{own}## Every row\n\n{markdown_table(table)}\n\n{listed}\n")
