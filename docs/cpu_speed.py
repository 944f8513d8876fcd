"""Which speed variant and pack size pay on a CPU: model-steps per second of the engine's variants
(fp32, bf16, compile, bf16+compile) at several pack sizes, against the reference trainer (one
config, plain torch), for a 2D-mixture model of the ring study and a Table 1 architecture.

    PYTHONPATH=. python docs/cpu_speed.py [--models ring8-small,ring8-large,mnist-small]
                                          [--speeds fp32,bf16,compile] [--repeats 3] [--threads 1]

Each measurement times steady-state steps (harness.tools.measure.time_steps: warm-up steps first,
so that compile's compilation is left out) of GAN configs mixing Table 1's optimizers, on random
data of the model's shape, one torch thread (as a sweep's trial on a 2-core machine), and prints
the median over repeats. Run it on an idle machine: the numbers are wall-clock.
"""
from __future__ import annotations

import argparse
import statistics
from dataclasses import replace

import torch

from harness.engine import Speed
from harness.tools.measure import pack_configs, time_steps

# name: (dataset, nLayerG, nLayerD, sizeG, sizeD), pack sizes, timed steps per measurement
MODELS = {
    "ring8-small": (("ring8", 2, 2, 32, 32), [8, 32, 128], 300),      # grids/ring8_table1.yaml's smallest
    "ring8-large": (("ring8", 3, 3, 128, 128), [8, 32, 128], 200),    # and its largest
    "mnist-small": (("mnist", 2, 2, 400, 128), [8, 24], 40),           # Table 1's smallest (the corner's)
}


def configs(model: str, K: int) -> list:
    (dataset, nLayerG, nLayerD, sizeG, sizeD), _, _ = MODELS[model]
    return [replace(c, dataset=dataset, nLayerG=nLayerG, nLayerD=nLayerD, sizeG=sizeG, sizeD=sizeD)
            for c in pack_configs("small", K, 1)]


def rate(model: str, K: int, speed: str, repeats: int) -> float:
    """Median model-steps/s over repeats (K = 1: the reference trainer, fp32 only)."""
    _, _, timed = MODELS[model]
    cfgs = configs(model, K)
    return statistics.median(K / time_steps(cfgs, timed, torch.device("cpu"), Speed.parse(speed))
                             for _ in range(repeats))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--models", default=",".join(MODELS))
    p.add_argument("--speeds", default="fp32,bf16,compile")
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats}\n")
    print("| model | pack | speed | model-steps/s | x reference |\n|---|---|---|---|---|")
    for model in args.models.split(","):
        ref = rate(model, 1, "fp32", args.repeats)
        print(f"| {model} | 1 | reference (fp32) | {ref:.0f} | 1.00 |", flush=True)
        for K in MODELS[model][1]:
            for speed in args.speeds.split(","):
                if K == 1:
                    continue
                try:
                    r = rate(model, K, speed, args.repeats)
                    print(f"| {model} | {K} | {speed} | {r:.0f} | {r / ref:.2f} |", flush=True)
                except Exception as e:   # a variant this torch cannot run on CPU: say so, go on
                    print(f"| {model} | {K} | {speed} | failed: {type(e).__name__}: {str(e).splitlines()[0][:80]} | |",
                          flush=True)


if __name__ == "__main__":
    main()
