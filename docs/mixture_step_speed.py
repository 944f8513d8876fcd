"""Seconds per pack step of the 2D-mixture studies' shapes, as the benchmark times Table 1's
(harness.tools.measure.time_steps: the real pack trainer, steady state, one thread), idle; and,
per family, the fit  ms per step = a + b K + K flops_per_step / r  beside the cost model's
(harness/rates.json: a + K flops / r, fitted on MNIST's shapes). About 6 minutes on one core.

    PYTHONPATH=. python docs/mixture_step_speed.py [--out steps.json]

Shapes: nLayerG, nLayerD in {2, 3} x sizeG, sizeD in {32, 128} of grids/grid25_table1.yaml; pack
sizes: the sweep's for each family (GAN 24, BEGAN 8, LSGAN and WGAN-GP 4, EBGAN 2), and GAN at
2 and 8 too. A WGAN-GP step is one critic step.
"""
from __future__ import annotations

import argparse
import itertools
import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from harness.costmodel import Rates, flops_per_step
from harness.grid import load_grid
from harness.tools.measure import time_steps

ROOT = Path(__file__).resolve().parents[1]
PACKS = {"gan": (2, 8, 24), "ebgan": (2,), "lsgan": (4,), "wgan_gp": (4,), "began": (8,)}


def measure() -> pd.DataFrame:
    torch.set_num_threads(1)
    cpu = torch.device("cpu")
    configs = load_grid(ROOT / "grids" / "grid25_table1.yaml").configs
    time_steps([c for c in configs if c.family == "gan"][:2], 20, cpu)          # warm-up
    rows = []
    for family, sizes in PACKS.items():
        for shape in itertools.product((2, 3), (2, 3), (32, 128), (32, 128)):
            members = [c for c in configs if c.family == family and (c.nLayerG, c.nLayerD, c.sizeG, c.sizeD) == shape]
            for K in sizes:
                pack = (members * K)[:K]
                s = min(time_steps(pack, 80 if K == 24 else 150, cpu) for _ in range(2))
                rows.append({"family": family, "K": K, "G": f"{shape[0]}x{shape[2]}", "D": f"{shape[1]}x{shape[3]}",
                             "flops": flops_per_step(pack[0]), "ms": 1e3 * s})
    return pd.DataFrame(rows)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, help="also write the measurements as JSON")
    p.add_argument("--load", type=Path, help="print from measurements written by --out (no timing)")
    args = p.parse_args()
    d = pd.DataFrame(json.loads(args.load.read_text())) if args.load else measure()
    if args.out:
        args.out.write_text(json.dumps(d.to_dict("records")))
    rates = Rates.load("cpu")
    d["model_ms"] = 1e3 * (rates.step_overhead_s + d["K"] * d["flops"] / rates.flops_per_s)
    pd.set_option("display.width", 200)
    print("ms per pack step (idle, 1 thread):")
    print(d.pivot_table(index=["D", "G"], columns=["family", "K"], values="ms").round(1).to_string())
    print(f"\nmeasured / cost model ({rates.measured}): median {np.median(d.ms / d.model_ms):.2f}, "
          f"range {(d.ms / d.model_ms).min():.2f}-{(d.ms / d.model_ms).max():.2f}")
    print("\nper family and pack size, ms = c + K flops / r (least squares on relative error):")
    fits = []
    for (family, K), g in d.groupby(["family", "K"], sort=False):
        X = np.stack([np.ones(len(g)), K * g["flops"]], 1)
        (c, inv_r), *_ = np.linalg.lstsq(X / g["ms"].to_numpy()[:, None], np.ones(len(g)), rcond=None)
        fit = g["ms"] / (X @ [c, inv_r])
        fits.append((K, c))
        print(f"  {family:<8} K {K:>2}: c {c:5.2f} ms, r {1e-6 / inv_r:5.1f} GFLOP/s; measured / fit "
              f"{fit.min():.2f}-{fit.max():.2f}")
    slope, icpt = np.polyfit([k for k, _ in fits], [c for _, c in fits], 1)
    print(f"  c against K over these fits: {icpt:.2f} ms + {slope:.3f} ms per member "
          f"(the cost model: {1e3 * rates.step_overhead_s:.2f} ms, whatever K)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
