"""One trial, wherever it runs: a pack trained and scored, its rows with their provenance."""
from classifiers.convnet import DEFAULT_WEIGHTS, sha256_file
from harness.grid import load_grid
from harness.plan import make_packs
from harness.provenance import COLUMNS as PROVENANCE
from tests.helpers import REPO


def test_a_trials_rows_carry_provenance(data_dir):
    """A real trial (one pack of the smoke grid, trained and scored), run in this process: the rows
    it sends the driver carry the provenance columns."""
    from harness.trial import TrialEnv, run_trial

    pack = make_packs(load_grid(REPO / "grids" / "smoke.yaml").configs, pack_size=8)[0]
    rows = [r["result"] for r in run_trial(pack, TrialEnv(str(data_dir), None))]
    assert len(rows) == len(pack) and all(r["status"] in ("ok", "diverged") for r in rows)
    for row in rows:
        assert set(PROVENANCE) <= row.keys() and all(isinstance(row[c], str) and row[c] for c in PROVENANCE)
        assert row["classifierSha256"] == sha256_file(DEFAULT_WEIGHTS)
