"""The grid study's report: Fig. 2, Fig. 3, Fig. 4, training curves, a summary table, one page,
and what the paper's histograms cannot show (robustness curves, ECDFs, hyperparameter
importance, best score against budget, sampling vs seed noise, I' against FID, the margin).

Models are the report labels of the results' `model` column (GAN, EBGAN, EBGAN-PT, LSGAN,
WGAN-GP, BEGAN, ...), ordered and coloured by the family registry (`harness.families`): a
model has one colour in every figure. Fig. 2 is the paper's (EBGAN against GAN); every other
family present gets a Fig. 2-style figure of its own against EBGAN and GAN
(fig2_<family>.png). Fig. 3 is the paper's GAN optimizer subgrids against EBGAN.

    python -m harness.report RESULTS_DIR [--out DIR] ...     (harness.report.cli)
    write_report(grid_folder, out)                           one grid's report, from Python

The modules, each importing only those listed below it (pyproject.toml's contract):
  cli            the command line: main (run by __main__)
  page           summary.csv/.md, importance.csv, budget.csv, index.html: write_report
  paper_figures  Fig. 2 (and its per-family variants), Fig. 3, Fig. 4, training curves
  extra_figures  robustness, ECDF, importance, budget, noise, I' against FID, the margin
  verdict        the first screen (EBGAN against every row, in a table and in words), the notes
  style          colours (colour-blind safe), headless figures, the anchor, writing PNG/PDF
  tables         results loaded, seeds aggregated, figure panels, the summary table,
                 provenance, the real-data anchor; how results are counted (its docstring)
  compare        EBGAN against each row: divergence inside, paired where the grid is, Holm, verdict
  estimates      importance.csv (aliased settings as one feature), budget.csv (its interval)
  analysis       robustness, sampling spread, importance's inputs, best of n, I' against FID, margin
  stats          rank tests with divergence counted in, sign test, Holm, Wilson
  budget         the expected best of n, its bootstrap-t interval and its coverage simulation
  aliasing       settings that move together, partly crossed ones, grouped permutation importance
tables, compare, estimates, analysis, stats, budget and aliasing only compute; nothing in them
draws.
"""
from harness.report.cli import main
from harness.report.page import write_report
from harness.report.tables import ReportError

__all__ = ["ReportError", "main", "write_report"]
