"""A dataset is one file: a toy dataset (three Gaussians on a line, in the plane) written to a
temporary module, registered, and run through the grid, both trainers, a pack, the sweep's rows
and the report, as tests/families/test_plugin.py does for a family."""
import math
import textwrap

import pandas as pd
import pytest
import torch

from harness import datasets, report
from harness.engine import train, train_pack
from harness.grid import load_grid
from harness.plan import make_packs
from harness.results import ResultsTable
from harness.rows import row_for

LINE3 = '''
"""Three Gaussians on a line: a toy dataset in one file."""
import numpy as np

from harness.datasets._mixture import Mixture
from harness.datasets._mixture_dataset import mixture_dataset

DATASET = mixture_dataset("line3", "Three on a line", Mixture("line3", np.array([[-1.0, 0], [0, 0], [1.0, 0]]), 0.05))
'''

GRID = """name: toyline
dataset: line3
settings: {epochs: 1, batchSize: 64, nz: 100, dropoutRate: 0.5, adamBeta1: 0.5, adamBeta2: 0.999,
           sgdMomentum: 0.0, trainImages: 640, scoreSamples: 500, epochScoreSamples: 100, budgetCounts: dSteps}
seeds: [0]
families:
  gan: {nLayerG: [2], nLayerD: [2], sizeG: [32], sizeD: [16], dropoutD: [false, true], optimD: [adam],
        optimG: [adam], lr: [0.001]}
  ebgan: {nLayerG: [2], nLayerD: [2], sizeG: [32], sizeD: [16], dropoutD: [false], optimD: [adam],
          optimG: [adam], lr: [0.001], margin: [1], wPT: [0]}
"""


@pytest.fixture
def line3(tmp_path):
    path = tmp_path / "line3_dataset.py"
    path.write_text(textwrap.dedent(LINE3))
    dataset = datasets.load_module(path)
    yield dataset
    datasets.unregister("line3")


def test_a_dataset_in_one_file_runs_through_grid_trainers_pack_rows_and_report(line3, tmp_path):
    assert "line3" in datasets.names() and line3.dim == 2
    (tmp_path / "toy.yaml").write_text(GRID)
    grid = load_grid(tmp_path / "toy.yaml")
    assert {c.dataset for c in grid.configs} == {"line3"} and len(grid.configs) == 3
    gans = [c for c in grid.configs if c.family == "gan"]
    assert [len(p) for p in make_packs(grid.configs, 8)] == [2, 1]

    data, scorer = line3.training_set(None, 640, "cpu"), line3.scorer(None, None, "cpu")
    assert data.shape == (640, 2) and data.abs().max() <= 1
    folder = tmp_path / "results" / "toyline"
    refs = [train(c, data, scorer, folder / "samples", "cpu", record_losses=True) for c in grid.configs]
    packed = train_pack(gans, data, scorer, None, "cpu", record_losses=True)
    for ref, member in zip(refs, packed):                       # a pack of the new dataset, bit for bit
        assert ref.status == "ok" and 0 <= ref.Iprime <= math.log(3) + 1e-9
        assert torch.equal(torch.tensor(member.lossHistory), torch.tensor(ref.lossHistory))
    rows = [row_for(cfg, grid.name, {**res.to_row(), "samplesPath": f"samples/{cfg.config_id}.png"})
            for cfg, res in zip(grid.configs, refs)]
    columns = {"modesCaptured", "modesCapturedAny", "highQualityFrac", "modeKL"}
    assert all(columns <= r.keys() and r["dataset"] == "line3" for r in rows)
    ResultsTable(folder).add(rows)
    assert all((folder / r["samplesPath"]).stat().st_size > 0 for r in rows)   # its picture: a scatter

    written = report.write_report(folder, tmp_path / "report")
    assert tmp_path / "report" / "index.html" in written
    summary = pd.read_csv(tmp_path / "report" / "summary.csv")
    assert set(summary["name"]) >= {"GAN", "EBGAN"}
    # the dataset's own measures drawn as I' is, and its own real samples as the anchor
    assert {tmp_path / "report" / f for f in ("robustness_modesCaptured.png", "ecdf_modesCaptured.png",
                                              "importance_modesCaptured.csv")} <= set(written)
    assert "modesCaptured" in set(pd.read_csv(tmp_path / "report" / "budget.csv")["metric"])
    assert "Three on a line, 500 real samples" in (tmp_path / "report" / "index.html").read_text()
    measures = pd.read_csv(tmp_path / "report" / "measures.csv")  # every mode captured: a share per model
    assert set(measures["model"]) == {"GAN", "EBGAN"} and (measures["modesCapturedTarget"] == 3).all()
    md = (tmp_path / "report" / "summary.md").read_text()
    # modes captured is the primary measure here (the verdict of summary.csv), I' a secondary one
    assert "modesCaptured >= 3" in md and "on modesCaptured (the primary measure)" in md
    assert "### Verdict on Iprime (secondary)" in md and (tmp_path / "report" / "summary_Iprime.csv").is_file()
    on_modes = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("name")
    assert on_modes.loc["GAN", "median"] == measures.set_index("model").loc["GAN", "modesCapturedMedian"]
