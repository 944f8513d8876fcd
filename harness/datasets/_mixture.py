"""2D Gaussian mixtures, scored exactly: the ring of 8 and the grid of 25 (ring8.py, grid25.py).

The classic GAN mode-collapse benchmarks, beside MNIST: the data is a mixture of M equally
weighted isotropic Gaussians in the plane, so the class posterior p(mode | x) that MNIST gets
from a trained ConvNet is known here in closed form, and every score is exact. A run trains in
seconds on a CPU, so a Table 1-shaped grid over it is a study at full training that a CPU can
finish. This file is the mixture, in its own units; _mixture_dataset.py makes it a dataset of the
harness (the models' [-1, 1], the scorer, the picture).

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
- modesCaptured   : modes that are the nearest mode of at least capture_threshold(N, M)
                    high-quality samples, CAPTURE_SHARE of their fair share: a count no
                    structureless cloud reaches (see CAPTURE_SHARE).
- modesCapturedAny: the published rule, at least MIN_HQ_PER_MODE = 1 high-quality sample (VEEGAN;
                    PacGAN's code), to compare with their tables. Samples with no structure pass
                    it: uniform on the ring's circle captures all 8 modes.
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

REAL_HQ_FRAC = 1.0 - math.exp(-HQ_STDS ** 2 / 2)  # P(Rayleigh(1) < 3): the true mixture's value

# The published rule (modesCapturedAny): a mode is captured when it is the nearest mode of at
# least one high-quality sample. VEEGAN: "the number of mixture components whose mean is nearest
# to at least one high quality sample" (confirmed, as above). PacGAN's code: modes with a nonzero
# count of high-quality samples (len(nonzero(detail_of_coverage))), i.e. also at least one.
MIN_HQ_PER_MODE = 1

# Our rule (modesCaptured): a mode is captured when it holds at least CAPTURE_SHARE of its fair
# share of high-quality samples, the REAL_HQ_FRAC x N / M the true mixture puts there: 62 of
# N = 2,500 on the ring of 8, 20 on the grid of 25 (capture_threshold). Why: one sample is within
# reach of a cloud with no structure at all. Per mode, out of 2,500 samples (N / M x the
# reference's highQualityFrac): uniform on the ring's circle puts 23.8 high-quality samples at
# each mode (7.7% of the fair share, and all 8 modes pass the published rule in every draw);
# uniform on the bounding box 1.7 (ring) and 2.6 (grid); a Gaussian with the data's mean and
# covariance 0.8 (ring) and at most 3.5 (the grid's centre). A fifth is 2.6 times the circle's
# mean, 7.8 Poisson standard deviations above it, so none of these references captures a mode
# (tests/datasets/test_chance.py: 0 in 200 draws each), while a generator that gives a mode a
# fifth of the weight the data gives it is credited with it: the true mixture captures 8 of 8
# and 25 of 25, samples collapsed onto half the modes 4 and 12. Issue 23 has the numbers that
# made the published rule unfit to rank runs (a uniform square scored 5.3 modes of 8).
CAPTURE_SHARE = 0.2

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

REAL_SEED = 0


def capture_threshold(n: int, n_modes: int) -> int:
    """High-quality samples a mode needs, out of n samples of M modes, to count as captured."""
    # CAPTURE_SHARE of the fair share REAL_HQ_FRAC x n / M, rounded up; never under the published 1
    return max(MIN_HQ_PER_MODE, math.ceil(CAPTURE_SHARE * REAL_HQ_FRAC * n / n_modes))


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

    @property
    def mean(self) -> np.ndarray:
        """The mixture's exact mean [2]: the modes' mean (equal weights)."""
        return self.means.mean(0)

    @property
    def covariance(self) -> np.ndarray:
        """The mixture's exact covariance [2, 2]: the modes' spread plus each mode's own."""
        # law of total covariance: Cov[E(x | k)] + E[Cov(x | k)] = cov(means) + std^2 I
        return np.cov(self.means, rowvar=False, bias=True) + self.std ** 2 * np.eye(2)

    def chance_references(self, n: int, seed: int) -> dict[str, np.ndarray]:
        """Samples with no structure, n each [n, 2] float32 (seeded), in the mixture's units: the
        floors a trained generator must beat. uniformBox: uniform on the data's bounding box (every
        mode's 3-std disc inside); gaussian: one Gaussian with the mixture's exact mean and
        covariance; uniformCircle, when the modes lie on a circle (the ring): uniform on it."""
        rng = np.random.default_rng(seed)
        reach = HQ_STDS * self.std
        refs = {"uniformBox": rng.uniform(self.means.min(0) - reach, self.means.max(0) + reach, (int(n), 2)),
                "gaussian": rng.multivariate_normal(self.mean, self.covariance, int(n))}
        radii = np.hypot(*(self.means - self.mean).T)
        if len(radii) > 2 and radii.min() > 0 and np.allclose(radii, radii[0]):
            angle = rng.uniform(0, 2 * np.pi, int(n))
            refs["uniformCircle"] = self.mean + radii[0] * np.stack([np.cos(angle), np.sin(angle)], 1)
        return {name: x.astype(np.float32) for name, x in refs.items()}

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
    def scores(self, x: np.ndarray) -> dict:
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
            "modesCaptured": int((hq_hist >= capture_threshold(n, m)).sum()),
            "modesCapturedAny": int((hq_hist >= MIN_HQ_PER_MODE).sum()),
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
