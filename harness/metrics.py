"""Scores of generated MNIST samples, all from the pretrained ConvNet in `classifiers/`.

- I'  : the paper's modified inception score (SPEC), the study's main score.
- IS  : the usual inception score (Salimans et al. 2016), for reference.
- FID : Frechet distance between the ConvNet's penultimate features of the samples and of
        the MNIST test set.
- classHist : how many samples the ConvNet puts in each class (mode coverage).
- IprimeSetA, IprimeSetB : I' of the first and the second half of the same samples, two
        disjoint sample sets of N // 2 each. Their difference measures how much I' moves with
        the sample set alone (the report's sampling spread, beside the spread over seeds).
"""
from __future__ import annotations

import io
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from classifiers.convnet import DEFAULT_WEIGHTS, load_classifier, sha256_file
from harness.atomic import write_atomic
from harness.data import default_cache_dir, load_mnist, to_tensor32
from harness.strict_json import dumps


def modified_inception_score(log_p_y_given_x: torch.Tensor) -> float:
    # I' = E_x KL( p(y) || p(y|x) ),  p(y) = E_x p(y|x)   (SPEC; no exp, KL swapped)
    log_p_y = torch.logsumexp(log_p_y_given_x, 0) - np.log(len(log_p_y_given_x))
    kl = (log_p_y.exp() * (log_p_y - log_p_y_given_x)).sum(1)
    return kl.mean().item()


def inception_score(log_p_y_given_x: torch.Tensor) -> float:
    # IS = exp( E_x KL( p(y|x) || p(y) ) )   (Salimans et al. 2016)
    log_p_y = torch.logsumexp(log_p_y_given_x, 0) - np.log(len(log_p_y_given_x))
    kl = (log_p_y_given_x.exp() * (log_p_y_given_x - log_p_y)).sum(1)
    return kl.mean().exp().item()


def frechet_distance(mu1: np.ndarray, cov1: np.ndarray, mu2: np.ndarray, cov2: np.ndarray) -> float:
    # FD = |mu1 - mu2|^2 + Tr(C1 + C2 - 2 (C1 C2)^(1/2))   (Heusel et al. 2017)
    # Tr (C1 C2)^(1/2) = sum of sqrt(eigenvalues of S C1 S), S = C2^(1/2): C1 C2 = C1 S S has the
    # eigenvalues of S C1 S, which is symmetric PSD: two eigh instead of scipy's sqrtm, the same
    # value, and collapsed samples' near-singular covariances need no special care
    w, v = np.linalg.eigh(cov2)
    s = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    trace_sqrt = np.sqrt(np.clip(np.linalg.eigvalsh(s @ cov1 @ s), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(cov1) + np.trace(cov2) - 2 * trace_sqrt)


def feature_stats(features: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    f = features.double().cpu().numpy()
    return f.mean(0), np.cov(f, rowvar=False)


@dataclass
class Scores:
    Iprime: float
    inceptionScore: float
    fid: float
    classHist: list[int]
    IprimeSetA: float = math.nan   # I' of samples [0, N//2)
    IprimeSetB: float = math.nan   # I' of samples [N//2, 2 (N//2)): disjoint from set A
    # A dataset's own measures (a mixture's modesCaptured, ...): result columns of their own.
    extra: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Every score by its column name, the dataset's own ones included."""
        d = self.core()
        return {**d, **self.extra}

    def core(self) -> dict:
        """The scores every dataset gives (the dataset's own ones left out)."""
        d = asdict(self)
        d.pop("extra")
        return d

    @classmethod
    def missing(cls) -> Scores:
        """The scores of a run that has no samples to score (diverged, or failed)."""
        return cls(Iprime=math.nan, inceptionScore=math.nan, fid=math.nan, classHist=[],
                   IprimeSetA=math.nan, IprimeSetB=math.nan)


REAL_DRAWS = 10  # random draws of n real test images averaged for the I' anchor
REAL_SEED = 0


class Scorer:
    """Loads the ConvNet once (and the test set's feature statistics lazily); scores samples."""

    def __init__(self, classifier: str | Path | None = None, data_dir: str | Path | None = None,
                 device: str | torch.device = "cpu", batch_size: int = 256):
        self.model = load_classifier(classifier, device)
        self.weights_sha = sha256_file(classifier or DEFAULT_WEIGHTS)
        self.device = torch.device(device)
        self.data_dir = data_dir
        self.batch_size = batch_size
        self._test_stats: tuple[np.ndarray, np.ndarray] | None = None

    @torch.no_grad()
    def classify(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [N, 1024] or [N, 1, 32, 32] in [-1, 1] -> (log p(y|x) [N, 10], features)."""
        logps, feats = [], []
        for chunk in images.split(self.batch_size):
            f = self.model.features(chunk.to(self.device, torch.float32).reshape(-1, 1, 32, 32))
            logps.append(torch.log_softmax(self.model.head(f), 1).cpu())
            feats.append(f.cpu())
        return torch.cat(logps), torch.cat(feats)

    def test_stats(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and covariance of the MNIST test set's features (cached on disk per classifier)."""
        if self._test_stats is None:
            cache = default_cache_dir().parent / f"test_features_{self.weights_sha[:16]}.npz"
            if cache.exists():
                with np.load(cache) as f:
                    self._test_stats = (f["mu"], f["cov"])
            else:
                _, feats = self.classify(to_tensor32(load_mnist("test", self.data_dir).images))
                self._test_stats = feature_stats(feats)
                buf = io.BytesIO()
                np.savez(buf, mu=self._test_stats[0], cov=self._test_stats[1])
                write_atomic(cache, buf.getvalue())
        return self._test_stats

    def real_iprime_cache(self, n: int) -> Path:
        """Where real_iprime(n) is kept: one small JSON file per classifier and sample count."""
        return default_cache_dir().parent / f"real_iprime_{self.weights_sha[:16]}_{n}.json"

    def real_iprime(self, n: int) -> float:
        """I' of real data at a run's sample count n, the anchor of the I' scale: the mean I' of
        REAL_DRAWS random draws (seeded) of n MNIST test images without replacement (the whole
        test set once when n >= 10,000). Random draws, not the first n: the test set's two
        halves come from different writers and score differently (11.4 and 12.4 on 5,000 each).
        Cached on disk per classifier and n; MNIST is read only on a cache miss."""
        n = min(int(n), 10000)
        cache = self.real_iprime_cache(n)
        try:
            return float(json.loads(cache.read_text())["Iprime"])
        except (OSError, ValueError, KeyError):
            pass
        log_p, _ = self.classify(to_tensor32(load_mnist("test", self.data_dir).images))
        rng = np.random.default_rng(REAL_SEED)
        draws = [log_p] if n >= len(log_p) else [
            log_p[torch.from_numpy(rng.choice(len(log_p), n, replace=False))] for _ in range(REAL_DRAWS)]
        values = [modified_inception_score(d) for d in draws]
        value = float(np.mean(values))
        write_atomic(cache, dumps({
            "Iprime": value, "sdOverDraws": float(np.std(values, ddof=1)) if len(values) > 1 else 0.0,
            "n": n, "draws": len(values), "seed": REAL_SEED, "classifierSha256": self.weights_sha,
            "images": "MNIST test set"}).encode())
        return value

    def score(self, images: torch.Tensor, fid: bool = True) -> Scores:
        return self.scores_from(*self.classify(images), fid=fid)

    def scores_from(self, log_p: torch.Tensor, feats: torch.Tensor, fid: bool = True) -> Scores:
        """The scores of samples already classified: (log p(y|x), features) from `classify`.

        The samples are i.i.d. draws of the generator, so their two halves are two independent
        sample sets of N // 2: IprimeSetA and IprimeSetB (NaN below 2 samples).
        """
        half = len(log_p) // 2
        set_a, set_b = (modified_inception_score(log_p[i * half:(i + 1) * half]) if half else math.nan
                        for i in (0, 1))
        return Scores(
            Iprime=modified_inception_score(log_p),
            inceptionScore=inception_score(log_p),
            fid=frechet_distance(*feature_stats(feats), *self.test_stats()) if fid else math.nan,
            classHist=torch.bincount(log_p.argmax(1), minlength=10).tolist(),
            IprimeSetA=set_a, IprimeSetB=set_b,
        )
