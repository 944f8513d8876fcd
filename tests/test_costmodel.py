"""The cost model: FLOPs per step by hand, the rate fit, the schedule, the rates file."""
import pytest

from harness.config import TrainConfig
from harness.costmodel import Rates, fit_step_time, flops_per_step, fmt_duration, project, scored_samples


def test_flops_per_step_by_hand():
    # G: 100 -> 400 -> 1024; D (GAN): 1024 -> 128 -> 1; batch 64
    cfg = TrainConfig(family="gan", nLayerG=2, nLayerD=2, sizeG=400, sizeD=128, batchSize=64)
    w_g, w_d = 100 * 400 + 400 * 1024, 1024 * 128 + 128 * 1
    assert flops_per_step(cfg) == 2 * 64 * (3 * w_g + 8 * w_d)
    # EBGAN's D decodes back to 1024 pixels: a bigger head than GAN's logit
    assert flops_per_step(TrainConfig(family="ebgan", sizeG=400, sizeD=128)) > flops_per_step(cfg)


def test_scored_samples_count_every_epoch_the_final_set_and_the_grid():
    cfg = TrainConfig(epochs=3, trainImages=1280, batchSize=64, scoreSamples=500, epochScoreSamples=200)
    assert scored_samples(cfg) == 3 * 200 + 500


def test_fit_recovers_overhead_and_rate():
    a, r = 2e-3, 5e10
    points = [(f, a + f / r) for f in (1e6, 1e8, 1e9, 1e10, 1e11)]
    fa, fr = fit_step_time(points)
    assert fa == pytest.approx(a, rel=1e-6) and fr == pytest.approx(r, rel=1e-6)
    # no visible overhead: a rate through the origin, never a negative overhead
    fa, fr = fit_step_time([(1e9, 0.02), (2e9, 0.039)])
    assert fa >= 0 and fr > 0


def test_pack_seconds_and_a_greedy_longest_first_schedule():
    rates = Rates("cpu", step_overhead_s=0.0, flops_per_s=1e9, score_s_per_sample=0.0, trial_overhead_s=1.0)
    cfg = TrainConfig(trainImages=640, epochs=1, batchSize=64)             # 10 steps
    assert rates.pack_seconds([cfg] * 2) == pytest.approx(1.0 + 10 * 2 * flops_per_step(cfg) / 1e9)
    # pack costs 5, 4, 3, 3, 3 on two slots: 5+3 | 4+3+3 -> 10 (greedy: the least busy slot takes the next)
    packs = [[TrainConfig(trainImages=64, epochs=1, seed=s)] for s in range(5)]

    class Fixed(Rates):
        def pack_seconds(self, pack):
            return [5.0, 4.0, 3.0, 3.0, 3.0][pack[0].seed]
    fixed = Fixed("cpu", 0, 1, 0, 0)
    assert project(packs, fixed, 1) == 18 and project(packs, fixed, 2) == 10 and project(packs, fixed, 9) == 5
    # a resumed pack's saved share is not trained again: 5 -> 1 (80% saved): 4+3 | 3+3+1 -> 7
    assert project(packs, fixed, 2, [0.2, 1, 1, 1, 1]) == 7 and project(packs, fixed, 1, [0.0] * 5) == 0


def test_rates_file_round_trip(tmp_path):
    path = tmp_path / "rates.json"
    assert Rates.load("cpu", path) is None
    r = Rates("cpu", 1e-3, 4e10, 1e-4, 0.5, threads=1, measured="test")
    r.save(path)
    Rates("cuda", 1e-5, 4e14, 1e-6, 0.2, measured="gpu").save(path)
    assert Rates.load("cpu", path) == r and Rates.load("cuda", path).flops_per_s == 4e14


def test_durations_read_like_durations():
    assert fmt_duration(42) == "42s" and fmt_duration(125) == "2m 05s"
    assert fmt_duration(3 * 3600 + 60) == "3h 01m" and fmt_duration(3 * 86400 + 7200) == "3d 2h"


def test_a_mixture_s_scoring_costs_nothing_beside_the_classifier_s():
    """The benchmark's score rate is MNIST's ConvNet's; a 2D mixture is scored by an exact
    posterior, hundreds of times cheaper: its projection charges only training."""
    rates = Rates("cpu", step_overhead_s=1e-3, flops_per_s=1e9, score_s_per_sample=1e-3, trial_overhead_s=1.0)
    shape = dict(trainImages=640, epochs=2, batchSize=64, scoreSamples=2500, epochScoreSamples=2500)
    ring, mnist = TrainConfig(dataset="ring8", **shape), TrainConfig(**shape)
    train = 20 * (1e-3 + 2 * flops_per_step(ring) / 1e9)
    assert rates.pack_seconds([ring] * 2) == pytest.approx(1.0 + train)
    assert rates.pack_seconds([mnist] * 2) == pytest.approx(
        1.0 + 20 * (1e-3 + 2 * flops_per_step(mnist) / 1e9) + 2 * 3 * 2500 * 1e-3)
