"""Does the mini grid predict the verdict at full training? The mini Table 1
(grids/mnist_table1_mini.yaml: 1 epoch over 12,800 images, 200 D steps) at this study's 104 points
(its sizeG 400, sizeD 128 configs), against this study's runs (25 epochs over 60,000 images):

    python docs/studies/mnist_table1_corner/compare_mini.py MINI/mnist_table1_mini/trials.parquet [STUDY]

Both sides get the report's own verdict (harness.report.tables.summary_table: EBGAN against GAN
as a whole and against each of its 12 optimizer subgrids, divergence inside, paired sign tests
where the grid pairs, Holm over the table), computed here on the same 104 points each. Printed:
each row's verdict at both budgets, how often the mini's verdict is the study's, the shares of
"EBGAN better" and "EBGAN worse" rows at each budget, and Spearman's rank correlation of the
per-subgrid median I' (GAN's 12 subgrids and EBGAN's one).
"""
import sys
from pathlib import Path

import pandas as pd
from scipy.stats import spearmanr

from harness.report.compare import BETTER, WORSE
from harness.report.tables import aggregate_seeds, summary_table
from harness.report.verdict import markdown_table

STUDY = Path(__file__).parent / "results" / "mnist_table1_corner" / "trials.parquet"
CORNER = {"sizeG": 400, "sizeD": 128}           # the corner's points within the mini grid


def verdicts(path: str | Path, corner_only: bool) -> pd.DataFrame:
    runs = pd.read_parquet(path).drop_duplicates("configId", keep="last").reset_index(drop=True)
    if corner_only:
        runs = runs[(runs["sizeG"] == CORNER["sizeG"]) & (runs["sizeD"] == CORNER["sizeD"])].reset_index(drop=True)
    table = summary_table(aggregate_seeds(runs))
    return table.set_index("name")[["n", "median", "divergedFrac", "verdict", "verdictTest", "verdictPHolm"]]


def compare(mini: pd.DataFrame, study: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    both = mini.add_suffix("Mini").join(study.add_suffix("Study"), how="inner")
    rows = both[both["verdictStudy"] != ""]                    # EBGAN's own row has no verdict
    agree = (rows["verdictMini"] == rows["verdictStudy"]).mean()
    rho = spearmanr(both["medianMini"], both["medianStudy"])
    shares = {f"{label} {side}": (rows[f"verdict{side}"] == v).mean()
              for side in ("Mini", "Study") for label, v in (("EBGAN better", BETTER), ("EBGAN worse", WORSE))}
    return both.reset_index(), {"rows compared": len(rows), "same verdict": agree, **shares,
                                "Spearman rho of medians": rho.statistic, "its p": rho.pvalue}


def main(argv: list[str]) -> int:
    if not 1 <= len(argv) <= 2:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        return 2
    both, summary = compare(verdicts(argv[0], corner_only=True), verdicts(argv[1] if len(argv) > 1 else STUDY,
                                                                          corner_only=False))
    print("# The mini grid's verdict against full training, at the corner's 104 points\n")
    print(markdown_table(both[["name", "nMini", "medianMini", "verdictMini", "verdictPHolmMini",
                               "nStudy", "medianStudy", "divergedFracStudy", "verdictStudy", "verdictPHolmStudy"]]))
    print()
    for k, v in summary.items():
        print(f"- {k}: {v:.3g}" if isinstance(v, float) else f"- {k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
