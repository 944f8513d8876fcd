"""What scoring one sample costs on each dataset, the quantity behind a dataset's `score_cost`
(harness/datasets/base.py): microseconds per sample of its scorer on 2,500 uniform samples,
the median of 5 repeats after a warm-up.

    PYTHONPATH=. python docs/score_speed.py [--data-dir ../shared/data/mnist] [--threads 1]

The MNIST scorer (the ConvNet classifier) needs the data folder; the mixtures need nothing.
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from harness import datasets


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data-dir", default="../shared/data/mnist")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("-n", type=int, default=2500)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    for name in ("ring8", "grid25", "mnist"):
        ds = datasets.get(name)
        scorer = ds.scorer(args.data_dir, None, "cpu")
        x = torch.rand(args.n, ds.dim) * 2 - 1
        scorer.score(x, False)                      # warm-up
        times = []
        for _ in range(5):
            t = time.perf_counter()
            scorer.score(x, False)
            times.append(time.perf_counter() - t)
        print(f"{name:8s} {statistics.median(times) / args.n * 1e6:9.1f} us/sample")


if __name__ == "__main__":
    main()
