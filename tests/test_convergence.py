"""harness.convergence: which runs were still improving when their budget ended."""
import numpy as np
import pytest

from harness import datasets
from harness.config import TrainConfig
from harness.convergence import MIN_EPOCHS, still_improving, still_improving_any
from harness.engine import train


def test_a_curve_still_rising_through_its_noise_is_flagged_and_a_plateau_is_not():
    rng = np.random.default_rng(0)
    epochs = np.arange(25)
    rising = 0.2 * epochs + rng.normal(0, 0.3, 25)                 # the last 7 epochs rise by ~1.2
    plateau = 5 * (1 - np.exp(-epochs / 3)) + rng.normal(0, 0.3, 25)  # flat from epoch ~12
    assert still_improving(rising) is True
    assert still_improving(plateau) is False
    assert still_improving(np.full(25, 8.0)) is False                # every mode captured, every epoch
    assert still_improving([1, 2, 3, 4, 5, 6, 7]) is None            # under MIN_EPOCHS: cannot tell
    assert still_improving([1.0] * 10 + [float("nan")]) is None


def test_a_flat_noisy_curve_is_called_improving_rarely_and_a_real_rise_mostly():
    """The false-alarm rate on flat curves of 25 epochs (the corner's budget) and of MIN_EPOCHS,
    and the detection rate of a rise of 2 noise stds over the last quarter, simulated."""
    rng = np.random.default_rng(1)
    flat25 = np.mean([still_improving(rng.normal(0, 1, 25)) for _ in range(2000)])
    flat8 = np.mean([still_improving(rng.normal(0, 1, MIN_EPOCHS)) for _ in range(2000)])
    rise = np.concatenate([np.zeros(18), np.linspace(0, 2, 7)])
    detected = np.mean([still_improving(rise + rng.normal(0, 0.5, 25)) for _ in range(2000)])
    assert 0.02 < flat25 < 0.08 and flat8 < 0.12     # about 5% and 9% (t with 5 and 2 df past 2)
    assert detected > 0.8
    two = {"a": 0.0, "b": 0.0}                        # a mixture's two measures, both flat: about twice one's rate
    both = np.mean([still_improving_any({"a": rng.normal(0, 1, 25), "b": rng.normal(0, 1, 25)}, two)
                    for _ in range(2000)])
    assert 0.05 < both < 0.15


def test_every_run_records_its_verdict_and_a_mixture_its_own_measures_per_epoch():
    ring = datasets.get("ring8")
    cfg = TrainConfig(family="gan", dataset="ring8", sizeG=16, sizeD=16, nLayerG=2, nLayerD=2, trainImages=640,
                      epochs=8, scoreSamples=500, epochScoreSamples=250)
    data = ring.training_set(None, cfg.trainImages, "cpu")
    row = train(cfg, data, ring.scorer(None, None, "cpu")).to_row()
    assert len(row["modesCapturedPerEpoch"]) == len(row["highQualityFracPerEpoch"]) == len(row["IprimePerEpoch"]) == 8
    measures = ring.convergence_measures                # modes captured, or the high-quality share
    assert row["stillImproving"] == still_improving_any({m: row[f"{m}PerEpoch"] for m in measures}, measures)
    assert isinstance(row["stillImproving"], bool)
    short = train(TrainConfig(family="gan", dataset="ring8", sizeG=16, sizeD=16, nLayerG=2, nLayerD=2,
                              trainImages=640, epochs=2, scoreSamples=500, epochScoreSamples=250),
                  data, ring.scorer(None, None, "cpu")).to_row()
    assert short["stillImproving"] is None


def test_a_generator_closing_in_on_its_first_modes_is_still_improving_though_it_captures_none():
    """WGAN-GP on the ring (docs/studies/anchors/: 125 scored epochs, one per pass of its critic):
    a fuzzy ring, no mode captured, its high-quality share creeping from 1% to 4% through the
    binomial scatter of 2,500 samples: not converged. A run at its plateau on both measures, or
    with too few epochs on both, reads as before."""
    rng = np.random.default_rng(3)
    ring = datasets.get("ring8").convergence_measures
    share = np.linspace(0.01, 0.04, 125) + rng.normal(0, np.sqrt(0.03 * 0.97 / 2500), 125)
    creeping = {"modesCaptured": [0.0] * 125, "highQualityFrac": list(share)}
    assert still_improving(creeping["modesCaptured"], ring["modesCaptured"]) is False
    assert still_improving_any(creeping, ring) is True
    plateau = {"modesCaptured": [8.0] * 125, "highQualityFrac": list(0.9 + rng.normal(0, 0.02, 125))}
    assert still_improving_any(plateau, ring) is False
    assert still_improving_any({"modesCaptured": [1.0] * 5, "highQualityFrac": [0.1] * 5}, ring) is None
    assert still_improving_any({"modesCaptured": [8.0] * 40}, ring) is False      # a measure missing: the other tells


@pytest.mark.parametrize("name, primary", [("mnist", "Iprime"), ("ring8", "modesCaptured"),
                                           ("grid25", "modesCaptured")])
def test_each_dataset_names_its_primary_measure(name, primary):
    assert datasets.get(name).primary_measure == primary


def test_a_rise_below_the_measure_s_resolution_is_not_improving():
    creeping = np.geomspace(1e-9, 1e-7, 25)           # a collapsed generator: no scatter, no real rise
    assert still_improving(creeping) is True and still_improving(creeping, resolution=0.01) is False
    assert still_improving(np.r_[np.zeros(18), np.arange(1, 8)], resolution=0.5) is True   # a mode per epoch
