"""The reference trainer end to end on a slice of real MNIST: GAN, EBGAN, EBGAN-PT, divergence."""
import math

import pytest
import torch

from harness.config import TrainConfig, total_steps
from harness.engine import train

TINY = dict(sizeG=64, sizeD=32, trainImages=1280, epochs=2, scoreSamples=500, epochScoreSamples=200)


@pytest.mark.parametrize("cfg", [
    TrainConfig(family="gan", optimD="sgd", optimG="adam", lr=0.01, dropoutD=True, **TINY),
    TrainConfig(family="ebgan", nLayerD=3, **TINY),
    TrainConfig(family="ebgan", nLayerD=3, wPT=0.1, **TINY),
], ids=["GAN", "EBGAN", "EBGAN-PT"])
def test_trains_scores_and_saves_samples(cfg, data, scorer, tmp_path):
    epochs = []
    r = train(cfg, data, scorer, tmp_path, record_losses=True, on_epoch=lambda e, s: epochs.append((e, s)))
    assert epochs == [(e + 1, {cfg.config_id: v}) for e, v in enumerate(r.IprimePerEpoch)]
    assert r.status == "ok" and r.steps == total_steps(cfg) == 40
    assert len(r.IprimePerEpoch) == 2 and all(math.isfinite(v) for v in r.IprimePerEpoch)
    assert math.isfinite(r.Iprime) and math.isfinite(r.fid) and sum(r.classHist) == 500
    assert math.isfinite(r.lossD) and math.isfinite(r.lossG) and r.stepsPerSec > 0
    assert (tmp_path / f"{cfg.config_id}.png").is_file() and r.samplesPath.endswith(".png")
    assert len(r.lossHistory) == 40


def test_deterministic_for_a_seed_and_different_across_seeds(data, scorer):
    cfg = TrainConfig(family="gan", **{**TINY, "epochs": 0.5})
    a, b = train(cfg, data, scorer, record_losses=True), train(cfg, data, scorer, record_losses=True)
    assert a.lossHistory == b.lossHistory and a.Iprime == b.Iprime
    c = train(TrainConfig(family="gan", seed=1, **{**TINY, "epochs": 0.5}), data, scorer, record_losses=True)
    assert c.lossHistory != a.lossHistory


def test_huge_learning_rate_is_a_diverged_result_not_a_crash(data, scorer):
    cfg = TrainConfig(family="gan", optimD="sgd", optimG="sgd", lr=1e6, **TINY)
    r = train(cfg, data, scorer)
    assert r.status == "diverged" and r.steps < total_steps(cfg)
    assert math.isnan(r.Iprime) and r.samplesPath is None


def test_training_leaves_the_global_rng_alone(data, scorer):
    torch.manual_seed(123)
    before = torch.rand(3)
    torch.manual_seed(123)
    train(TrainConfig(family="ebgan", **{**TINY, "epochs": 0.25}), data, scorer)
    assert torch.equal(torch.rand(3), before)


def test_every_row_records_its_g_updates_and_the_g_budget_gives_wgan_gp_as_many_as_the_others(data, scorer):
    tiny = dict(sizeG=16, sizeD=8, trainImages=640, epochs=1, scoreSamples=100, epochScoreSamples=100)
    wgan = TrainConfig(family="wgan_gp", nCritic=5, **tiny)
    by_d = train(wgan, data, scorer)
    by_g = train(TrainConfig(family="wgan_gp", nCritic=5, budgetCounts="gSteps", **tiny), data, scorer)
    gan = train(TrainConfig(family="gan", **tiny), data, scorer)
    assert (by_d.steps, by_d.gSteps) == (10, 2)
    assert (by_g.steps, by_g.gSteps) == (50, 10) == (5 * gan.steps, gan.gSteps)
    assert by_g.to_row()["gSteps"] == 10 and len(by_g.IprimePerEpoch) == 5
