"""MNIST, as the EBGAN paper uses it: 28 x 28 digits zero-padded to 32 x 32 (1024 values in
[-1, 1]), the first `trainImages` of the training set, scored by the pretrained 3-layer ConvNet
of classifiers/ (I', the inception score, FID against the test set's features). The IDX files
come from harness.data; the scorer is harness.metrics.Scorer."""
from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from classifiers.convnet import load_classifier
from harness.data import gan_training_set, load_mnist, resolve_data_dir, to_tensor32
from harness.datasets.base import Dataset
from harness.metrics import Scorer


class MNIST(Dataset):
    name, title, dim = "mnist", "MNIST", 32 * 32
    picture_samples = 64
    iprime = "E_x KL(p(y) || p(y|x)), p(y|x) from the pretrained ConvNet (the paper's modified inception score)"

    def prepare(self, data_dir, classifier):
        """The four IDX files (downloaded into the cache if they are not found) and the ConvNet."""
        resolve_data_dir(data_dir)
        load_classifier(classifier)

    def training_set(self, data_dir, n, device):
        return gan_training_set(data_dir, n, device)

    def scorer(self, data_dir, classifier, device):
        return Scorer(classifier, data_dir, device)

    def real_samples(self, n, seed, data_dir=None):
        images = to_tensor32(load_mnist("test", data_dir).images).flatten(1)
        order = torch.from_numpy(np.random.default_rng(seed).permutation(len(images))[:n])
        return images[order]

    def chance_references(self, n, seed, data_dir=None):
        """Images with no digit in them, [n, 1024] in [-1, 1] each: uniformNoise, every pixel uniform;
        gaussianNoise, each pixel independent with the training set's mean and std of that pixel
        (clipped to [-1, 1]); meanImage, the training set's mean image, n times."""
        mean_image, std = _pixel_statistics(str(data_dir) if data_dir is not None else None)
        rng = np.random.default_rng(seed)
        noise = torch.from_numpy(rng.standard_normal((n, self.dim), dtype=np.float32))
        return {"uniformNoise": torch.from_numpy(rng.uniform(-1, 1, (n, self.dim)).astype(np.float32)),
                "gaussianNoise": (mean_image + std * noise).clamp(-1, 1),
                "meanImage": mean_image.expand(n, -1).clone()}

    def samples_from_array(self, x: np.ndarray) -> tuple[torch.Tensor, str]:
        """N x 28 x 28 or N x 32 x 32 images (a channel axis of 1 allowed) in [-1, 1], [0, 1] or
        0..255 (the range is detected, and said) -> [N, 1, 32, 32] in [-1, 1], 28 x 28 zero-padded."""
        if x.ndim == 4 and x.shape[1] == 1:
            x = x[:, 0]
        if x.ndim != 3 or x.shape[1:] not in ((28, 28), (32, 32)) or len(x) == 0:
            raise ValueError(f"shape {x.shape} is not N x 28 x 28 or N x 32 x 32", "reshape the samples")
        if not np.isfinite(x).all():
            raise ValueError(f"{int((~np.isfinite(x)).sum())} values are NaN or infinite", "drop those samples")
        lo, hi = float(x.min()), float(x.max())
        if lo >= -1 and hi <= 1 and lo < 0:
            value_range = "[-1, 1]"
        elif lo >= 0 and hi <= 1:
            value_range, x = "[0, 1]", x * 2 - 1
        elif lo >= 0 and hi <= 255:
            value_range, x = "0..255", x / 127.5 - 1
        else:
            raise ValueError(f"values span [{lo:g}, {hi:g}], neither [-1, 1], [0, 1] nor 0..255", "rescale them")
        t = torch.from_numpy(x)
        if t.shape[1] == 28:
            t = torch.nn.functional.pad(t, (2, 2, 2, 2), value=-1.0)  # zero padding, as for training
        return t.unsqueeze(1), value_range

    def save_picture(self, samples: torch.Tensor, path: Path) -> None:
        """64 images [64, 1024] in [-1, 1] -> an 8 x 8 grayscale PNG, [-1, 1] mapped linearly to
        0..255 (PIL, 8-bit grayscale), atomically."""
        grid = samples.reshape(8, 8, 32, 32).permute(0, 2, 1, 3).reshape(256, 256).float().cpu().numpy()
        pixels = ((grid + 1) * 127.5).round().clip(0, 255).astype(np.uint8)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}.png")
        Image.fromarray(pixels).save(tmp, format="png")
        os.replace(tmp, path)


DATASET = MNIST()


@functools.lru_cache(maxsize=2)
def _pixel_statistics(data_dir: str | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The training set's mean image and per-pixel std, [1, 1024] each in the models' scale
    (mean padded with -1, std with 0), computed once per folder: every draw of the chance
    references uses them."""
    train = load_mnist("train", data_dir).images                       # uint8 [60000, 28, 28]
    mean = train.mean(0, dtype=np.float64)
    # per-pixel variance E[x^2] - E[x]^2, without a float copy of the training set
    var = np.einsum("nij,nij->ij", train, train, dtype=np.float64) / len(train) - mean ** 2
    mean_image = to_tensor32(mean[None]).flatten(1)                    # [1, 1024], padding -1
    std = to_tensor32(np.sqrt(var.clip(0))[None]).flatten(1) + 1       # std / 127.5, padding 0
    return mean_image, std
