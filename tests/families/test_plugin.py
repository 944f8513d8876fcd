"""A family is one file: a toy family (the hinge loss) written to a temporary module, registered,
and run through the grid, both trainers, the sweep's planning, the results table and the report."""
import math
import textwrap

import pandas as pd
import pytest

from harness import families, report
from harness.engine import train, train_pack
from harness.grid import load_grid
from harness.plan import make_packs
from harness.report.style import palette
from harness.results import ResultsTable
from harness.rows import row_for
from harness.sweep import dry_run_report
from tests.follows import assert_follows

HINGE = '''
"""Hinge loss (Lim & Ye 2017): a score D; the margin is a setting of its own."""
import torch.nn.functional as F
from harness.families import Family


class Hinge(Family):
    name, title = "hinge", "Hinge GAN"
    settings = {"hingeMargin": 1.0}
    colors = {"HINGE": "#56b4e9"}

    def problems(self, s):
        return [] if s["hingeMargin"] > 0 else [f"hingeMargin: {s['hingeMargin']} must be > 0"]

    def d_loss(self, D, real, fake, hp, state, draw):
        m = hp.hingeMargin[..., None]
        # L_D = E[max(0, m - D(x))] + E[max(0, m + D(G(z)))]
        return F.relu(m - D(real)).mean(-1) + F.relu(m + D(fake)).mean(-1)

    def g_loss(self, D, fake, hp, state):
        # L_G = -E[D(G(z))]
        return -D(fake).mean(-1)


FAMILY = Hinge()
'''

ARCH = """      nLayerG: [2]
      nLayerD: [3]
      sizeG: [48]
      sizeD: [16]
      dropoutD: [false]
      optimD: [adam]
      optimG: [adam]
      lr: [0.001]
"""
GRID = f"""name: toy
settings: {{epochs: 1, batchSize: 64, nz: 100, dropoutRate: 0.5, adamBeta1: 0.5, adamBeta2: 0.999,
            sgdMomentum: 0.0, trainImages: 640, scoreSamples: 200, epochScoreSamples: 100,
            budgetCounts: dSteps}}
seeds: [0]
families:
  hinge:
    - {ARCH.strip()}
      hingeMargin: [1.0, 0.5]
  ebgan:
    - {ARCH.strip()}
      margin: [10]
      wPT: [0]
  gan:
    - {ARCH.strip()}
"""


@pytest.fixture
def hinge(tmp_path):
    path = tmp_path / "hinge_family.py"
    path.write_text(textwrap.dedent(HINGE))
    family = families.load_module(path)
    yield family
    families.unregister("hinge")


def test_a_family_in_one_file_runs_through_grid_trainers_sweep_and_report(hinge, tmp_path, data, scorer):
    assert "hinge" in families.names() and families.colors()["HINGE"] == "#56b4e9"
    grid_file = tmp_path / "toy.yaml"
    grid_file.write_text(GRID)
    grid = load_grid(grid_file)
    assert grid.by_family() == {"hinge": 2, "ebgan": 1, "gan": 1}
    assert "Hinge GAN" in dry_run_report(grid, set())
    toys = [c for c in grid.configs if c.family == "hinge"]
    assert [c.hingeMargin for c in toys] == [1.0, 0.5] and toys[0].model == "HINGE"
    assert [len(p) for p in make_packs(grid.configs, 8)] == [2, 1, 1]

    # the reference trainer and a pack of both margins: the same runs up to rounding
    folder = tmp_path / "results" / "toy"
    refs = [train(c, data, scorer, folder / "samples", "cpu", record_losses=True) for c in grid.configs]
    packed = train_pack(toys, data, scorer, None, "cpu", record_losses=True)
    for cfg, ref, member in zip(toys, refs, packed):
        assert ref.status == "ok" and math.isfinite(ref.Iprime)
        assert_follows(member, ref, f"HINGE margin {cfg.hingeMargin}")
    assert refs[0].lossHistory != refs[1].lossHistory          # the margin is used

    # the results table (its setting is null in other families' rows) and the report
    ResultsTable(folder).add([row_for(cfg, grid.name, {**res.to_row(), "samplesPath": f"samples/{cfg.config_id}.png"})
                              for cfg, res in zip(grid.configs, refs)])
    df = ResultsTable(folder).df.set_index("model")
    assert df.loc["HINGE", "hingeMargin"].tolist() == [1.0, 0.5] and pd.isna(df.loc["GAN", "hingeMargin"])
    assert pd.isna(df.loc["HINGE", "margin"]).all() and df.loc["EBGAN", "margin"] == 10

    written = report.write_report(folder, tmp_path / "report")
    assert tmp_path / "report" / "fig2_hinge.png" in written
    summary = pd.read_csv(tmp_path / "report" / "summary.csv").set_index("name")
    assert summary.loc["HINGE", "n"] == 2 and summary.loc["HINGE", "group"] == "model"
    assert summary.loc["HINGE", "ok"] + summary.loc["HINGE", "diverged"] == 2
    assert palette()["HINGE"] == "#56b4e9"
    page = (tmp_path / "report" / "index.html").read_text()
    assert "HINGE against EBGAN and GAN" in page
