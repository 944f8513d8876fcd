"""Score an array of samples: `python -m harness.score SAMPLES.npy [--dataset mnist|ring8|grid25]
[--data-dir DIR] [--classifier PATH]`.

MNIST (the default): N x 28 x 28 or N x 32 x 32 images (a channel axis of 1 is allowed), with
values in [-1, 1], in [0, 1] or in 0..255: the range is detected and said. A 2D mixture: N x 2
points in the mixture's own units. Prints one JSON object: I', the inception score, the Frechet
distance, the class histogram, and the dataset's own measures (a mixture's modesCaptured,
highQualityFrac, modeKL). Bad input: one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from harness import datasets
from harness.datasets import Dataset
from harness.errors import HarnessError, report


class InputError(HarnessError):
    """The samples file cannot be scored: the file, what is wrong with it, and the fix."""


def load_samples(path: Path, dataset: Dataset) -> tuple[torch.Tensor, str]:
    """The file's samples as the dataset's scorer takes them, and how their values were read."""
    if not Path(path).is_file():
        raise InputError(str(path), "no such file", "check the path")
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(str(path), f"cannot be read as a .npy array ({e})", "save it with numpy.save") from None
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(str(path), f"dtype {x.dtype} is not a real number type", "save floats or uint8")
    try:
        return dataset.samples_from_array(x.astype(np.float32))
    except ValueError as e:
        why, fix = e.args
        raise InputError(str(path), why, fix) from None


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.score", description=__doc__.split("\n\n")[0])
    p.add_argument("samples", type=Path, help="a .npy array of samples")
    p.add_argument("--dataset", default=datasets.DEFAULT, choices=datasets.names(),
                   help=f"what the samples are of (default {datasets.DEFAULT})")
    p.add_argument("--data-dir", help="MNIST folder, for the test set's features (FID)")
    p.add_argument("--classifier", help="ConvNet weights (default: the committed ones)")
    p.add_argument("--no-fid", action="store_true", help="skip the Frechet distance (no MNIST needed)")
    args = p.parse_args(argv)
    try:
        dataset = datasets.get(args.dataset)
        images, value_range = load_samples(args.samples, dataset)
        scores = dataset.scorer(args.data_dir, args.classifier, "cpu").score(images, fid=not args.no_fid)
    except HarnessError as e:  # InputError, DataError, ClassifierError
        return report(e)
    print(json.dumps({"samples": str(args.samples), "dataset": dataset.name, "n": len(images),
                      "valueRange": value_range,
                      **scores.to_dict()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
