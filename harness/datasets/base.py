"""What a dataset is to the harness: the size of a sample (G's output, D's input), its training
stream, and its scorer, which gives every run I' and the dataset's own measures.

A dataset is a `Dataset` subclass in `harness/datasets/<name>.py` ending with
`DATASET = MyDataset()` (see harness/datasets/__init__.py for the registry). Samples live in
[-1, 1] inside the models (G ends in tanh, Appendix C); a dataset whose data lives elsewhere
maps it there in `training_set` and back in its scorer.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

if TYPE_CHECKING:  # pragma: no cover
    import numpy as np


class Dataset:
    name: str = ""                     # a grid file's `dataset:` and the `dataset` column
    title: str = ""                    # how pages name it
    dim: int = 0                       # a sample's size: G's output, D's input
    score_columns: tuple[str, ...] = ()  # result columns its scorer adds to every ok row
    report_metrics: tuple[str, ...] = ()  # those the report draws beside I' (higher is better)
    # The measure the first screen's verdict reads: the one measure on this dataset that no
    # structureless sample passes. The others are secondary.
    primary_measure: str = "Iprime"
    # The measures a run's convergence (stillImproving, harness.convergence) reads, each with the
    # smallest rise of it that counts: a run is still improving while any of them rises.
    convergence_measures: dict[str, float] = {"Iprime": 0.01}   # I' in nats
    # A measure's value at which a run counts as trained (real data reach it), e.g. a mixture's
    # modesCaptured = its number of modes: the report gives each family's share of configs there.
    report_targets: dict[str, float] = {}
    picture_samples: int = 64          # samples drawn (from a fixed z) for each run's picture
    score_samples: int = 10000         # samples its runs are usually scored on (a grid's scoreSamples)
    # What scoring one sample costs, in units of the rate the benchmark measures (MNIST's ConvNet
    # classifier, harness/rates.json's score_s_per_sample): the cost model's projection and ETA.
    score_cost: float = 1.0
    iprime: str = ""                   # the formula I' is, on this dataset, in words (for pages)

    def prepare(self, data_dir: str | Path | None, classifier: str | Path | None) -> None:
        """Make what this dataset's trials load ready, once, before a sweep starts any: a missing
        piece is then one error line (a HarnessError), not an error row per trial. MNIST's IDX
        files and the classifier; nothing for a dataset generated in memory (the default)."""

    def training_set(self, data_dir: str | Path | None, n: int, device: str | torch.device) -> torch.Tensor:
        """The first `n` training samples, [n, dim] in [-1, 1] (the same for every run)."""
        raise NotImplementedError

    def scorer(self, data_dir: str | Path | None, classifier: str | Path | None, device: str | torch.device) -> Any:
        """What scores samples: `classify(x [N, dim]) -> (log p(y|x) [N, C], features)`,
        `scores_from(log_p, features, fid) -> harness.metrics.Scores`, `score(x, fid)`, and
        `weights_sha` (what scored them, for provenance)."""
        raise NotImplementedError

    def real_samples(self, n: int, seed: int, data_dir: str | Path | None = None) -> torch.Tensor:
        """n real samples, [n, dim] in [-1, 1], as the scorer takes them: the anchor of the scales."""
        raise NotImplementedError

    def chance_references(self, n: int, seed: int, data_dir: str | Path | None = None) -> dict[str, torch.Tensor]:
        """Samples with no structure, drawn with `seed`: name -> [n, dim] in [-1, 1], as the scorer
        takes them. Scored like a run (`python -m harness.score --chance`), they are the floor each
        measure must beat before a run's value means anything (a mixture: uniform on its bounding
        box, a Gaussian with its mean and covariance; MNIST: noise images and the mean image)."""
        raise NotImplementedError

    def samples_from_array(self, x: np.ndarray) -> tuple[torch.Tensor, str]:
        """A user's array of samples (`python -m harness.score`) as the scorer takes them, and how
        its values were read; ValueError(why, fix) if it is not samples of this dataset."""
        raise NotImplementedError

    def save_picture(self, samples: torch.Tensor, path: Path) -> None:
        """One run's picture from `picture_samples` samples [m, dim] in [-1, 1], as a PNG, atomically."""
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<dataset {self.name}>"
