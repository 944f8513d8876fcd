"""Score an array of images: `python -m harness.score SAMPLES.npy [--data-dir DIR] [--classifier PATH]`.

SAMPLES.npy holds N x 28 x 28 or N x 32 x 32 images (a channel axis of 1 is allowed), with
values in [-1, 1], in [0, 1] or in 0..255: the range is detected and said. Prints one JSON
object: I', the inception score, the Frechet distance to the MNIST test set and the class
histogram. Bad input: one line on stderr, exit code 2.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

from classifiers.convnet import ClassifierError
from harness.data import DataError


class InputError(Exception):
    pass


def load_images(path: Path) -> tuple[torch.Tensor, str]:
    """The array as float32 [N, 1, 32, 32] in [-1, 1], and the value range it was found in."""
    try:
        x = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise InputError(f"{path}: cannot be read as a .npy array ({e}); save it with numpy.save") from None
    if x.ndim == 4 and x.shape[1] == 1:
        x = x[:, 0]
    if x.ndim != 3 or x.shape[1:] not in ((28, 28), (32, 32)) or len(x) == 0:
        raise InputError(f"{path}: shape {x.shape} is not N x 28 x 28 or N x 32 x 32; reshape the samples")
    if not np.issubdtype(x.dtype, np.number) or np.issubdtype(x.dtype, np.complexfloating):
        raise InputError(f"{path}: dtype {x.dtype} is not a real number type; save floats or uint8")
    x = x.astype(np.float32)
    if not np.isfinite(x).all():
        raise InputError(f"{path}: {int((~np.isfinite(x)).sum())} values are NaN or infinite; drop those samples")
    lo, hi = float(x.min()), float(x.max())
    if lo >= -1 and hi <= 1 and lo < 0:
        value_range = "[-1, 1]"
    elif lo >= 0 and hi <= 1:
        value_range, x = "[0, 1]", x * 2 - 1
    elif lo >= 0 and hi <= 255:
        value_range, x = "0..255", x / 127.5 - 1
    else:
        raise InputError(f"{path}: values span [{lo:g}, {hi:g}], neither [-1, 1], [0, 1] nor 0..255; rescale them")
    t = torch.from_numpy(x)
    if t.shape[1] == 28:
        t = torch.nn.functional.pad(t, (2, 2, 2, 2), value=-1.0)  # zero padding, as for training
    return t.unsqueeze(1), value_range


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.score", description=__doc__.split("\n\n")[0])
    p.add_argument("samples", type=Path, help="a .npy array of images")
    p.add_argument("--data-dir", help="MNIST folder, for the test set's features (FID)")
    p.add_argument("--classifier", help="ConvNet weights (default: the committed ones)")
    p.add_argument("--no-fid", action="store_true", help="skip the Frechet distance (no MNIST needed)")
    args = p.parse_args(argv)
    try:
        images, value_range = load_images(args.samples)
        from harness.metrics import Scorer
        scores = Scorer(args.classifier, args.data_dir).score(images, fid=not args.no_fid)
    except (InputError, DataError, ClassifierError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"samples": str(args.samples), "n": len(images), "valueRange": value_range,
                      **scores.to_dict()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
