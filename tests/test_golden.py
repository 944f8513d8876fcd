"""Behaviour kept across refactors: every row of grids/smoke.yaml and grids/smoke_families.yaml,
trained on the CPU through the sweep's local executor, is bit-equal to the rows recorded in
tests/golden/smoke_rows.json (configId, status, I', FID, final losses) before the code was moved.

The record holds for the torch it was made with (its build's CPU kernels round as they round);
with another torch the test is skipped, and `python tests/test_golden.py --record` makes a new one."""
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
GOLDEN = Path(__file__).parent / "golden" / "smoke_rows.json"
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


@pytest.mark.slow
def test_smoke_rows_are_bit_equal_to_the_record(tmp_path, data_dir):
    golden = json.loads(GOLDEN.read_text())
    if golden["torch"] != torch.__version__:
        pytest.skip(f"recorded with torch {golden['torch']}, this is {torch.__version__}")
    assert rows(tmp_path, data_dir) == golden["grids"]


if __name__ == "__main__":   # python tests/test_golden.py --record [DATA_DIR]
    import tempfile
    assert sys.argv[1:2] == ["--record"], "usage: python tests/test_golden.py --record [DATA_DIR]"
    with tempfile.TemporaryDirectory() as tmp:
        record = {"torch": torch.__version__, "grids": rows(Path(tmp), sys.argv[2] if len(sys.argv) > 2 else "")}
    GOLDEN.write_text(json.dumps(record, indent=1) + "\n")
    print(f"recorded {sum(map(len, record['grids'].values()))} rows with torch {torch.__version__} in {GOLDEN}")
