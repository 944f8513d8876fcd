"""The one-shot GPU check, run the way CI can: on the CPU, --quick. Its device-only variants (TF32,
bf16, CUDA graphs) are the same code paths with other switches; here the check itself is tested:
every section written, correctness computed against the reference trainer, a slice reported."""
import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_gpucheck_on_cpu_quick(tmp_path, data_dir):
    out = subprocess.run([sys.executable, "-m", "harness.gpucheck", str(tmp_path), "--device", "cpu", "--quick",
                          "--data-dir", str(data_dir)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["gpucheck.json", "gpucheck.md", "report.html"]
    assert all((tmp_path / f).stat().st_size < 16 << 20 for f in files)
    r = json.loads((tmp_path / "gpucheck.json").read_text())
    assert {"correctness", "throughput", "projection", "slice"} <= r.keys()
    c = r["correctness"]
    assert c["ok"] and c["variants_passed"] == {"fp32": True}
    models = {x["check"].split(": ")[1].split()[0] for x in c["checks"]}
    assert {"GAN", "EBGAN", "EBGAN-PT", "LSGAN", "WGAN-GP", "BEGAN"} <= models
    assert any("huge lr" in x["check"] and x["status"] == "diverged" for x in c["checks"])
    # on a CPU a fp32 member is its reference run, bit for bit
    assert max(x["max_rel_loss_diff"] for x in c["checks"]) == 0.0
    rows = {(x["variant"], x["pack"]): x for x in r["throughput"]["rows"]}
    assert rows[("reference", 1)]["status"] == "ok" and rows[("fp32", 8)]["model_steps_per_s"] > 0
    assert r["projection"]["ok"] and r["projection"]["hours"] > 0
    assert r["slice"]["ok"] and r["slice"]["rows"] == r["slice"]["configs"] > 0
    assert "Correctness: PASS" in (tmp_path / "gpucheck.md").read_text()


def test_gpucheck_without_a_gpu_says_so_in_one_line(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    out = subprocess.run([sys.executable, "-m", "harness.gpucheck", str(tmp_path)], cwd=REPO,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 2 and len(out.stderr.strip().splitlines()) == 1 and "--device cpu" in out.stderr
