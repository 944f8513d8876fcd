"""The modified inception score and friends, with the committed ConvNet; `python -m harness.score`."""
import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from harness.data import load_mnist, to_tensor32
from harness.metrics import frechet_distance, inception_score, modified_inception_score

REPO = Path(__file__).resolve().parents[1]


def test_modified_inception_score_hand_computed():
    p = torch.tensor([[0.9, 0.1], [0.2, 0.8]])
    p_y = p.mean(0)  # [0.55, 0.45]
    want = np.mean([sum(p_y[k] * math.log(p_y[k] / p[i, k]) for k in range(2)) for i in range(2)])
    assert modified_inception_score(p.log()) == pytest.approx(float(want), rel=1e-5)
    want_is = math.exp(np.mean([sum(p[i, k] * math.log(p[i, k] / p_y[k]) for k in range(2)) for i in range(2)]))
    assert inception_score(p.log()) == pytest.approx(want_is, rel=1e-5)


def test_frechet_distance_of_shifted_gaussians():
    mu, cov = np.zeros(3), np.eye(3)
    assert frechet_distance(mu, cov, mu, cov) == pytest.approx(0, abs=1e-9)
    assert frechet_distance(mu, cov, mu + 2, 4 * cov) == pytest.approx(12 + 3 * (1 + 4 - 4), rel=1e-6)


@pytest.fixture(scope="module")
def test_images(data_dir):
    return to_tensor32(load_mnist("test", data_dir).images[:5000])


def test_real_mnist_scores_high_and_one_repeated_image_scores_zero(scorer, test_images):
    real = scorer.score(test_images)
    assert real.Iprime > 5  # confident posteriors, classes balanced
    assert real.fid < 1.0   # the test set against (half of) itself
    assert min(real.classHist) > 350 and sum(real.classHist) == 5000
    same = scorer.score(test_images[:1].repeat(1000, 1, 1, 1))
    assert same.Iprime == pytest.approx(0, abs=1e-5)
    assert same.inceptionScore == pytest.approx(1, abs=1e-4)
    assert max(same.classHist) == 1000
    assert same.fid > 10 * real.fid


def score_cli(tmp_path, array, *extra):
    path = tmp_path / "s.npy"
    np.save(path, array)
    return subprocess.run([sys.executable, "-m", "harness.score", str(path), *extra], cwd=REPO,
                          capture_output=True, text=True)


def test_score_cli_detects_the_value_range(tmp_path, data_dir):
    raw = load_mnist("test", data_dir).images[:500]
    as_255 = score_cli(tmp_path, raw, "--data-dir", str(data_dir))
    assert as_255.returncode == 0, as_255.stderr
    a = json.loads(as_255.stdout)
    assert a["valueRange"] == "0..255" and a["n"] == 500 and a["Iprime"] > 4
    padded = to_tensor32(raw)[:, 0].numpy()  # N x 32 x 32 in [-1, 1]
    b = json.loads(score_cli(tmp_path, padded, "--no-fid").stdout)
    assert b["valueRange"] == "[-1, 1]" and b["Iprime"] == pytest.approx(a["Iprime"], rel=1e-4)


@pytest.mark.parametrize("array, message", [
    (np.zeros((10, 30, 30)), "shape"),
    (np.full((10, 28, 28), np.nan), "NaN"),
    (np.full((10, 28, 28), 300.0), "rescale"),
])
def test_score_cli_bad_input(tmp_path, array, message):
    out = score_cli(tmp_path, array, "--no-fid")
    assert out.returncode == 2 and message in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_score_cli_unreadable_file(tmp_path):
    (tmp_path / "bad.npy").write_text("hello")
    out = subprocess.run([sys.executable, "-m", "harness.score", str(tmp_path / "bad.npy")], cwd=REPO,
                         capture_output=True, text=True)
    assert out.returncode == 2 and "bad.npy" in out.stderr and len(out.stderr.strip().splitlines()) == 1


def test_two_disjoint_halves_are_scored_apart(scorer, test_images):
    """IprimeSetA/B: I' of samples [0, N//2) and [N//2, 2 (N//2)); a 2N+1-th sample is left out."""
    images = torch.cat([test_images[:1].repeat(600, 1, 1, 1), test_images[:601]])  # 1201 samples
    s = scorer.score(images, fid=False)
    assert s.IprimeSetA == pytest.approx(0, abs=1e-5)  # one image repeated
    assert s.IprimeSetB == pytest.approx(scorer.score(test_images[:600], fid=False).Iprime, rel=1e-6)
    assert s.IprimeSetB > 4 and set(s.to_dict()) >= {"IprimeSetA", "IprimeSetB"}
    assert math.isnan(scorer.score(test_images[:1], fid=False).IprimeSetA)
    missing = type(s).missing()
    assert math.isnan(missing.IprimeSetA) and math.isnan(missing.IprimeSetB)


def test_real_iprime_is_cached_per_classifier_and_sample_count(scorer, test_images, tmp_path, monkeypatch):
    monkeypatch.setenv("HARNESS_CACHE_DIR", str(tmp_path / "cache"))
    value = scorer.real_iprime(1000)
    whole = scorer.real_iprime(20000)  # more than the test set: all 10,000 images once
    assert scorer.real_iprime_cache(10000).exists() and whole == pytest.approx(11.90, abs=0.01)
    assert abs(value - whole) < 0.1  # random draws of 1000: a little below the whole set's I'
    first = scorer.score(test_images[:1000], fid=False).Iprime  # not the first 1000: other writers
    assert abs(first - whole) > 0.3
    cache = scorer.real_iprime_cache(1000)
    assert cache.exists() and scorer.weights_sha[:16] in cache.name and cache.name.endswith("_1000.json")
    data_dir, scorer.data_dir = scorer.data_dir, tmp_path / "no-mnist-here"
    try:
        assert scorer.real_iprime(1000) == value  # read back from the cache: no MNIST needed
    finally:
        scorer.data_dir = data_dir


def test_half_split_estimates_the_sampling_spread_of_real_iprime(scorer, test_images):
    """analysis.sampling_variance's assumption (var of I' ~ 1/N) on the ConvNet's real outputs:
    draws of N = 500 images (with replacement: an endless source, as a generator is); the sd of
    I' over draws against sqrt(mean (A - B)^2 / 4) from each draw's two halves of 250."""
    from harness.report.analysis import sampling_variance
    log_p, _ = scorer.classify(test_images)
    rng = np.random.default_rng(0)
    full, var = [], []
    for _ in range(400):
        idx = torch.from_numpy(rng.integers(0, len(log_p), 500))
        full.append(modified_inception_score(log_p[idx]))
        var.append(sampling_variance(modified_inception_score(log_p[idx[:250]]),
                                     modified_inception_score(log_p[idx[250:]])))
    assert np.sqrt(np.mean(var)) == pytest.approx(np.std(full, ddof=1), rel=0.15)


def test_score_cli_scores_a_mixtures_points_with_its_own_columns(tmp_path):
    from harness import datasets
    np.save(tmp_path / "ring.npy", datasets.get("ring8").real_samples(2500, 1).numpy())  # the models' [-1, 1]
    out = subprocess.run([sys.executable, "-m", "harness.score", str(tmp_path / "ring.npy"), "--dataset", "ring8"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    r = json.loads(out.stdout)
    assert r["dataset"] == "ring8" and r["modesCaptured"] == 8 and r["highQualityFrac"] > 0.98
    assert abs(r["Iprime"] - math.log(8)) < 0.03 and len(r["classHist"]) == 8
    np.save(tmp_path / "bad.npy", np.zeros((10, 3)))
    bad = subprocess.run([sys.executable, "-m", "harness.score", str(tmp_path / "bad.npy"), "--dataset", "ring8"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "is not N x 2" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("bad", [0, 10, 2500])
def test_score_cli_prints_strict_json_and_says_how_many_samples_were_not_finite(tmp_path, bad):
    """NaN samples (a diverged generator): the scores with nothing to score are null, never the
    bare NaN strict parsers reject, and one line on stderr says how many samples were not finite."""
    from harness import datasets
    x = datasets.get("ring8").real_samples(2500, 1).numpy()
    x[:bad] = np.nan
    np.save(tmp_path / "x.npy", x)
    out = subprocess.run([sys.executable, "-m", "harness.score", str(tmp_path / "x.npy"), "--dataset", "ring8"],
                         cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr

    def refuse(word):
        raise ValueError(f"{word} is not JSON")
    r = json.loads(out.stdout, parse_constant=refuse)
    notes = out.stderr.strip().splitlines()
    if bad == 0:
        assert notes == [] and r["Iprime"] == pytest.approx(math.log(8), abs=0.03)
        return
    assert len(notes) == 1 and f"{bad} of 2500 samples are NaN or infinite" in notes[0]
    if bad == 2500:
        assert r["Iprime"] is None and r["inceptionScore"] is None and r["modeKL"] is None
        assert r["modesCaptured"] == 0 and r["n"] == 2500
    else:
        assert r["Iprime"] == pytest.approx(math.log(8), abs=0.03) and sum(r["classHist"]) == 2500 - bad
