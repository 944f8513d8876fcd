"""The report: which rows feed which figure panel, the statistics, and the CLI's files and errors.

Synthetic results in the sweep's shape (tests/report_fixtures.py): the full Table 1 shape
(512 EBGAN + 6144 GAN) for the selection checks and one full draw, a 16-point grid otherwise.
"""
from __future__ import annotations

import html
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from harness import report
from report_fixtures import SMALL_ARCH, make_trials, table1_configs, write_grid

REPO = Path(__file__).resolve().parents[1]
OUTPUTS = ("fig2_histograms.png", "fig2_histograms.pdf", "fig3_optimizer_subgrids.png",
           "fig3_optimizer_subgrids.pdf", "fig4_best_samples.png", "curves.png", "summary.csv",
           "summary.md", "index.html", "robustness.png", "ecdf.png", "importance.csv",
           "importance.png", "budget.csv", "budget.png", "iprime_vs_fid.png")


@pytest.fixture(autouse=True)
def no_mnist_unless_passed(monkeypatch, tmp_path_factory):
    """The report finds MNIST (for the real-data anchor) only through --data-dir here: no
    HARNESS_DATA_DIR, and a cache folder of the tests' own (the anchor's cache lives beside it)."""
    monkeypatch.delenv("HARNESS_DATA_DIR", raising=False)
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path_factory.getbasetemp() / "harness-cache"))


@pytest.fixture(scope="module")
def table1() -> pd.DataFrame:
    """Table 1's exact shape: one seed, 5 diverged and 3 error runs."""
    return make_trials(table1_configs(), rng_seed=1, n_diverged=5, n_error=3)


@pytest.fixture(scope="module")
def table1_configs_df(table1) -> pd.DataFrame:
    return report.aggregate_seeds(table1, "mean")


def small(seeds=(0,), pt_points=2, **kw) -> pd.DataFrame:
    """16 architecture points x (EBGAN + 12 GAN subgrids) + a few EBGAN-PT configs."""
    return make_trials(table1_configs(SMALL_ARCH, seeds=seeds, pt_points=pt_points), **kw)


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    rc = report.main([str(a) for a in args])
    out, err = capsys.readouterr()
    return rc, out, err


# --- selection on the full Table 1 shape ----------------------------------------------------

def test_table1_shape(table1, table1_configs_df):
    assert len(table1) == 512 + 6144
    assert table1["model"].value_counts().to_dict() == {"GAN": 6144, "EBGAN": 512}
    assert len(table1_configs_df) == len(table1)  # one seed: a config per run
    assert set(report.REQUIRED_COLUMNS) <= set(table1.columns)


def test_fig2_panels_apply_the_depth_filters_exactly(table1_configs_df):
    panels = report.fig2_panels(table1_configs_df)
    assert list(panels) == list(report.PANELS_FIG2)
    a, b, c = panels.values()
    assert set(a["settingsId"]) == set(table1_configs_df["settingsId"])
    for panel, depth in ((b, 4), (c, 3)):
        want = table1_configs_df[(table1_configs_df["nLayerG"] <= depth)
                                 & (table1_configs_df["nLayerD"] <= depth)]
        assert set(panel["settingsId"]) == set(want["settingsId"])
        assert panel["nLayerG"].max() == depth and panel["nLayerD"].max() == depth
    # 4x4 depth pairs per family: (b) keeps 3x3 of them, (c) 2x2
    assert b["model"].value_counts().to_dict() == {"GAN": 6144 * 9 // 16, "EBGAN": 512 * 9 // 16}
    assert c["model"].value_counts().to_dict() == {"GAN": 6144 * 4 // 16, "EBGAN": 512 * 4 // 16}


def test_twelve_subgrid_panels_of_512(table1_configs_df):
    panels = report.subgrid_panels(table1_configs_df)
    assert len(panels) == 12
    assert list(panels)[:3] == ["adam/adam/lr=0.01", "adam/adam/lr=0.001", "adam/adam/lr=0.0001"]
    for name, rows in panels.items():
        assert len(rows) == 512
        assert (rows["model"] == "GAN").all() and (rows["subgrid"] == name).all()
        assert rows["settingsId"].is_unique
    all_gan = pd.concat(panels.values())["settingsId"]
    assert set(all_gan) == set(table1_configs_df.loc[table1_configs_df["model"] == "GAN", "settingsId"])


def test_diverged_and_errors_counted_not_dropped(table1, table1_configs_df):
    status = table1_configs_df["status"].value_counts()
    assert (status["diverged"], status["error"]) == (5, 3)
    summary = report.summary_table(table1_configs_df, n_resamples=200)
    models = summary[summary["group"] == "model"]
    assert models["diverged"].sum() == 5 and models["errors"].sum() == 3
    assert (models["ok"] + models["diverged"] + models["errors"] == models["n"]).all()
    subgrids = summary[summary["group"] == "subgrid"]
    assert subgrids["diverged"].sum() == (table1.query("model == 'GAN'")["status"] == "diverged").sum()
    # every diverged config is in Fig. 2 (a), with its bar in the percentages
    a = report.fig2_panels(table1_configs_df)["(a) all configs"]
    assert (a["status"] == "diverged").sum() == 5


def test_diverged_rows_with_a_finite_iprime_still_count_as_diverged(table1, table1_configs_df):
    div = table1[table1["status"] == "diverged"]
    assert div["Iprime"].notna().any()  # the fixture gives some a finite I'
    agg = table1_configs_df.set_index("settingsId").loc[div["settingsId"]]
    assert (agg["status"] == "diverged").all() and agg["Iprime"].isna().all()


# --- histograms -----------------------------------------------------------------------------

def test_histogram_percentages_known_case():
    pct, div = report.histogram_percentages([0.5, 1.5, 1.5], np.array([0.0, 1.0, 2.0]), n_diverged=1)
    np.testing.assert_allclose(pct, [25.0, 50.0])
    assert div == 25.0


@pytest.mark.parametrize("n_diverged", [0, 7])
def test_histogram_percentages_sum_to_100(n_diverged):
    values = np.random.default_rng(0).normal(size=500)
    bins = report.common_bins(values[:400])  # some values fall outside: clipped, not lost
    pct, div = report.histogram_percentages(values, bins, n_diverged)
    assert pct.sum() + div == pytest.approx(100.0)
    assert div == pytest.approx(100 * n_diverged / (500 + n_diverged))


def test_every_drawn_histogram_sums_to_100(table1_configs_df):
    bins = report.common_bins(table1_configs_df["Iprime"])
    panels = {**report.fig2_panels(table1_configs_df), **report.subgrid_panels(table1_configs_df)}
    for panel in panels.values():
        for model, rows in panel.groupby("model"):
            pct, div = report.histogram_percentages(
                report.ok_values(rows), bins, int((rows["status"] == "diverged").sum()))
            assert pct.sum() + div == pytest.approx(100.0), model


# --- seeds ----------------------------------------------------------------------------------

@pytest.fixture
def two_seeds() -> pd.DataFrame:
    return small(seeds=(0, 1), n_diverged=0, n_error=0)


def test_two_seeds_count_each_config_once_with_the_mean(two_seeds):
    configs = report.aggregate_seeds(two_seeds, "mean")
    assert len(two_seeds) == 2 * len(configs) and configs["settingsId"].is_unique
    want = two_seeds.groupby("settingsId")["Iprime"].mean()
    got = configs.set_index("settingsId")["Iprime"]
    pd.testing.assert_series_equal(got.sort_index(), want.sort_index(), check_names=False)
    std = two_seeds.groupby("settingsId")["Iprime"].std(ddof=1)
    np.testing.assert_allclose(configs.set_index("settingsId").loc[std.index, "IprimeStd"], std)
    assert (configs["seeds"] == 2).all()
    summary = report.summary_table(configs, n_resamples=100)
    assert summary["seedStdMedian"].notna().all() and (summary["seedsPerConfig"] == 2).all()
    hist = report.fig2_panels(configs)["(a) all configs"]
    assert len(hist) == two_seeds["settingsId"].nunique()


@pytest.mark.parametrize("how, status", [("mean", "diverged"), ("median", "diverged"), ("max", "ok")])
def test_a_diverged_seed_per_aggregation(two_seeds, how, status):
    runs = two_seeds.copy()
    sid = runs["settingsId"].iloc[0]
    first = runs.index[runs["settingsId"] == sid][0]
    runs.loc[first, "status"] = "diverged"
    row = report.aggregate_seeds(runs, how).set_index("settingsId").loc[sid]
    assert row["status"] == status and row["seedsDiverged"] == 1
    if how == "max":
        assert row["Iprime"] == runs.loc[(runs["settingsId"] == sid) & (runs.index != first), "Iprime"].item()


def test_error_seeds_are_left_out(two_seeds):
    runs = two_seeds.copy()
    sid = runs["settingsId"].iloc[0]
    idx = runs.index[runs["settingsId"] == sid]
    runs.loc[idx[0], ["status", "Iprime"]] = ["error", np.nan]
    row = report.aggregate_seeds(runs).set_index("settingsId").loc[sid]
    assert row["status"] == "ok" and row["Iprime"] == runs.loc[idx[1], "Iprime"]
    assert (row["seeds"], row["seedsError"]) == (1, 1)
    runs.loc[idx[1], ["status", "Iprime"]] = ["error", np.nan]
    assert report.aggregate_seeds(runs).set_index("settingsId").loc[sid, "status"] == "error"


# --- statistics -----------------------------------------------------------------------------

def test_compare_equals_scipy():
    x = np.array([5.1, 6.2, 7.3, 6.8, 5.9, 7.7, 6.4])
    y = np.array([4.0, 5.5, 3.9, 6.1, 4.4, 5.0, 4.8, 5.2])
    got = report.compare(x, y, n_resamples=500)
    mwu = stats.mannwhitneyu(x, y, alternative="two-sided")
    ks = stats.ks_2samp(x, y, alternative="two-sided")
    assert got["mwuU"] == mwu.statistic and got["mwuP"] == mwu.pvalue
    assert got["ksD"] == ks.statistic and got["ksP"] == ks.pvalue
    assert got["medianDiff"] == pytest.approx(6.4 - 4.9)


def test_bootstrap_ci_covers_a_clear_shift_and_is_deterministic():
    rng = np.random.default_rng(3)
    x, y = rng.normal(1.0, 1.0, 400), rng.normal(0.0, 1.0, 600)
    first, again = report.compare(x, y), report.compare(x, y)
    assert first == again
    assert first["ciLow"] < 1.0 < first["ciHigh"] and first["ciLow"] > 0
    assert report.compare(x, y, seed=1)["ciLow"] != first["ciLow"]


def test_compare_with_an_empty_side_is_nan():
    assert all(np.isnan(v) for v in report.compare([], [1.0, 2.0]).values())


def test_summary_rows_thresholds_and_comparisons():
    configs = report.aggregate_seeds(small(rng_seed=4), "mean")
    table = report.summary_table(configs, n_resamples=200)
    assert list(table["name"][:3]) == ["GAN", "EBGAN", "EBGAN-PT"]
    assert (table["group"] == "subgrid").sum() == 12
    gan_rows = table[(table["name"] == "GAN") | (table["group"] == "subgrid")]
    assert gan_rows[["mwuP", "ksP", "ciLow", "ciHigh"]].notna().all().all()
    assert table.loc[table["name"] != "GAN"].query("group == 'model'")["mwuP"].isna().all()
    thresholds = table.attrs["thresholds"]
    assert thresholds["p50"] == pytest.approx(np.median(report.ok_values(configs)))
    eb = configs[configs["model"] == "EBGAN"]
    want = 100 * (report.ok_values(eb) > thresholds["p75"]).sum() / (eb["status"] != "error").sum()
    assert table.set_index("name").loc["EBGAN", "pctAbove_p75"] == pytest.approx(want)
    gan = report.ok_values(configs[configs["model"] == "GAN"])
    assert table.set_index("name").loc["GAN", "mwuU"] == stats.mannwhitneyu(
        report.ok_values(eb), gan, alternative="two-sided").statistic


def test_best_and_quartile_runs():
    runs = small(rng_seed=5)
    ok = runs[runs["status"] == "ok"]
    best = report.best_runs(runs)
    assert list(best) == ["GAN", "EBGAN", "EBGAN-PT"]
    for model, row in best.items():
        assert row["Iprime"] == ok.loc[ok["model"] == model, "Iprime"].max()
    quart = report.quartile_runs(runs)["GAN"]
    gan = np.sort(ok.loc[ok["model"] == "GAN", "Iprime"])
    assert quart["median"]["Iprime"] == gan[round(0.5 * (len(gan) - 1))]
    assert quart["q25"]["Iprime"] <= quart["median"]["Iprime"] <= quart["q75"]["Iprime"]
    caption = report.config_caption(best["EBGAN"])
    assert "nLayerG=" in caption and "margin=10" in caption and re.search("dropoutD=(true|false)", caption)


# --- the CLI --------------------------------------------------------------------------------

def _check_outputs(out: Path) -> str:
    for name in OUTPUTS:
        assert (out / name).stat().st_size > 0, name
    assert (out / "fig2_histograms.pdf").read_bytes().startswith(b"%PDF")
    assert (out / "fig4_best_samples.png").read_bytes().startswith(b"\x89PNG")
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))  # atomic writes left no temp
    page = (out / "index.html").read_text()
    pngs = len(list(out.glob("*.png")))
    assert page.count('src="data:image/png;base64,') == pngs  # every figure on the page
    assert len(re.findall(r"<img ", page)) == pngs  # every image embedded, none linked
    return page


def test_cli_full_table1_draws_everything(tmp_path, table1, capsys):
    folder = write_grid(tmp_path / "table1", table1, total=len(table1), configs=len(table1))
    rc, out, err = run_cli([tmp_path], capsys)
    assert rc == 0, err
    page = _check_outputs(folder / "report")
    assert "6656 of 6656 configs done" in page and "partial" not in page
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
    page = _check_outputs(tmp_path / "r")
    assert page.count(text) >= 6  # header, each figure, summary
    assert text in (tmp_path / "r" / "summary.md").read_text()
    runs_, meta = report.load_results(folder)
    configs = report.aggregate_seeds(runs_)
    bins = report.common_bins(configs["Iprime"])
    figures = [report.draw_fig2(configs, bins, text), report.draw_fig3(configs, bins, text),
               report.draw_fig4(runs_, folder, text), report.draw_curves(runs_, text)]
    assert all(text in f.get_suptitle() for f in figures)
    done = report.progress_table(runs_, meta).set_index("name")
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
                          cwd=REPO, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "does not exist" in proc.stderr


# --- provenance and the classifier check ------------------------------------------------------

SHA_A, SHA_B = "a" * 64, "b" * 64


def with_provenance(runs: pd.DataFrame, sha_of=lambda i: SHA_A) -> pd.DataFrame:
    """The provenance columns as the sweep writes them: on every scored run, none on error runs."""
    runs = runs.copy()
    for col in report.PROVENANCE_COLUMNS:
        runs[col] = [f"{col}-value" for _ in range(len(runs))]
    runs["classifierSha256"] = [sha_of(i) for i in range(len(runs))]
    runs.loc[runs["status"] == "error", list(report.PROVENANCE_COLUMNS)] = None
    return runs


def test_page_shows_provenance_and_error_rows_do_not_count_as_a_classifier(tmp_path, capsys):
    runs = with_provenance(small(rng_seed=9))
    assert (runs["status"] == "error").any()
    folder = write_grid(tmp_path / "g", runs, pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "<h2>Provenance</h2>" in page and f"classifier with SHA-256 {SHA_A}" in page
    table = report.provenance_table(runs).set_index(["column", "value"])["runs"]
    n_err = int((runs["status"] == "error").sum())
    assert table[("classifierSha256", SHA_A)] == len(runs) - n_err
    assert table[("classifierSha256", report.NOT_RECORDED)] == n_err
    assert table[("deviceName", "deviceName-value")] == len(runs) - n_err
    assert set(table.index.get_level_values("column")) == set(report.PROVENANCE_COLUMNS)


@pytest.mark.parametrize("sha_of, words", [
    (lambda i: SHA_A if i % 2 else SHA_B, "2 different classifiers"),
    (lambda i: SHA_A if i % 2 else None, "(not recorded)"),  # rows of an old sweep, resumed
])
def test_mixed_classifiers_are_refused_unless_allowed(tmp_path, capsys, sha_of, words):
    folder = write_grid(tmp_path / "g", with_provenance(small(rng_seed=10), sha_of), pngs=False)
    rc, out, err = run_cli([folder], capsys)
    assert rc == 2 and err.count("\n") == 1 and words in err and "--allow-mixed-classifiers" in err
    assert "fix:" in err and not (folder / "report").exists()  # refused before writing anything
    rc, _, err = run_cli([folder, "--allow-mixed-classifiers"], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "WARNING: runs scored by 2 different classifiers" in page
    assert "MIXED classifiers" in (folder / "report" / "summary.md").read_text()  # the figures' title too


def test_old_table_without_provenance_is_one_unknown_classifier(tmp_path, capsys):
    runs = small(rng_seed=11)
    assert not set(report.PROVENANCE_COLUMNS) & set(runs.columns)
    folder = write_grid(tmp_path / "g", runs, pngs=False)
    rc, _, err = run_cli([folder], capsys)
    assert rc == 0, err
    page = (folder / "report" / "index.html").read_text()
    assert "predates the provenance columns" in page and "one classifier, which is unknown" in page
    table = report.provenance_table(runs)
    assert (table["value"] == report.NOT_RECORDED).all() and (table["runs"] == len(runs)).all()


# --- beyond the paper's histograms (issue 12) -------------------------------------------------

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
    page = _check_outputs(out)
    for name in ("margin.png", "noise.png"):
        assert (out / name).read_bytes().startswith(b"\x89PNG")
    for guide in report.GUIDES.values():
        assert html.escape(guide) in page
    assert page.count("How to read it:") == len(report.GUIDES)
    # the anchor: the real test set's I' at the runs' sample count (100 in the fixture)
    assert re.search(r"real MNIST test set, mean over 10 random draws of 100 images, "
                     r"classifier [0-9a-f]{12}: I' = \d",
                     html.unescape(page))
    imp = pd.read_csv(out / "importance.csv")
    assert list(imp.columns) == ["family", "setting", "importance", "ciLow", "ciHigh"]
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
    assert "real-data line not drawn: MNIST is not in" in html.unescape(page)
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
