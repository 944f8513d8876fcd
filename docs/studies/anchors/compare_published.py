"""The anchors against the published GAN rows: VEEGAN's and PacGAN's Table 1 on the ring of 8 and
the grid of 25, beside this harness's plain GAN (grids/ring8_anchor.yaml, grids/grid25_anchor.yaml).

    python docs/studies/anchors/compare_published.py RESULTS/ring8_anchor/trials.parquet [...] [--plot OUT.png]

Per grid: the mean +- sd over seeds of the published rule's mode count (modesCapturedAny: one
high-quality sample), the chance-proof mode count (modesCaptured: a fifth of a mode's fair
share), the high-quality share (within 3 std of a mode), all on the final 2,500 samples, and the
G updates to a 50% high-quality share (the first scored epoch at or above it; "not reached" if
none), then whether the high-quality share lands in the published range (>= 90%). --plot: each
seed's high-quality share and chance-proof mode count after every epoch, one column per table.
"""
import sys

import numpy as np
import pandas as pd

PUBLISHED = {   # dataset: [(source, modes, high-quality share %)], GAN rows, 2,500 samples
    "ring8": [("VEEGAN, Table 1 (5 runs)", "1", "99.3"), ("PacGAN, Table 1 (10 trials)", "6.3 ± 0.5", "98.2 ± 0.2")],
    "grid25": [("VEEGAN, Table 1 (5 runs)", "3.3", "0.5"), ("PacGAN, Table 1 (10 trials)", "17.3 ± 0.8", "94.8 ± 0.7")],
}
TARGET_HQ = 0.90


def steps_to(curve, threshold: float, steps_per_epoch: int) -> float:
    hit = np.flatnonzero(np.asarray(curve, dtype=float) >= threshold)
    return (hit[0] + 1) * steps_per_epoch if hit.size else np.nan


def pm(v: pd.Series, digits: int = 1, scale: float = 1.0) -> str:
    v = v.astype(float) * scale
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f}" if len(v) > 1 else f"{v.mean():.{digits}f}"


def rows(runs: pd.DataFrame, published: bool = True) -> list[str]:
    dataset, name = runs["dataset"].iloc[0], runs["grid"].iloc[0]
    spe = int(runs["trainImages"].iloc[0] // runs["batchSize"].iloc[0])
    ok = runs[runs["status"] == "ok"]
    half = ok["highQualityFracPerEpoch"].map(lambda c: steps_to(c, 0.5, spe))
    reached = half.dropna()
    steps = int(ok["gSteps"].median())
    out = [f"| {src} | {modes} | — | {hq} | — | published |" for src, modes, hq in PUBLISHED[dataset]
           if published]
    to_half = (f"{reached.median():,.0f} (median; {len(reached)} of {len(ok)} reached it)" if len(reached)
               else "not reached")
    verdict = "in the published range" if ok["highQualityFrac"].mean() >= TARGET_HQ else "below it"
    out.append(f"| this harness, `{name}` ({len(ok)} seeds, {steps:,} G updates) | {pm(ok['modesCapturedAny'])} | "
               f"{pm(ok['modesCaptured'])} | {pm(ok['highQualityFrac'], 1, 100)} | {to_half} | {verdict} |")
    return out


def plot(paths: list[str], out: str) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(2, len(paths), figsize=(4.5 * len(paths), 6), squeeze=False, sharex="col")
    for c, path in enumerate(paths):
        runs = pd.read_parquet(path)
        spe = int(runs["trainImages"].iloc[0] // runs["batchSize"].iloc[0])
        for r, (col, label) in enumerate((("highQualityFracPerEpoch", "high-quality share"),
                                          ("modesCapturedPerEpoch", "modes captured (chance-proof)"))):
            ax = axes[r, c]
            for seed, curve in zip(runs["seed"], runs[col]):
                ax.plot(spe * np.arange(1, len(curve) + 1), curve, lw=1, label=f"seed {seed}")
            ax.set_ylabel(label)
            if r == 0:
                ax.axhline(TARGET_HQ, color="0.4", ls="--", lw=1)
                ax.set_title(runs["grid"].iloc[0], fontsize="medium")
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
    print("| GAN row | modes (>= 1 sample) | modes (chance-proof) | high quality % | G updates to 50% high quality "
          "| against the published >= 90% |\n|---|---|---|---|---|---|")
    seen: set[str] = set()
    for path in paths:
        runs = pd.read_parquet(path)
        print("\n".join(rows(runs, published=runs["dataset"].iloc[0] not in seen)))
        seen.add(runs["dataset"].iloc[0])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
