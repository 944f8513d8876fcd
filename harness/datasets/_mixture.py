"""2D Gaussian mixtures, scored exactly: the ring of 8 and the grid of 25 (ring8.py, grid25.py).

The classic GAN mode-collapse benchmarks, beside MNIST: the data is a mixture of M equally
weighted isotropic Gaussians in the plane, so the class posterior p(mode | x) that MNIST gets
from a trained ConvNet is known here in closed form, and every score is exact. A run trains in
seconds on a CPU, so a Table 1-shaped grid over it is a study at full training that a CPU can
finish.

Columns of `Mixture.scores` (result columns):

- Iprime          : I' with the exact posterior as the classifier, E_x KL( p(y|x) || p(y) ): the
                    mutual information between a sample and its mode, ln M for perfect samples,
                    0 for samples at one mode, ln k for k modes covered evenly. Why not MNIST's
                    formula, E_x KL( p(y) || p(y|x) ) (SPEC)? With an exact posterior the swapped
                    KL weighs log p(y|x) of far-away modes, -(distance / std)^2 / 2 for a
                    Gaussian: it measures the mixture's geometry (thousands on both benchmarks),
                    not the samples. A softmax classifier never gives such posteriors, which is
                    why the swapped form is bounded on MNIST. So I' has the same reading on both
                    datasets (higher: more modes, more confidently), not the same formula, and
                    its values compare within a dataset only, as SPEC says of MNIST's. With an
                    exact posterior every point has a confident nearest mode, so I' rewards
                    spreading over the modes' regions, even as a diffuse cloud: modesCaptured and
                    highQualityFrac say whether the samples sit on the modes.
- inceptionScore  : exp(Iprime) here (Salimans et al. 2016), as on MNIST.
- modesCaptured   : modes that are the nearest mode of at least MIN_HQ_PER_MODE high-quality
                    samples (VEEGAN; PacGAN's code).
- highQualityFrac : fraction of all samples within HQ_STDS standard deviations of their nearest
                    mode (VEEGAN; PacGAN).
- modeKL          : KL( histogram of the high-quality samples over modes || uniform ).
- classHist       : samples per nearest mode (finite samples only), as MNIST's class histogram.
- nonFinite       : samples with a NaN or infinite coordinate (a diverged generator).

A note on the "3 standard deviations" rule in 2D: the distance of a sample to its own mode is
Rayleigh-distributed, P(|x - mu| < 3 std) = 1 - exp(-9/2) = 0.9889, not the 1D 0.9973. So
samples of the true mixture have highQualityFrac about 0.989 (REAL_HQ_FRAC), not 1.

Every score is invariant to scaling means and std together (they depend on distances / std
only), so the ring of radius 2 with std 0.02 (Metz et al.) and that of radius 1 with std 0.01
(PacGAN's code) are the same benchmark.
"""
from __future__ import annotations

import math

import numpy as np

# -- Constants and their sources -------------------------------------------------------------
# Ring of 8. Metz, Poole, Pfau, Sohl-Dickstein 2016, "Unrolled Generative Adversarial
# Networks" (arXiv 1611.02163), Appendix A: 8 Gaussians, means evenly on a circle of radius 2,
# std 0.02. NOT confirmed here from the paper's text (quoted from memory). What was confirmed:
# the authors' demo notebook (github.com/poolio/unrolled_gan, "Unrolled GAN demo.ipynb") uses
# radius 1.0, std 0.01 and says its hyperparameters are not the paper's; it also places the
# means with np.linspace(0, 2 pi, 8), which makes the first and last mode coincide (7 distinct
# modes): do not copy it. PacGAN's released code for its 2D-ring (github.com/fjxmlzn/PacGAN,
# synthetic_data_experiments/2DRing_GAN&PacGAN/config.py) also uses radius 1, std 0.01, 8
# modes at angles 2 pi k / 8. Same ratio radius / std = 100: the same benchmark for every score.
RING8_MODES = 8
RING8_RADIUS = 2.0
RING8_STD = 0.02

# Grid of 25. Means (-4, -2, 0, 2, 4)^2, std 0.05: confirmed in PacGAN's released code
# (synthetic_data_experiments/2DGrid_GAN&PacGAN/config.py: means itertools.product(range(-4, 5,
# 2), range(-4, 5, 2)), variances 0.05 ** 2 * I). Lin, Khetan, Fanti, Oh 2018, "PacGAN" (arXiv
# 1712.04086) follows VEEGAN's setup; VEEGAN's own grid std is not confirmed here.
GRID25_VALUES = (-4.0, -2.0, 0.0, 2.0, 4.0)
GRID25_STD = 0.05

# High quality: within 3 std of the nearest mode. VEEGAN (Srivastava, Valkov, Russell, Gutmann,
# Sutton 2017, arXiv 1705.07761), confirmed from the authors' page (akashgit/VEEGAN index.md,
# the paper's text): "count a sample as high quality, if it is within three standard deviations
# of the nearest mode, for the 2D dataset". PacGAN's code: Mahalanobis distance to the nearest
# mode < dis_thre = 3 (pacgan/extensions.py, MetricLogger), the same for an isotropic mode.
HQ_STDS = 3.0

# A mode is captured when it is the nearest mode of at least one high-quality sample. VEEGAN:
# "the number of mixture components whose mean is nearest to at least one high quality sample"
# (confirmed, as above). PacGAN's code: modes with a nonzero count of high-quality samples
# (len(nonzero(detail_of_coverage))), i.e. also at least one.
MIN_HQ_PER_MODE = 1

# Samples scored per model: VEEGAN generates 2500 samples from each trained model and averages
# over five runs (confirmed, as above). PacGAN's code scores the 2500 points it draws
# (num_log_figure_sample: 2500) and runs 10 repeats per setting (config.py "run": range(0, 10)).
SCORED_SAMPLES = 2500

# modeKL: KL( p_hat || uniform ), p_hat the high-quality samples' histogram over modes, the
# generated distribution first, hence "reverse" KL. PacGAN's Table 1 reports a "reverse KL" for
# the 2D benchmarks; its exact definition (which samples, which direction) is quoted from
# memory and NOT confirmed here. PacGAN's released code logs instead the entropy H(p_hat) of
# that same high-quality histogram ("entropy of coverage") and a JSD to uniform; our modeKL is
# exactly ln M - H(p_hat). It is finite (at most ln M, all at one mode; 0, uniform); it is NaN
# when no sample is of high quality (an empty histogram has no distribution): modesCaptured = 0
# and highQualityFrac = 0 say that case.

REAL_HQ_FRAC = 1.0 - math.exp(-HQ_STDS ** 2 / 2)  # P(Rayleigh(1) < 3): the true mixture's value
REAL_SEED = 0


class Mixture:
    """An equal-weight mixture of M isotropic 2D Gaussians N(means[k], std^2 I), with its exact
    posterior and the benchmark's scores. `ring8()` and `grid25()` build the two benchmarks."""

    def __init__(self, name: str, means: np.ndarray, std: float):
        means = np.array(means, dtype=np.float64)
        if means.ndim != 2 or means.shape[1] != 2 or len(means) == 0 or not np.isfinite(means).all():
            raise ValueError(f"means must be a finite [M, 2] array, got shape {means.shape}")
        if not (math.isfinite(std) and std > 0):
            raise ValueError(f"std must be a positive number, got {std}")
        means.setflags(write=False)
        self.name = name
        self.means = means
        self.std = float(std)

    def __repr__(self) -> str:
        return f"Mixture({self.name!r}, {len(self.means)} modes, std={self.std:g})"

    @property
    def n_modes(self) -> int:
        return len(self.means)

    def sample(self, n: int, seed: int) -> np.ndarray:
        """n samples [n, 2] float32 of the mixture: each mode drawn uniformly, then Gaussian noise.
        The same (n, seed) always gives the same array (numpy's default Generator)."""
        rng = np.random.default_rng(seed)
        modes = rng.integers(0, self.n_modes, size=int(n))
        x = self.means[modes] + self.std * rng.standard_normal((int(n), 2))
        return x.astype(np.float32)

    # -- posterior -------------------------------------------------------------------------------
    def _as_samples(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != 2:
            raise ValueError(f"samples must be an [n, 2] array, got shape {x.shape}")
        return x

    def _log_posterior(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(log p(mode | x) [n, M], finite [n]); rows that are not finite hold NaN."""
        # Bayes with equal weights and one isotropic std: log p(k|x) = l_k - logsumexp_j l_j,
        # l_k = (x . mu_k - |mu_k|^2 / 2) / std^2 (the |x|^2 term of -|x - mu_k|^2 / 2 std^2
        # is the same for every k and cancels: no overflow of |x|^2 for far samples).
        with np.errstate(over="ignore", invalid="ignore"):
            logits = (x @ self.means.T - 0.5 * (self.means ** 2).sum(1)) / self.std ** 2
            finite = np.isfinite(x).all(1) & np.isfinite(logits).all(1)
            logits[~finite] = 0.0
            top = logits.max(1, keepdims=True)
            # logsumexp, shifted by the row maximum for stability
            log_z = top + np.log(np.exp(logits - top).sum(1, keepdims=True))
            log_p = logits - log_z
        log_p[~finite] = np.nan
        return log_p, finite

    def log_posterior(self, x: np.ndarray) -> np.ndarray:
        """log p(mode | x) [n, M] (float64), exact. A sample with a NaN or infinite coordinate
        (or so large, |x| > ~1e300, that the logits overflow) has no posterior: a row of NaN."""
        return self._log_posterior(self._as_samples(x))[0]

    def posterior(self, x: np.ndarray) -> np.ndarray:
        """p(mode | x) [n, M] (float64): rows sum to 1; NaN rows for non-finite samples. Defined
        everywhere else, far from every mode too (there the nearest modes take the mass)."""
        return np.exp(self.log_posterior(x))

    # -- scores ----------------------------------------------------------------------------------
    def scores(self, x: np.ndarray, min_count: int = MIN_HQ_PER_MODE) -> dict:
        """The benchmark's scores of samples x [n, 2] (see the module docstring for each column).

        Non-finite samples (NaN / inf, a diverged generator) do not raise: they have no nearest
        mode, are never of high quality (they count in highQualityFrac's denominator, which is
        all n samples), and are left out of Iprime, inceptionScore and classHist, which score
        the finite samples only (NaN when there are none); `nonFinite` counts them. A sample
        equally near several modes (the ring's centre) goes to the lowest-numbered one.
        """
        x = self._as_samples(x)
        n = len(x)
        if n == 0:
            raise ValueError("no samples to score: x has 0 rows")
        m = self.n_modes
        log_p, finite = self._log_posterior(x)
        nearest = np.full(n, -1)
        nearest[finite] = log_p[finite].argmax(1)  # the most probable mode = the nearest mean
        dist = np.full(n, np.inf)
        d = x[finite] - self.means[nearest[finite]]
        dist[finite] = np.hypot(d[:, 0], d[:, 1])  # hypot: no overflow for far samples
        high_quality = dist < HQ_STDS * self.std  # the 3-std rule (VEEGAN; PacGAN code's strict <)
        hq_hist = np.bincount(nearest[high_quality], minlength=m)
        n_hq = int(hq_hist.sum())
        info = mutual_information(log_p[finite])
        return {
            "Iprime": info,
            "inceptionScore": math.exp(info) if math.isfinite(info) else math.nan,
            "modesCaptured": int((hq_hist >= min_count).sum()),
            "highQualityFrac": n_hq / n,
            "modeKL": kl_to_uniform(hq_hist) if n_hq else math.nan,
            "classHist": np.bincount(nearest[finite], minlength=m).tolist(),
            "nonFinite": int(n - finite.sum()),
        }


def ring8() -> Mixture:
    """The ring of 8 (Metz et al. 2016): means at radius RING8_RADIUS, angles 2 pi k / 8."""
    angles = 2 * np.pi * np.arange(RING8_MODES) / RING8_MODES
    return Mixture("ring8", RING8_RADIUS * np.stack([np.cos(angles), np.sin(angles)], 1), RING8_STD)


def grid25() -> Mixture:
    """The grid of 25 (VEEGAN, PacGAN): means (-4, -2, 0, 2, 4)^2, std GRID25_STD."""
    values = np.array(GRID25_VALUES)
    gx, gy = np.meshgrid(values, values, indexing="ij")
    return Mixture("grid25", np.stack([gx.ravel(), gy.ravel()], 1), GRID25_STD)


MIXTURES = {"ring8": ring8, "grid25": grid25}


def real_scores(mixture: Mixture, n: int = SCORED_SAMPLES, seed: int = REAL_SEED) -> dict:
    """The scores of n samples of the mixture itself (seeded): the real-data anchor of each
    column, at the sample count the runs are scored with, as `Scorer.real_iprime` is for MNIST."""
    return mixture.scores(mixture.sample(n, seed))


# -- the formulas, on log posteriors [n, M] (numpy twins of harness/metrics.py) -----------------
def _log_marginal(log_p: np.ndarray) -> np.ndarray:
    # log p(y) = log (1/n) sum_x p(y|x), in log space (logsumexp over the samples)
    top = log_p.max(0)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):
        return top + np.log(np.exp(log_p - top).sum(0)) - math.log(len(log_p))


def modified_inception_score(log_p: np.ndarray) -> float:
    """MNIST's I' = E_x KL( p(y) || p(y|x) ), p(y) = E_x p(y|x), natural log (SPEC; the formula
    of harness.metrics.modified_inception_score); not the mixtures' I' (see the module
    docstring). NaN for no samples."""
    if len(log_p) == 0:
        return math.nan
    log_py = _log_marginal(log_p)
    py = np.exp(log_py)
    # KL(p(y) || p(y|x)) = sum_y p(y) (log p(y) - log p(y|x)); a term with p(y) = 0 is 0
    with np.errstate(invalid="ignore"):
        terms = np.where(py > 0, py * (log_py - log_p), 0.0)
    return float(terms.sum(1).mean())


def mutual_information(log_p: np.ndarray) -> float:
    """The mixtures' I' = E_x KL( p(y|x) || p(y) ), p(y) = E_x p(y|x), natural log: the mutual
    information between a sample and its mode, 0 .. ln M. NaN for no samples."""
    if len(log_p) == 0:
        return math.nan
    log_py = _log_marginal(log_p)
    p = np.exp(log_p)
    # KL(p(y|x) || p(y)) = sum_y p(y|x) (log p(y|x) - log p(y)); a term with p(y|x) = 0 is 0
    with np.errstate(invalid="ignore"):
        terms = np.where(p > 0, p * (log_p - log_py), 0.0)
    return float(terms.sum(1).mean())


def inception_score(log_p: np.ndarray) -> float:
    """IS = exp( E_x KL( p(y|x) || p(y) ) ) (Salimans et al. 2016; harness.metrics.inception_score).
    NaN for no samples."""
    info = mutual_information(log_p)
    return math.exp(info) if math.isfinite(info) else math.nan


def kl_to_uniform(counts: np.ndarray) -> float:
    """KL( counts / sum || uniform over len(counts) ) = sum_k p_k ln(p_k M) = ln M - H(p)."""
    counts = np.asarray(counts, dtype=np.float64)
    p = counts[counts > 0] / counts.sum()
    return float(max(0.0, (p * np.log(p * len(counts))).sum()))


# -- the mixtures as datasets of the harness (ring8.py, grid25.py) --------------------------------

TRAIN_SEED = 0       # the training set: the same draw for every run, as MNIST's first n images
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
        self.mu = means.mean(0)
        self.cov = np.cov(means, rowvar=False, bias=True) + mixture.std ** 2 * np.eye(2)
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
                      extra={k: s[k] for k in ("modesCaptured", "highQualityFrac", "modeKL")})

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
        score_columns = ("modesCaptured", "highQualityFrac", "modeKL")
        report_metrics = ("modesCaptured", "highQualityFrac")
        report_targets = {"modesCaptured": float(mixture.n_modes)}  # every mode captured
        picture_samples = PICTURE_SAMPLES
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

        def samples_from_array(self, x):
            import torch
            if x.ndim != 2 or x.shape[1] != 2 or len(x) == 0:
                raise ValueError(f"shape {x.shape} is not N x 2", f"save the points of the {name} as an N x 2 array")
            return torch.from_numpy(x / scale), f"points in the {name}'s own units"

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
