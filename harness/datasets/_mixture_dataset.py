"""The 2D Gaussian mixtures (harness/datasets/_mixture.py) as datasets of the harness: the scorer,
the plugin that ring8.py and grid25.py are, and a run's picture.

One unit at every public entry point: the models' [-1, 1]. G ends in tanh, so its samples live
there; `training_set`, `real_samples`, `chance_references`, the scorer's `classify` and
`save_picture` take or give points there, and so does `python -m harness.score --dataset ring8`
(`samples_from_array`). The mixture's own units (`Mixture.sample`, `Mixture.scores`) are `scale`
times those, and stay inside the scorer: a file with values beyond [-1, 1] is refused with the
factor to divide by, rather than read in the wrong unit (a saved `real_samples` array scored as
the mixture's units gave 0 modes).
"""
from __future__ import annotations

import math

import numpy as np

from harness.datasets._mixture import SCORED_SAMPLES, Mixture, real_scores

TRAIN_SEED = 0       # the training set: the same draw for every run, as MNIST's first n images
SCORE_COLUMNS = ("modesCaptured", "modesCapturedAny", "highQualityFrac", "modeKL")  # result columns
PICTURE_SAMPLES = 512


class MixtureScorer:
    """Scores a generator's samples of a mixture with its exact posterior (harness.datasets.base).

    classify(x) takes samples in the models' [-1, 1] and gives (log p(mode | x) [N, M], the
    samples in the mixture's own units [N, 2]); scores_from computes every column from those.
    "fid" is the Frechet distance of the samples' mean and covariance to the mixture's exact ones
    (a coarse second-moment check beside the mode counts)."""

    def __init__(self, mixture: Mixture, scale: float):
        self.mixture, self.scale = mixture, scale
        means = mixture.means
        self.mu, self.cov = mixture.mean, mixture.covariance
        desc = f"{mixture.name}:{means.round(6).tolist()}:{mixture.std}"
        import hashlib
        self.weights_sha = "exact-posterior-" + hashlib.sha256(desc.encode()).hexdigest()[:16]

    def classify(self, x):
        import torch
        points = x.detach().to("cpu", torch.float64).reshape(-1, 2) * self.scale
        log_p = self.mixture.log_posterior(points.numpy())
        return torch.from_numpy(log_p), points

    def scores_from(self, log_p, feats, fid: bool = True):
        from harness.metrics import Scores, frechet_distance
        points = feats.numpy() if hasattr(feats, "numpy") else np.asarray(feats)
        s = self.mixture.scores(points)
        half = len(points) // 2
        halves = [self.mixture.scores(points[i * half:(i + 1) * half])["Iprime"] if half else math.nan
                  for i in (0, 1)]
        ok = np.isfinite(points).all(1)
        fd = (frechet_distance(points[ok].mean(0), np.cov(points[ok], rowvar=False), self.mu, self.cov)
              if fid and ok.sum() > 2 else math.nan)
        return Scores(Iprime=s["Iprime"], inceptionScore=s["inceptionScore"], fid=fd, classHist=s["classHist"],
                      IprimeSetA=halves[0], IprimeSetB=halves[1],
                      extra={k: s[k] for k in SCORE_COLUMNS})

    def score(self, x, fid: bool = True):
        return self.scores_from(*self.classify(x), fid=fid)

    def real_iprime(self, n: int) -> float:
        """I' of n samples of the mixture itself (seeded): the anchor of the I' scale."""
        return real_scores(self.mixture, n)["Iprime"]


def mixture_dataset(name: str, title: str, mixture: Mixture):
    """A harness dataset (harness.datasets.base.Dataset) of a mixture. The models' samples live in
    [-1, 1] (G ends in tanh): the data is divided by `scale`, 1.25 x the largest coordinate of a
    mean, so every mode lies well inside tanh's range."""
    from harness.datasets.base import Dataset

    scale = 1.25 * float(np.abs(mixture.means).max())

    class MixtureDataset(Dataset):
        dim = 2
        score_columns = SCORE_COLUMNS
        report_metrics = ("modesCaptured", "highQualityFrac")
        primary_measure = "modesCaptured"   # chance-proof (harness/datasets/_mixture.py); I' is fooled here
        # modes are counted whole (a rise must be one at least), and a generator closing in on its
        # first modes raises its high-quality share (by half a point at least) before its mode count moves
        convergence_measures = {"modesCaptured": 0.5, "highQualityFrac": 0.005}
        report_targets = {"modesCaptured": float(mixture.n_modes)}  # every mode captured
        picture_samples = PICTURE_SAMPLES
        score_samples = SCORED_SAMPLES
        score_cost = 0.0   # an exact posterior over a few Gaussians: negligible beside a ConvNet (docs/benchmarks.md)
        iprime = ("E_x KL(p(y|x) || p(y)) with the exact posterior p(mode | x): the mutual information "
                  f"between a sample and its mode, 0 .. ln {mixture.n_modes}")

        def __init__(self):
            self.name, self.title, self.mixture, self.scale = name, title, mixture, scale

        def training_set(self, data_dir, n, device):
            import torch
            return torch.from_numpy(mixture.sample(n, TRAIN_SEED) / scale).to(device)

        def scorer(self, data_dir, classifier, device):
            return MixtureScorer(mixture, scale)

        def real_samples(self, n, seed, data_dir=None):
            import torch
            return torch.from_numpy(mixture.sample(n, seed) / scale)

        def chance_references(self, n, seed, data_dir=None):
            """The mixture's structureless references (Mixture.chance_references) in [-1, 1], the
            Gaussian's tails clipped to tanh's range, as a generator's would be."""
            import torch
            return {ref: torch.from_numpy(x / scale).clamp(-1, 1)
                    for ref, x in mixture.chance_references(n, seed).items()}

        def samples_from_array(self, x):
            """N x 2 points in the models' [-1, 1] (as G, real_samples and chance_references give
            them); values beyond it are refused, with the factor to divide the mixture's units by."""
            import torch
            if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
                raise ValueError(f"shape {x.shape} is not N x 2", f"save the points of the {name} as an N x 2 array")
            finite = x[np.isfinite(x).all(1)]
            if len(finite) and np.abs(finite).max() > 1:
                raise ValueError(f"values span [{finite.min():g}, {finite.max():g}], beyond the models' [-1, 1] "
                                 f"(points in the {name}'s own units?)", f"divide them by {scale:g}")
            return torch.from_numpy(x), f"points in the models' [-1, 1] (the {name}'s own units / {scale:g})"

        def save_picture(self, samples, path) -> None:
            save_scatter(mixture, samples.detach().float().cpu().numpy() * scale, path)

    return MixtureDataset()


def save_scatter(mixture: Mixture, points: np.ndarray, path) -> None:
    """A run's samples as a 256 x 256 scatter over the mixture's modes (grey), atomically."""
    import os
    from pathlib import Path

    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    fig = Figure(figsize=(2.56, 2.56), dpi=100)
    FigureCanvasAgg(fig)
    ax = fig.add_axes((0, 0, 1, 1))
    lim = 1.25 * float(np.abs(mixture.means).max())
    ax.scatter(mixture.means[:, 0], mixture.means[:, 1], s=60, c="#bbbbbb", marker="o", linewidths=0)
    ax.scatter(points[:, 0], points[:, 1], s=3, c="#0072b2", linewidths=0)
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), xticks=[], yticks=[], aspect="equal")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}.png")
    fig.savefig(tmp, format="png")
    os.replace(tmp, path)
