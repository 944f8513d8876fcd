"""The registered datasets: MNIST as before, the ring of 8 and the grid of 25 scored end to end
through their scorers (the models' [-1, 1] scaled back to the mixtures' own units)."""
import math

import numpy as np
import pytest
import torch

from harness import datasets
from harness.config import TrainConfig
from harness.nets import build


def test_the_registry_has_mnist_and_the_mixtures():
    assert datasets.names() == ["grid25", "mnist", "ring8"]
    assert datasets.get("mnist").dim == 1024 and datasets.get("ring8").dim == datasets.get("grid25").dim == 2
    assert datasets.of(TrainConfig()).name == "mnist"
    with pytest.raises(KeyError, match="not one of grid25, mnist, ring8"):
        datasets.get("cifar")


@pytest.mark.parametrize("name, modes", [("ring8", 8), ("grid25", 25)])
def test_real_samples_through_the_scorer_capture_every_mode(name, modes):
    ds = datasets.get(name)
    real = ds.real_samples(5000, seed=3)
    assert real.shape == (5000, 2) and real.abs().max() < 1        # inside tanh's range
    s = ds.scorer(None, None, "cpu").score(real)
    assert s.extra["modesCaptured"] == modes and s.extra["highQualityFrac"] > 0.98
    assert s.Iprime == pytest.approx(math.log(modes), abs=0.03) and s.inceptionScore == pytest.approx(modes, rel=0.05)
    assert s.fid < 0.05 and sum(s.classHist) == 5000
    one = ds.scorer(None, None, "cpu").score(real[:1].repeat(500, 1))      # every sample at one point
    assert one.extra["modesCaptured"] <= 1 and one.Iprime == pytest.approx(0, abs=1e-6)
    far = ds.scorer(None, None, "cpu").score(torch.full((500, 2), 0.999))  # a corner, far from every mode
    assert far.extra["highQualityFrac"] == 0 and far.extra["modesCaptured"] == 0


def test_models_are_sized_to_the_dataset():
    G, D = build(TrainConfig(family="ebgan", dataset="ring8", nLayerG=3, nLayerD=3, sizeG=64, sizeD=32))
    z = torch.randn(16, 100)
    x = G(z)
    recon, code = D(x)
    assert x.shape == recon.shape == (16, 2) and code.shape == (16, 32)
    assert np.isfinite(x.detach().numpy()).all() and x.abs().max() <= 1
