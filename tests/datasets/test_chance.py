"""Chance floors (issue 23): every dataset's structureless references, the mode count that none of
them passes, and one unit, the models' [-1, 1], from `real_samples` to `python -m harness.score`."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness import datasets
from harness.datasets._mixture import SCORED_SAMPLES

REPO = Path(__file__).resolve().parents[2]
DRAWS = 200
REFERENCES = {"ring8": {"uniformBox", "gaussian", "uniformCircle"}, "grid25": {"uniformBox", "gaussian"}}


def score_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "harness.score", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=300)


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_no_structureless_reference_captures_a_mode_in_200_draws(name):
    """200 seeded draws of 2,500 samples of each reference: modesCaptured is 0 in every one. The
    draws are scored by the mixture's own `scores` (what the scorer's modesCaptured is) to keep
    the test to seconds: the scorer adds two half-set I's and a Frechet distance per draw."""
    ds = datasets.get(name)
    captured, captured_any = {}, {}
    for seed in range(DRAWS):
        refs = ds.chance_references(SCORED_SAMPLES, seed)
        assert set(refs) == REFERENCES[name]
        for ref, x in refs.items():
            s = ds.mixture.scores(x.double().numpy() * ds.scale)
            captured[ref] = max(captured.get(ref, 0), s["modesCaptured"])
            captured_any[ref] = max(captured_any.get(ref, 0), s["modesCapturedAny"])
    assert captured == dict.fromkeys(REFERENCES[name], 0)
    # the published rule (one high-quality sample) is fooled by the same clouds: why it is not the measure
    assert captured_any["uniformBox"] == ds.mixture.n_modes
    if name == "ring8":
        assert captured_any["uniformCircle"] == 8


@pytest.mark.parametrize("name", ["ring8", "grid25"])
def test_mixture_references_are_seeded_and_where_they_say(name):
    ds = datasets.get(name)
    mix = ds.mixture
    a, b, c = (ds.chance_references(4000, s) for s in (3, 3, 4))
    for ref in a:
        assert a[ref].shape == (4000, 2) and a[ref].dtype == torch.float32 and a[ref].abs().max() <= 1
        assert torch.equal(a[ref], b[ref]) and not torch.equal(a[ref], c[ref])
    own = mix.chance_references(20000, 0)                       # the mixture's units, before clipping
    lo, hi = mix.means.min(0), mix.means.max(0)
    assert (own["uniformBox"].min(0) < lo).all() and (own["uniformBox"].max(0) > hi).all()
    assert (own["uniformBox"].min(0) >= lo - 3 * mix.std).all() and (own["uniformBox"].max(0) <= hi + 3 * mix.std).all()
    assert np.allclose(np.cov(own["gaussian"], rowvar=False), mix.covariance, rtol=0.05, atol=0.05)
    assert np.allclose(own["gaussian"].mean(0), mix.mean, atol=0.05)
    if name == "ring8":
        assert np.allclose(np.hypot(*own["uniformCircle"].T), 2.0, atol=1e-5)


def test_chance_cli_prints_one_json_line_per_reference():
    out = score_cli("--chance", "--dataset", "ring8", "--no-fid", "--seed", "7")
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert {r["reference"] for r in rows} == REFERENCES["ring8"]
    assert all(r["n"] == SCORED_SAMPLES and r["seed"] == 7 and r["dataset"] == "ring8" for r in rows)
    assert all(r["modesCaptured"] == 0 and r["fid"] is None and 0 <= r["highQualityFrac"] < 0.1 for r in rows)
    by_name = {r["reference"]: r for r in rows}
    assert by_name["uniformCircle"]["modesCapturedAny"] == 8
    # the same numbers as the scorer gives the references in this process
    ds = datasets.get("ring8")
    circle = ds.scorer(None, None, "cpu").score(ds.chance_references(SCORED_SAMPLES, 7)["uniformCircle"], fid=False)
    assert circle.extra["highQualityFrac"] == by_name["uniformCircle"]["highQualityFrac"]
    assert score_cli("--dataset", "ring8").returncode == 2          # neither a file nor --chance


def test_real_samples_saved_and_scored_by_the_cli_capture_every_mode(tmp_path):
    """One unit: what `real_samples` gives, saved, is what the CLI reads (it gave 0 modes before)."""
    ds = datasets.get("ring8")
    np.save(tmp_path / "real.npy", ds.real_samples(SCORED_SAMPLES, 1).numpy())
    out = score_cli(str(tmp_path / "real.npy"), "--dataset", "ring8", "--no-fid")
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["modesCaptured"] == r["modesCapturedAny"] == 8 and r["highQualityFrac"] > 0.98
    assert "[-1, 1]" in r["valueRange"]
    # points in the mixture's own units are refused, with the factor that maps them
    np.save(tmp_path / "own.npy", ds.mixture.sample(SCORED_SAMPLES, 1))
    own = score_cli(str(tmp_path / "own.npy"), "--dataset", "ring8")
    assert own.returncode == 2 and "divide them by 2.5" in own.stderr and len(own.stderr.strip().splitlines()) == 1


def test_mnist_references_are_noise_and_the_mean_image(data_dir):
    ds = datasets.get("mnist")
    refs = ds.chance_references(300, 0, data_dir)
    assert set(refs) == {"uniformNoise", "gaussianNoise", "meanImage"}
    for x in refs.values():
        assert x.shape == (300, 1024) and x.dtype == torch.float32 and x.abs().max() <= 1
    assert torch.equal(refs["uniformNoise"], ds.chance_references(300, 0, data_dir)["uniformNoise"])
    images = refs["meanImage"].reshape(300, 32, 32)
    assert (images == images[0]).all() and (images[0, :2] == -1).all()           # one image, padding -1
    gauss = refs["gaussianNoise"].reshape(300, 32, 32)
    assert (gauss[:, :2] == -1).all() and gauss[:, 14, 14].std() > 0.3           # noise inside, none in the padding
    from harness.data import load_mnist
    train = load_mnist("train", data_dir).images
    assert np.allclose(images[0, 2:30, 2:30].numpy(), train.mean(0) / 127.5 - 1, atol=1e-5)  # the training mean


def test_mnist_chance_cli(data_dir):
    out = score_cli("--chance", "--dataset", "mnist", "--no-fid", "-n", "500", "--data-dir", str(data_dir))
    assert out.returncode == 0, out.stderr
    rows = {r["reference"]: r for r in map(json.loads, out.stdout.splitlines())}
    assert set(rows) == {"uniformNoise", "gaussianNoise", "meanImage"} and all(r["n"] == 500 for r in rows.values())
    assert rows["meanImage"]["Iprime"] == pytest.approx(0, abs=1e-6)   # one image, one class: no information
    assert all(r["Iprime"] < 0.5 for r in rows.values())
