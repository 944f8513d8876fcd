"""Behaviour kept across refactors, on any CPU: every config of grids/smoke.yaml and
grids/smoke_families.yaml against tests/golden/smoke_rows.json.

- Everywhere: the first steps' losses of each config, trained in the packs the sweep makes,
  within the GPU check's tolerances (step 1 within 1e-5 relative: a change of behaviour shows
  there), and each row's status from the sweep (the local executor).
- On the CPU and torch the record was made with (tests/follows.py): every row bit-equal to the
  record (configId, status, I', FID, final losses). A batched matmul rounds unlike another CPU's
  kernels, and a few hundred chaotic steps turn that into a different final I' (1e-3 relative on
  an Intel Xeon with AVX-512): elsewhere the final rows are not compared.

The record holds for the torch it was made with; with another torch the test is skipped, and
`python -m tests.test_golden --record [DATA_DIR]` makes a new one (on this CPU)."""
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
import torch

from harness.provenance import cpu_kernels
from harness.tools.correctness import TIGHT_STEPS, compare
from tests.follows import GOLDEN, on_recorded_machine

REPO = Path(__file__).resolve().parents[1]
GRIDS = ("smoke", "smoke_families")
COLUMNS = ["configId", "status", "Iprime", "fid", "lossD", "lossG"]


def rows(results: Path, data_dir) -> dict[str, list[dict]]:
    out = {}
    for grid in GRIDS:
        run = subprocess.run([sys.executable, "-m", "harness.sweep", f"grids/{grid}.yaml", "--executor", "local",
                              "--results", str(results), *(["--data-dir", str(data_dir)] if data_dir else [])],
                             cwd=REPO, capture_output=True, text=True, timeout=600)
        assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
        df = pd.read_parquet(results / grid / "trials.parquet").sort_values("configId")
        out[grid] = [{k: (None if v != v else v) for k, v in r.items()} for r in df[COLUMNS].to_dict("records")]
    return out


def first_steps(data_dir) -> dict[str, object]:
    """configId -> the run of each smoke config, trained in the packs the sweep makes on a CPU."""
    from harness.data import gan_training_set
    from harness.engine import train_pack
    from harness.grid import load_grid
    from harness.metrics import Scorer
    from harness.plan import make_packs
    configs = [c for grid in GRIDS for c in load_grid(REPO / "grids" / f"{grid}.yaml").configs]
    data = gan_training_set(data_dir or None, max(c.trainImages for c in configs), "cpu")
    scorer = Scorer(None, data_dir or None)
    return {c.config_id: run for pack in make_packs(configs, 8)
            for c, run in zip(pack, train_pack(pack, data, scorer, None, "cpu", record_losses=True))}


@pytest.mark.slow
def test_smoke_configs_follow_the_record_on_any_cpu_and_bit_for_bit_on_its_own(tmp_path, data_dir):
    golden = json.loads(GOLDEN.read_text())
    if golden["torch"] != torch.__version__:
        pytest.skip(f"recorded with torch {golden['torch']}, this is {torch.__version__}")
    recorded = {r["configId"]: r for grid in golden["grids"].values() for r in grid}
    for config_id, run in first_steps(data_dir).items():
        want = replace(run, lossHistory=[tuple(x) for x in golden["firstSteps"][config_id]])
        row = compare(run, want, "fp32", final=False)
        assert row["status"] == "pass", f"{config_id} on {cpu_kernels()}: {row['reason']}"
        assert run.status == recorded[config_id]["status"], config_id
    got = rows(tmp_path, data_dir)
    assert {g: [(r["configId"], r["status"]) for r in rs] for g, rs in got.items()} == \
        {g: [(r["configId"], r["status"]) for r in rs] for g, rs in golden["grids"].items()}
    if on_recorded_machine():   # bit for bit, but FID: its float64 eigh is numpy's BLAS, with kernels of its own
        def split(grids):
            rows = [r for g in GRIDS for r in grids[g]]
            return [{k: v for k, v in r.items() if k != "fid"} for r in rows], [r["fid"] for r in rows]
        (got_rows, got_fid), (want_rows, want_fid) = split(got), split(golden["grids"])
        assert got_rows == want_rows, f"bit level on {cpu_kernels()}"
        assert got_fid == pytest.approx(want_fid, rel=1e-9, abs=0, nan_ok=True)


if __name__ == "__main__":   # python -m tests.test_golden --record [DATA_DIR]
    import tempfile
    assert sys.argv[1:2] == ["--record"], "usage: python -m tests.test_golden --record [DATA_DIR]"
    data_dir = sys.argv[2] if len(sys.argv) > 2 else ""
    torch.set_num_threads(1)   # as the tests and the trials run
    with tempfile.TemporaryDirectory() as tmp:
        record = {"torch": torch.__version__, "cpu": cpu_kernels(), "grids": rows(Path(tmp), data_dir),
                  "firstSteps": {k: r.lossHistory[:TIGHT_STEPS] for k, r in first_steps(data_dir).items()}}
    GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded {sum(map(len, record['grids'].values()))} rows with torch {torch.__version__} "
          f"on {record['cpu']} in {GOLDEN}")
