"""harness.report.cli: the files a run writes, progress in every title, grid selection, and
input the user can fix exiting 2 with one line."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from report_fixtures import check_outputs, run_cli, small, write_grid

from harness.report import paper_figures, tables

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.usefixtures("no_mnist_unless_passed")


def test_cli_full_table1_draws_everything(tmp_path, table1, capsys):
    folder = write_grid(tmp_path / "table1", table1, total=len(table1), configs=len(table1))
    rc, _, err = run_cli([tmp_path], capsys)
    assert rc == 0, err
    page = check_outputs(folder / "report")
    assert "6656 of 6656 configs done" in page and "(partial results)" not in page
    assert "name: table1" in page  # the grid file
    summary = pd.read_csv(folder / "report" / "summary.csv")
    assert len(summary) == 2 + 12 and set(summary.loc[summary["group"] == "subgrid", "n"]) == {512}


def test_cli_partial_results_say_n_of_m(tmp_path, capsys):
    runs = small(rng_seed=6)
    n = runs["settingsId"].nunique()
    folder = write_grid(tmp_path / "g", runs, total=2 * 3 * n, configs=3 * n)
    rc, _, err = run_cli([folder, "--out", tmp_path / "r"], capsys)
    assert rc == 0, err
    text = f"{n} of {3 * n} configs done ({n} of {6 * n} runs) (partial results)"
    page = check_outputs(tmp_path / "r")
    assert page.count(text) >= 6  # header, each figure, summary
    assert text in (tmp_path / "r" / "summary.md").read_text()
    runs_, meta = tables.load_results(folder)
    configs = tables.aggregate_seeds(runs_)
    bins = tables.common_bins(configs["Iprime"])
    figures = [paper_figures.draw_fig2(configs, bins, text), paper_figures.draw_fig3(configs, bins, text),
               paper_figures.draw_fig4(runs_, folder, text), paper_figures.draw_curves(runs_, text)]
    assert all(text in f.get_suptitle() for f in figures)
    done = tables.progress_table(runs_, meta).set_index("name")
    assert done.loc["all", "configs done"] == n
    assert done.loc["all", "expected (grid.json)"] == f"{6 * n} runs, {3 * n} configs"
    assert done.loc["adam/adam/lr=0.01", "runs done"] == 16


def test_cli_without_grid_json_says_total_unknown(tmp_path, capsys):
    folder = write_grid(tmp_path / "g", small(rng_seed=7), pngs=False)
    rc, _, err = run_cli([folder, "--seed-agg", "median"], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "total unknown" in page
    assert "median over seeds" in (folder / "report" / "summary.md").read_text()


def test_cli_several_grids_and_grid_filter(tmp_path, capsys):
    for name in ("a", "b"):
        write_grid(tmp_path / name, small(rng_seed=8, pt_points=0), total=1, configs=1, pngs=False)
    rc, _, err = run_cli([tmp_path, "--grid", "b", "--out", tmp_path / "out"], capsys)
    assert rc == 0, err
    assert (tmp_path / "out" / "index.html").exists() and not (tmp_path / "a" / "report").exists()


def _missing_column(tmp_path: Path) -> Path:
    return write_grid(tmp_path / "g", small().drop(columns=["Iprime"]), pngs=False)


def _no_rows(tmp_path: Path) -> Path:
    return write_grid(tmp_path / "g", small().iloc[:0], pngs=False)


def _empty(tmp_path: Path) -> Path:
    (tmp_path / "empty").mkdir()
    return tmp_path / "empty"


@pytest.mark.parametrize("make, words", [
    (lambda p: p / "nope", "does not exist"),
    (_empty, "no trials.parquet"),
    (_missing_column, "lacks column(s) Iprime"),
    (_no_rows, "has no rows"),
])
def test_bad_inputs_exit_2_with_one_line(tmp_path, capsys, make, words):
    rc, _, err = run_cli([make(tmp_path)], capsys)
    assert rc == 2
    assert err.count("\n") == 1 and words in err and "fix:" in err and "Traceback" not in err


@pytest.mark.parametrize("option, words", [("--data-dir", "does not exist"),
                                           ("--classifier", "do not exist")])
def test_bad_anchor_options_exit_2(tmp_path, capsys, option, words):
    folder = write_grid(tmp_path / "g", small(), pngs=False)
    rc, _, err = run_cli([folder, option, tmp_path / "nope"], capsys)
    assert rc == 2 and err.count("\n") == 1 and option in err and words in err and "fix:" in err


def test_unknown_grid_exits_2(tmp_path, capsys):
    write_grid(tmp_path / "a", small(), pngs=False)
    rc, _, err = run_cli([tmp_path, "--grid", "zzz"], capsys)
    assert rc == 2 and err.count("\n") == 1 and "zzz" in err


def test_module_entry_point_bad_input(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "harness.report", str(tmp_path / "nope")],
                          cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr
