"""harness.report.page: the page's provenance section and the classifier check, and the sections
beyond the paper's histograms (guides, the real-data anchor, importance, budget, noise, margin)."""
from __future__ import annotations

import html
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_fixtures import check_outputs, run_cli, small, write_grid

from harness.report import estimates, stats, tables
from harness.report.page import GUIDES

pytestmark = pytest.mark.usefixtures("no_mnist_unless_passed")


# --- provenance and the classifier check ------------------------------------------------------

SHA_A, SHA_B = "a" * 64, "b" * 64


def with_provenance(runs: pd.DataFrame, sha_of=lambda i: SHA_A) -> pd.DataFrame:
    """The provenance columns as the sweep writes them: on every scored run, none on error runs."""
    runs = runs.copy()
    for col in tables.PROVENANCE_COLUMNS:
        runs[col] = [f"{col}-value" for _ in range(len(runs))]
    runs["classifierSha256"] = [sha_of(i) for i in range(len(runs))]
    runs.loc[runs["status"] == "error", list(tables.PROVENANCE_COLUMNS)] = None
    return runs


def test_page_shows_provenance_and_error_rows_do_not_count_as_a_classifier(tmp_path, capsys):
    runs = with_provenance(small(rng_seed=9))
    assert (runs["status"] == "error").any()
    folder = write_grid(tmp_path / "g", runs, pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "<h2>Provenance</h2>" in page and f"classifier with SHA-256 {SHA_A}" in page
    table = tables.provenance_table(runs).set_index(["column", "value"])["runs"]
    n_err = int((runs["status"] == "error").sum())
    assert table[("classifierSha256", SHA_A)] == len(runs) - n_err
    assert table[("classifierSha256", tables.NOT_RECORDED)] == n_err
    assert table[("deviceName", "deviceName-value")] == len(runs) - n_err
    assert set(table.index.get_level_values("column")) == set(tables.PROVENANCE_COLUMNS)


@pytest.mark.parametrize("sha_of, words", [
    (lambda i: SHA_A if i % 2 else SHA_B, "2 different classifiers"),
    (lambda i: SHA_A if i % 2 else None, "(not recorded)"),  # rows of an old sweep, resumed
])
def test_mixed_classifiers_are_refused_unless_allowed(tmp_path, capsys, sha_of, words):
    folder = write_grid(tmp_path / "g", with_provenance(small(rng_seed=10), sha_of), pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 2 and err.count("\n") == 1 and words in err and "--allow-mixed-classifiers" in err
    assert "fix:" in err and not (folder / "report").exists()  # refused before writing anything
    rc, _, err = run_cli([folder, "--allow-mixed-classifiers"], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "WARNING: runs scored by 2 different classifiers" in page
    assert "MIXED classifiers" in (folder / "report" / "summary.md").read_text()  # the figures' title too


def test_old_table_without_provenance_is_one_unknown_classifier(tmp_path, capsys):
    runs = small(rng_seed=11)
    assert not set(tables.PROVENANCE_COLUMNS) & set(runs.columns)
    folder = write_grid(tmp_path / "g", runs, pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "predates the provenance columns" in page and "one classifier, which is unknown" in page
    table = tables.provenance_table(runs)
    assert (table["value"] == tables.NOT_RECORDED).all() and (table["runs"] == len(runs)).all()


# --- the sections beyond the paper's histograms ----------------------------------------------

def _seeded_margin_grid(tmp_path: Path) -> Path:
    """Two seeds, both halves of every run's samples scored, EBGAN's margin varied."""
    runs = small(seeds=(0, 1), rng_seed=9)
    rng = np.random.default_rng(9)
    runs["IprimeSetA"] = runs["Iprime"] + rng.normal(0, 0.1, len(runs))
    runs["IprimeSetB"] = runs["Iprime"] + rng.normal(0, 0.1, len(runs))
    eb = runs["model"] == "EBGAN"
    runs.loc[eb, "margin"] = np.resize([2.0, 2.0, 10.0, 10.0, 32.0, 32.0], eb.sum())
    return write_grid(tmp_path / "g", runs, total=len(runs), configs=len(runs) // 2)


def test_cli_draws_the_analysis_sections(tmp_path, capsys, data_dir):
    folder = _seeded_margin_grid(tmp_path)
    rc, _, err = run_cli([folder, "--data-dir", data_dir], capsys)
    assert rc == 0, err
    out = folder / "report"
    page = check_outputs(out)
    for name in ("margin.png", "noise.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    for guide in GUIDES.values():
        assert html.escape(guide) in page
    assert page.count("How to read it:") == len(GUIDES)
    # the anchor: the real test set's I' at the runs' sample count (100 in the fixture)
    assert re.search(r"real MNIST test set, mean over 10 random draws of 100 images, "
                     r"classifier [0-9a-f]{12}: I' = \d",
                     html.unescape(page))
    imp = pd.read_csv(out / "importance.csv", keep_default_na=False)
    assert list(imp.columns) == ["family", "setting", "importance", "ciLow", "ciHigh", "aliasing"]
    assert set(imp["family"]) == {"GAN"}  # EBGAN: 16 configs, EBGAN-PT: 2, too few
    assert set(imp["setting"]) == {"nLayerG", "nLayerD", "optimD", "optimG", "lr"}
    assert "fewer than 20" in page
    budget = pd.read_csv(out / "budget.csv")
    assert set(budget["subgrid"]) == {"all"} | set(runs_subgrids(folder))
    assert set(budget["metric"]) == {"Iprime", "fid"}
    summary = pd.read_csv(out / "summary.csv").set_index("name")
    assert summary.loc["GAN", "samplingStd"] == pytest.approx(0.1 / np.sqrt(2), rel=0.25)
    assert np.isfinite(summary.loc["GAN", "seedStdPooled"])


def runs_subgrids(folder: Path) -> set[str]:
    runs = pd.read_parquet(folder / "trials.parquet")
    return set(runs.loc[runs["model"] == "GAN", "subgrid"])


def test_cli_without_mnist_leaves_the_anchor_out_and_says_why(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "empty-cache"))  # no cached anchor either
    folder = write_grid(tmp_path / "g", small(rng_seed=10), pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert re.search(r"real-data line not drawn: MNIST:? is not in", html.unescape(page))
    assert "not recorded" in page  # no IprimeSetA/B columns in this table
    assert "not drawn: no family varies margin" in page


def test_cli_copes_with_tables_the_analysis_can_say_little_about(tmp_path, capsys):
    """No fid column (an old table), a family of one config, a family whose runs all failed."""
    runs = small(rng_seed=11, pt_points=1).drop(columns=["fid"])
    eb = runs.index[runs["model"] == "EBGAN"]
    runs.loc[eb, ["status", "Iprime", "IprimePerEpoch", "samplesPath"]] = ["error", np.nan, None, None]
    runs["IprimePerEpoch"] = [c if isinstance(c, list) else [] for c in runs["IprimePerEpoch"]]
    folder = write_grid(tmp_path / "g", runs, pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "not drawn: no ok run with a finite FID" in page
    budget = pd.read_csv(folder / "report" / "budget.csv")
    assert set(budget["metric"]) == {"Iprime"} and set(budget["family"]) == {"GAN", "EBGAN-PT"}


# --- the first screen -------------------------------------------------------------------------

def test_page_opens_with_the_verdict_and_folds_the_rest(tmp_path, capsys):
    runs = small(rng_seed=12)
    folder = write_grid(tmp_path / "g", runs, pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 0, err
    out = folder / "report"
    page = (out / "index.html").read_text()
    body = page[page.index("<body>"):]
    first = body[: body.index("<details>")]  # everything before the first folded section
    assert "<h2>Verdict: every family and GAN subgrid against EBGAN, on Iprime (the primary measure)</h2>" in first
    assert "Does EBGAN train more reliably than GAN" in first and "<img" not in first
    assert stats.ADJUSTMENT in html.unescape(first) and stats.PAIRED_TEST in html.unescape(first)
    assert "bounds the score, not the share of wins" in html.unescape(first)
    summary = pd.read_csv(out / "summary.csv")
    compared = summary[summary["mwuP"].notna()]
    rows = re.findall(r"<tr><td>([^<]*)</td>", first)
    assert rows == ["EBGAN", "GAN", *(f"GAN {s}" for s in compared["name"][1:])]
    assert first.count("<tr>") == 1 + len(compared) + 1  # header, EBGAN, the compared rows
    # every other section is folded, the Fig. 2 section among them
    assert page.count("<details>") == page.count("</details>") >= 10
    assert "<details><summary><h2>Fig. 2: I&#x27; histograms</h2></summary>" in page
    assert "<details><summary><h2>Provenance</h2></summary>" in page
    # a family whose cross-validated R² interval does not lie above 0: said, not drawn
    imp = pd.read_csv(out / "importance.csv")
    assert set(imp["family"]) == {"GAN"}
    assert f"GAN: {html.escape(estimates.NO_PREDICTION)}" in page.replace("<b>", "")
