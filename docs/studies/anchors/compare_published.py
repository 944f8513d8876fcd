"""The anchors against the published GAN rows: VEEGAN's and PacGAN's Table 1 on the ring of 8 and
the grid of 25, beside this harness's plain GAN and WGAN-GP at its toy settings (one row per
model and lambdaGP; grids/ring8_anchor.yaml, grids/grid25_anchor.yaml).

    python docs/studies/anchors/compare_published.py RESULTS/ring8_anchor/trials.parquet [...] [--plot OUT.png]

Per grid: the mean +- sd over seeds of the published rule's mode count (modesCapturedAny: one
high-quality sample), the chance-proof mode count (modesCaptured: a fifth of a mode's fair
share), the high-quality share (within 3 std of a mode), all on the final 2,500 samples, and the
G updates to a 50% high-quality share (the first scored epoch at or above it; "not reached" if
none), then whether a GAN row's high-quality share lands in the published range (>= 90%; WGAN-GP
has no published number). --plot: each seed's high-quality share and chance-proof mode count
after every scored epoch, one column per table and model.
"""
import sys

import numpy as np
import pandas as pd

PUBLISHED = {   # dataset: [(source, modes, high-quality share %)], GAN rows, 2,500 samples
    "ring8": [("VEEGAN, Table 1 (5 runs)", "1", "99.3"), ("PacGAN, Table 1 (10 trials)", "6.3 ± 0.5", "98.2 ± 0.2")],
    "grid25": [("VEEGAN, Table 1 (5 runs)", "3.3", "0.5"), ("PacGAN, Table 1 (10 trials)", "17.3 ± 0.8", "94.8 ± 0.7")],
}
TARGET_HQ = 0.90


def steps_to(curve, threshold: float, g_per_point: float) -> float:
    hit = np.flatnonzero(np.asarray(curve, dtype=float) >= threshold)
    return (hit[0] + 1) * g_per_point if hit.size else np.nan


def g_per_point(run: pd.Series) -> float:
    """G updates between two scored epochs (an epoch is a pass of D: WGAN-GP's has 1/5 of them)."""
    return run["gSteps"] / len(run["highQualityFracPerEpoch"])


def groups(runs: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """(label, its seeds' runs): one per model and, for WGAN-GP, lambdaGP."""
    key = runs["model"] + runs.get("lambdaGP", pd.Series(np.nan, index=runs.index)).map(
        lambda v: "" if pd.isna(v) else f", lambda {v:g}")
    return [(label, runs[key == label]) for label in dict.fromkeys(key)]


def pm(v: pd.Series, digits: int = 1, scale: float = 1.0) -> str:
    v = v.astype(float) * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def rows(runs: pd.DataFrame, published: bool = True) -> list[str]:
    dataset, name = runs["dataset"].iloc[0], runs["grid"].iloc[0]
    out = [f"| {src} | GAN | {modes} | — | {hq} | — | published |" for src, modes, hq in PUBLISHED[dataset]
           if published]
    for label, group in groups(runs):
        ok = group[group["status"] == "ok"]
        reached = ok.apply(lambda r: steps_to(r["highQualityFracPerEpoch"], 0.5, g_per_point(r)), axis=1).dropna()
        steps = int(ok["gSteps"].median())
        to_half = (f"{reached.median():,.0f} (median; {len(reached)} of {len(ok)} reached it)" if len(reached)
                   else "not reached")
        verdict = ("no published number" if label != "GAN" else
                   "in the published range" if ok["highQualityFrac"].mean() >= TARGET_HQ else "below it")
        out.append(f"| this harness, `{name}` ({len(ok)} seeds, {steps:,} G updates) | {label} | "
                   f"{pm(ok['modesCapturedAny'])} | {pm(ok['modesCaptured'])} | {pm(ok['highQualityFrac'], 1, 100)} | "
                   f"{to_half} | {verdict} |")
    return out


def plot(paths: list[str], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    columns = [(pd.read_parquet(path)["grid"].iloc[0], label, group) for path in paths
               for label, group in groups(pd.read_parquet(path))]
    fig, axes = plt.subplots(2, len(columns), figsize=(4.5 * len(columns), 6), squeeze=False, sharex="col")
    for c, (grid, model, runs) in enumerate(columns):
        for r, (col, label) in enumerate((("highQualityFracPerEpoch", "high-quality share"),
                                          ("modesCapturedPerEpoch", "modes captured (chance-proof)"))):
            ax = axes[r, c]
            for _, run in runs.iterrows():
                curve = run[col]
                ax.plot(g_per_point(run) * np.arange(1, len(curve) + 1), curve, lw=1, label=f"seed {run['seed']}")
            ax.set_ylabel(label)
            if r == 0:
                ax.axhline(TARGET_HQ, color="0.4", ls="--", lw=1)
                ax.set_title(f"{grid}: {model}", fontsize="medium")
            else:
                ax.set_xlabel("G updates")
    axes[0, 0].legend(fontsize="x-small")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv: list[str]) -> int:
    paths = [a for a in argv if a != "--plot"]
    if "--plot" in argv:
        out = argv[argv.index("--plot") + 1]
        paths.remove(out)
        plot(paths, out)
    if not paths:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    print("| row | model | modes (>= 1 sample) | modes (chance-proof) | high quality % | G updates to 50% high quality "
          "| against the published >= 90% |\n|---|---|---|---|---|---|---|")
    seen: set[str] = set()
    for path in paths:
        runs = pd.read_parquet(path)
        print("\n".join(rows(runs, published=runs["dataset"].iloc[0] not in seen)))
        seen.add(runs["dataset"].iloc[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
