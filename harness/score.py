"""Score an array of samples: `python -m harness.score SAMPLES.npy [--dataset mnist|ring8|grid25]
[--data-dir DIR] [--classifier PATH]`; or the dataset's chance floors: `python -m harness.score
--chance --dataset NAME [--no-fid] [-n N] [--seed S]`.

MNIST (the default): N x 28 x 28 or N x 32 x 32 images (a channel axis of 1 is allowed), with
values in [-1, 1], in [0, 1] or in 0..255: the range is detected and said. A 2D mixture: N x 2
points in the models' [-1, 1], as a generator and `Dataset.real_samples` give them (the
mixture's own units divided by its scale, which a refusal of larger values names). Prints one
JSON object: I', the inception score, the Frechet distance, the class histogram, and the
dataset's own measures (a mixture's modesCaptured, modesCapturedAny, highQualityFrac, modeKL).
Bad input: one line on stderr, exit code 2.

`--chance` scores each of the dataset's structureless references (`Dataset.chance_references`:
uniform and Gaussian clouds, noise images, the mean image) with the dataset's own scorer, N
samples each (default: the dataset's usual score size), and prints one JSON object per line, each
with `reference` and the same measures: the floor a trained generator must beat.

The JSON is strict (harness.strict_json): a score with nothing to score is `null`, not `NaN`.
Samples with a NaN or infinite value (a diverged generator) are left out of the scores where the
dataset allows them (a mixture's; MNIST refuses them), and one line on stderr says how many.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

from harness import datasets
from harness.datasets import Dataset
from harness.errors import HarnessError, report
from harness.strict_json import dumps


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


def non_finite_note(samples: torch.Tensor) -> str | None:
    """One line saying how many samples hold a NaN or infinite value, or None if none does."""
    bad = int((~torch.isfinite(samples.reshape(len(samples), -1))).any(1).sum())
    if not bad:
        return None
    return (f"note: {bad} of {len(samples)} samples are NaN or infinite (a diverged generator?): the scores "
            "that need a sample's class leave them out, and a score with nothing left to score is null")


def chance_rows(dataset: Dataset, n: int, seed: int, data_dir, classifier, fid: bool) -> list[dict]:
    """One row per structureless reference of the dataset: its name and its scores at n samples."""
    scorer = dataset.scorer(data_dir, classifier, "cpu")
    return [{"reference": name, "dataset": dataset.name, "n": len(x), "seed": seed,
             **scorer.score(x, fid=fid).to_dict()}
            for name, x in dataset.chance_references(n, seed, data_dir).items()]


def score_file(path: Path, dataset: Dataset, data_dir, classifier, fid: bool) -> dict:
    """The file's scores, and how its values were read; a line on stderr if some are not finite."""
    images, value_range = load_samples(path, dataset)
    scores = dataset.scorer(data_dir, classifier, "cpu").score(images, fid=fid)
    note = non_finite_note(images)
    if note:
        print(note, file=sys.stderr, flush=True)
    return {"samples": str(path), "dataset": dataset.name, "n": len(images), "valueRange": value_range,
            **scores.to_dict()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m harness.score", description=__doc__.split("\n\n")[0])
    p.add_argument("samples", type=Path, nargs="?", help="a .npy array of samples (not with --chance)")
    p.add_argument("--dataset", default=datasets.DEFAULT, choices=datasets.names(),
                   help=f"what the samples are of (default {datasets.DEFAULT})")
    p.add_argument("--data-dir", help="MNIST folder, for the test set's features (FID)")
    p.add_argument("--classifier", help="ConvNet weights (default: the committed ones)")
    p.add_argument("--no-fid", action="store_true", help="skip the Frechet distance (no MNIST needed)")
    p.add_argument("--chance", action="store_true", help="score the dataset's structureless references instead")
    p.add_argument("-n", type=int, help="--chance: samples per reference (default: the dataset's score size)")
    p.add_argument("--seed", type=int, default=0, help="--chance: the references' seed (default 0)")
    args = p.parse_args(argv)
    if (args.samples is None) != args.chance:
        p.error("give a samples file, or --chance, not both")
    if args.n is not None and args.n < 1:
        p.error(f"-n {args.n}: must be at least 1")
    try:
        dataset = datasets.get(args.dataset)
        if args.chance:
            rows = chance_rows(dataset, args.n or dataset.score_samples, args.seed, args.data_dir,
                               args.classifier, not args.no_fid)
        else:
            rows = [score_file(args.samples, dataset, args.data_dir, args.classifier, not args.no_fid)]
    except HarnessError as e:  # InputError, DataError, ClassifierError
        return report(e)
    for row in rows:
        print(dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
